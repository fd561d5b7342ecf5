package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/octoha/octoha/harness/certificate"
	"github.com/octoha/octoha/harness/cluster/external"
	"github.com/octoha/octoha/harness/cluster/local"
	"github.com/octoha/octoha/harness/lb"
	"github.com/octoha/octoha/harness/scenario"
	"github.com/octoha/octoha/internal/syncbuf"
	"github.com/octoha/octoha/services/postgres"
	"github.com/octoha/octoha/services/samba"
)

// posingCluster is a cluster brought up with `octoha up --detach`,
// described to certify as an external one: its load balancer's and nodes'
// URLs, its key in an environment variable, and hooks that stop and start
// its processes through `octoha fault`.
type posingCluster struct {
	dir, yaml, keyEnv, key string
	st                     *local.State
}

func upPosing(t *testing.T, bin, network string, up ...string) *posingCluster {
	t.Helper()
	name := fmt.Sprintf("cert-%d-%s", os.Getpid(), strings.ReplaceAll(network, ".", "-"))
	dir := local.DefaultRunDir(name)
	cleanupRun(t, dir)
	args := append([]string{"up", "--detach", "--name", name, "--network", network}, up...)
	if code, stdout, stderr := runOctoha(t, bin, 3*time.Minute, args...); code != 0 {
		t.Fatalf("octoha %s: exit %d\n%s\n%s", strings.Join(args, " "), code, stdout, stderr)
	}
	st, err := local.ReadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	key, err := local.ReadAPIKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	p := &posingCluster{dir: dir, st: st, key: key, keyEnv: "OCTOHA_CERT_TEST_KEY"}
	hook := func(action string, node bool) string {
		cmd := fmt.Sprintf("%s fault %s --run-dir %s", external.ShellQuote(bin), action, external.ShellQuote(dir))
		if node {
			cmd += " --node {node}"
		}
		return cmd
	}
	var y strings.Builder
	fmt.Fprintf(&y, "provider: external\nname: %s\nlb:\n  interval: %s\n  fall: %d\n  rise: %d\nnode:\n  heartbeat: %s\n",
		name, st.Spec.LB.Interval, st.Spec.LB.Fall, st.Spec.LB.Rise, st.Spec.Node.Heartbeat)
	fmt.Fprintf(&y, "external:\n  lbURL: %s\n  apiKeyEnv: %s\n  nodes:\n", st.LBURL, p.keyEnv)
	for _, n := range st.Nodes {
		fmt.Fprintf(&y, "    - {name: %s, url: %q}\n", n.Name, n.URL)
	}
	y.WriteString("  hooks:\n")
	for _, h := range []struct {
		name, action string
		node         bool
	}{{"kill", "kill", true}, {"start", "start", true}, {"stop", "stop", true}, {"pause", "pause", true}, {"resume", "resume", true},
		{"db-stop", "db-stop", false}, {"db-start", "db-start", false}, {"share-stop", "share-stop", false}, {"share-start", "share-start", false}} {
		fmt.Fprintf(&y, "    %s: %q\n", h.name, hook(h.action, h.node))
	}
	p.yaml = filepath.Join(t.TempDir(), "cluster.yaml")
	if err := os.WriteFile(p.yaml, []byte(y.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	// A graceful down at the end (cleanupRun is the fallback for a failed
	// test): the load balancer's own processes stop as they should.
	t.Cleanup(func() {
		if _, err := os.Stat(dir); err == nil {
			if code, stdout, stderr := runOctoha(t, bin, 90*time.Second, "down", "--run-dir", dir); code != 0 {
				t.Errorf("octoha down: exit %d\n%s\n%s", code, stdout, stderr)
			}
		}
	})
	return p
}

// certify runs octoha certify against the posing cluster.
func (p *posingCluster) certify(t *testing.T, bin string, args ...string) (int, string, string, string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "certify")
	args = append([]string{"certify", "--cluster", p.yaml, "--upload-size", "32MiB", "--seed", "7", "--out", out}, args...)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cmd := childCmd(ctx, bin, args...)
	cmd.Env = append(os.Environ(), p.keyEnv+"="+p.key)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("octoha certify: %v", err)
	}
	if strings.Contains(stdout.String()+stderr.String(), p.key) {
		t.Error("the API key appears in certify's output")
	}
	if k := readKeyFromLog(out); k != "" {
		t.Errorf("an API key is in the run's files: %s", k)
	}
	return code, stdout.String(), stderr.String(), out
}

func readCertificate(t *testing.T, out string) certificate.Certificate {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(out, certificate.JSONFile))
	if err != nil {
		t.Fatal(err)
	}
	var c certificate.Certificate
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(out, certificate.MarkdownFile)); err != nil {
		t.Fatal(err)
	}
	return c
}

func row(c certificate.Certificate, id string) certificate.Row {
	for _, r := range c.Rows {
		if r.ID == id {
			return r
		}
	}
	return certificate.Row{}
}

// everyNodeServes waits until every node of the posing cluster answers
// its ping with 200: nothing is left drained, paused, killed or cut off.
func (p *posingCluster) everyNodeServes(t *testing.T, within time.Duration) {
	t.Helper()
	err := scenario.Eventually(context.Background(), "every node answers 200", within, 100*time.Millisecond, func() error {
		for _, n := range p.st.Nodes {
			if code := scenario.Ping(context.Background(), n.URL); code != http.StatusOK {
				return fmt.Errorf("%s answers %d", n.Name, code)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A local cluster posing as a real one is certified with destructive
// faults through hooks: every required row passes; stickiness, which it
// lacks, is reported absent, not failed.
func TestCertifyAPosingCluster(t *testing.T) {
	bin := needUpBinary(t)
	up := []string{}
	if _, err := postgres.Available(); err == nil {
		up = append(up, "--db", "postgres")
	}
	if _, err := samba.Available(); err == nil {
		up = append(up, "--storage", "smb")
	}
	p := upPosing(t, bin, "127.0.92", up...)
	start := time.Now()
	// Uploads long enough that the kill, sent through a hook, lands while
	// one is in flight (32 MiB ones finish in about 300 ms and the Kill
	// scenario then rightly says it tested nothing).
	code, stdout, stderr, out := p.certify(t, bin, "--allow-destructive", "--yes", "--upload-size", "256MiB")
	t.Logf("octoha certify (destructive, %s): exit %d in %s", strings.Join(up, " "), code, time.Since(start).Round(time.Second))
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	c := readCertificate(t, out)
	for _, id := range []string{scenario.ReqHealthCheckPath, scenario.ReqDrainEjects, scenario.ReqLargeUpload, scenario.ReqSamePackages, scenario.ReqFailover} {
		if r := row(c, id); r.Status != certificate.Pass {
			t.Errorf("row %s = %s (%s)", id, r.Status, r.Why)
		}
	}
	db := row(c, scenario.ReqDatabaseOutage)
	if len(up) > 0 && up[0] == "--db" && db.Status != certificate.Pass {
		t.Errorf("database-outage row = %s (%s)", db.Status, db.Why)
	}
	if r := row(c, scenario.ReqStickiness); r.Status != certificate.Absent {
		t.Errorf("stickiness row = %s (%s), want ABSENT for a cluster without it", r.Status, r.Why)
	}
	if !strings.Contains(stdout, "Certificate for "+p.st.LBURL) {
		t.Errorf("the certificate is not shown:\n%s", stdout)
	}
	p.everyNodeServes(t, 10*time.Second)

	// Without --allow-destructive the destructive rows are NOT RUN, saying
	// why, and nothing destructive happens.
	code, stdout, _, out = p.certify(t, bin, "--labels", "failover")
	c = readCertificate(t, out)
	if r := row(c, scenario.ReqFailover); r.Status != certificate.NotRun || !strings.Contains(r.Why, "allow-destructive") {
		t.Errorf("failover row without permission = %s (%s)", r.Status, r.Why)
	}
	if code != 0 || c.Verdict != certificate.Incomplete {
		t.Errorf("certify --labels failover without permission: exit %d, verdict %s\n%s", code, c.Verdict, stdout)
	}
}

// A load balancer with nginx's defaults refuses a large upload: the
// certificate fails the large-upload row and names the body limit.
func TestCertifyCatchesABodyLimit(t *testing.T) {
	bin := needUpBinary(t)
	if err := lb.Available(lb.NginxDefaults); err != nil {
		t.Skipf("nginx is not installed (make deps installs it): %v", err)
	}
	p := upPosing(t, bin, "127.0.93", "--lb", string(lb.NginxDefaults))
	code, stdout, stderr, out := p.certify(t, bin, "--focus", "^LB certification$")
	if code != 1 {
		t.Fatalf("exit %d, want 1\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	c := readCertificate(t, out)
	r := row(c, scenario.ReqLargeUpload)
	if r.Status != certificate.Fail || !strings.Contains(strings.Join(r.Evidence, "\n"), "body-limit") {
		t.Errorf("large-upload row = %s (%s)\n%s", r.Status, r.Why, strings.Join(r.Evidence, "\n"))
	}
	if c.Verdict != certificate.Fail {
		t.Errorf("verdict = %s", c.Verdict)
	}
	p.everyNodeServes(t, 10*time.Second)
}

// Ctrl-C in the middle of a drain on a real cluster leaves every node in
// service: the drain's recovery was registered before it was injected.
func TestCertifyInterruptedMidDrainUndrains(t *testing.T) {
	bin := needUpBinary(t)
	p := upPosing(t, bin, "127.0.94")
	out := filepath.Join(t.TempDir(), "certify")
	cmd := childCmd(context.Background(), bin, "certify", "--cluster", p.yaml, "--focus", "^Health check$", "--out", out)
	cmd.Env = append(os.Environ(), p.keyEnv+"="+p.key)
	var stdout syncbuf.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	drained := p.st.Nodes[1]
	err := scenario.Eventually(context.Background(), drained.Name+" is drained by the run", 90*time.Second, 20*time.Millisecond, scenario.PingIs(context.Background(), drained.URL, http.StatusTeapot))
	if err != nil {
		_ = cmd.Process.Kill()
		t.Fatalf("%v\n%s", err, stdout.String())
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 1 {
			t.Errorf("interrupted certify: %v, want exit 1\n%s", err, stdout.String())
		}
	case <-time.After(2 * time.Minute):
		_ = cmd.Process.Kill()
		t.Fatalf("certify did not stop within 2 minutes of SIGINT:\n%s", stdout.String())
	}
	// The undrain was done — the node's ping left 418 — before certify
	// exited: every node answers 200 at once.
	for _, n := range p.st.Nodes {
		if code := scenario.Ping(context.Background(), n.URL); code != http.StatusOK {
			t.Errorf("%s answers %d after the interrupted run", n.Name, code)
		}
	}
	if !strings.Contains(stdout.String(), "interrupted") {
		t.Errorf("the run does not say it was interrupted:\n%s", stdout.String())
	}
	var sc struct{ State, Failure string }
	b, _ := os.ReadFile(filepath.Join(out, "scenarios", "health-check", "scenario.json"))
	if err := json.Unmarshal(b, &sc); err != nil || sc.State != "failed" || !strings.Contains(sc.Failure, "interrupted") {
		t.Errorf("scenario.json after the interrupt: %+v (%v)", sc, err)
	}
}

// A real cluster whose YAML names a task the operator accepts to queue
// (external.task) gets the task scenarios: the task is queued through the
// load balancer, a node is drained and another killed through the hooks,
// and each task's ServerNode and end state are judged.
func TestCertifyTasksOnAPosingCluster(t *testing.T) {
	bin := needUpBinary(t)
	up, labels := []string{"--config", filepath.Join("..", "..", "docs", "examples", "tasks-cluster.yaml")}, "tasks && !database"
	if _, err := postgres.Available(); err == nil {
		up, labels = append(up, "--db", "postgres"), "tasks"
	}
	p := upPosing(t, bin, "127.0.96", up...)
	y, err := os.ReadFile(p.yaml)
	if err != nil {
		t.Fatal(err)
	}
	// The nodes' pace (the operator writes Octopus's: 20 s, minutes), and
	// the task to queue.
	s := strings.Replace(string(y), "node:\n", "node:\n  taskPoll: 1s\n  offlineAfter: 5s\n", 1) +
		"  task: {name: Health, description: octoha certification, arguments: {DurationMs: 2000}}\n"
	if err := os.WriteFile(p.yaml, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr, _ := p.certify(t, bin, "--labels", labels, "--allow-destructive", "--yes")
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	titles := []string{"Tasks — node killed under load", "Tasks — drain with running tasks"}
	if labels == "tasks" {
		titles = append(titles, "Tasks — database outage mid-queue")
	}
	for _, title := range titles {
		i := strings.Index(stdout, title)
		if i < 0 || !strings.Contains(stdout[i:], "PASSED") {
			t.Errorf("%s did not run and pass:\n%s", title, stdout)
		}
	}
	if strings.Contains(stdout, "names no task") {
		t.Errorf("a task scenario skipped although the YAML names a task:\n%s", stdout)
	}
	p.everyNodeServes(t, 10*time.Second)
}
