package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/octoha/octoha/harness/byhand"
	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/cluster/local"
	"github.com/octoha/octoha/harness/lb"
	"github.com/octoha/octoha/internal/proc"
	"github.com/octoha/octoha/internal/syncbuf"
	"github.com/octoha/octoha/internal/testbin"
	"github.com/octoha/octoha/octopusapi"
)

func TestMain(m *testing.M) {
	// By-hand run directories (fault hooks, upload, attack) of every test
	// and child go into one temporary directory, removed at the end.
	runs, err := os.MkdirTemp("", "octoha-test-runs-")
	if err == nil {
		os.Setenv(byhand.RunsDirEnv, runs)
	}
	code := m.Run()
	testbin.Cleanup()
	if err == nil {
		os.RemoveAll(runs)
	}
	os.Exit(code)
}

// needUpBinary skips when a real cluster cannot run here and returns the
// built octoha binary, which the tests run as a child like a user would.
func needUpBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: skipping a test that runs octoha up (a whole local cluster of processes)")
	}
	if err := lb.Available(lb.HAProxy); err != nil {
		t.Skipf("HAProxy is not installed (make deps installs it): %v", err)
	}
	bin, err := testbin.Octoha()
	if err != nil {
		t.Fatalf("build octoha: %v", err)
	}
	return bin
}

// childCmd returns the binary run with args; it dies with the test process.
func childCmd(ctx context.Context, bin string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.SysProcAttr = childSysProcAttr()
	cmd.Env = os.Environ()
	return cmd
}

// runOctoha runs the binary to completion and returns its exit code and
// output.
func runOctoha(t *testing.T, bin string, timeout time.Duration, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := childCmd(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, stdout.String(), stderr.String()
	case errors.As(err, &ee) && ctx.Err() == nil:
		return ee.ExitCode(), stdout.String(), stderr.String()
	}
	t.Fatalf("octoha %s: %v (ctx %v)\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, ctx.Err(), stdout.String(), stderr.String())
	return 0, "", ""
}

// cleanupRun makes sure nothing of a run survives a failed test: the
// owner is killed and the run directory torn down by PID.
func cleanupRun(t *testing.T, dir string) {
	t.Cleanup(func() {
		st, err := local.ReadState(dir)
		if err != nil {
			return // nothing was started, or it is gone already
		}
		if proc.Alive(st.SupervisorPID) {
			_ = proc.KillPID(st.SupervisorPID)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := local.DownDir(ctx, dir); err != nil {
			t.Errorf("cleanup: down %s: %v", dir, err)
		}
	})
}

// waitReady waits for the run directory's state file to say ready, owned by
// owner (0: any owner).
func waitReady(t *testing.T, dir string, owner int, exited <-chan struct{}, output func() string) *local.State {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		st, err := local.ReadState(dir)
		if err == nil && st.Ready && (owner == 0 || st.SupervisorPID == owner) {
			return st
		}
		select {
		case <-exited:
			t.Fatalf("octoha up exited before the cluster was ready:\n%s", output())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster in %s not ready within 90s (state: %+v, %v):\n%s", dir, st, err, output())
		}
		time.Sleep(20 * time.Millisecond) // polling the state file under a deadline
	}
}

// statePIDs is every process a state file names: the owner and each child.
func statePIDs(st *local.State) []int {
	pids := []int{st.SupervisorPID}
	for _, p := range st.PIDs {
		if !slices.Contains(pids, p) {
			pids = append(pids, p)
		}
	}
	for _, c := range st.Components {
		if c.PID > 0 && !slices.Contains(pids, c.PID) {
			pids = append(pids, c.PID)
		}
	}
	return pids
}

// waitAllGone waits briefly for the PIDs to be reaped (the owner's own
// parent reaps it) and fails naming any that survive.
func waitAllGone(t *testing.T, pids []int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		var alive []int
		for _, p := range pids {
			if proc.Alive(p) {
				alive = append(alive, p)
			}
		}
		if len(alive) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("processes of the run still alive %v after %v: %v", within, pids, alive)
			return
		}
		time.Sleep(10 * time.Millisecond) // polling process state under a deadline
	}
}

func assertNoPath(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s still exists (stat: %v)", path, err)
	}
}

// TestUpForegroundSIGINT: `octoha up` in the foreground prints the
// endpoints once ready; SIGINT (Ctrl-C) makes it exit 0, leaving no
// process of the run and no run directory.
func TestUpForegroundSIGINT(t *testing.T) {
	bin := needUpBinary(t)
	dir := filepath.Join(t.TempDir(), "run")
	cleanupRun(t, dir)
	var out syncbuf.Buffer
	cmd := childCmd(context.Background(), bin, "up", "--network", "127.0.23", "--run-dir", dir)
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})

	st := waitReady(t, dir, cmd.Process.Pid, exited, out.String)
	t.Logf("ready (state file) after %v", time.Since(start).Round(time.Millisecond))
	waitUntilOutput(t, &out, "Ctrl-C stops everything", exited)
	for _, want := range []string{"cluster \"default\" ready in", "http://127.0.23.10:8080", "Node3", "http://127.0.23.13:8080", "HAProxy"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("up's output lacks %q:\n%s", want, out.String())
		}
	}
	pids := statePIDs(st)
	if len(pids) != 5 {
		t.Fatalf("state file names %v; want the owner, 3 nodes and HAProxy", pids)
	}
	if code, _, err := cluster.PingStatus(context.Background(), http.DefaultClient, st.LBURL); err != nil || code != http.StatusOK {
		t.Fatalf("LB ping: %d %v", code, err)
	}

	sig := time.Now()
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(60 * time.Second):
		t.Fatalf("octoha up did not exit within 60s of SIGINT:\n%s", out.String())
	}
	t.Logf("exited %v after SIGINT", time.Since(sig).Round(time.Millisecond))
	if waitErr != nil {
		t.Errorf("octoha up exited with %v after SIGINT; want 0:\n%s", waitErr, out.String())
	}
	if !strings.Contains(out.String(), "stopping") {
		t.Errorf("no \"stopping\" in the output:\n%s", out.String())
	}
	waitAllGone(t, pids, 5*time.Second)
	assertNoPath(t, dir)
}

// waitUntilOutput waits for text in a running child's output.
func waitUntilOutput(t *testing.T, out *syncbuf.Buffer, text string, exited <-chan struct{}) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(out.String(), text) {
		select {
		case <-exited:
			t.Fatalf("exited before printing %q:\n%s", text, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the output within 30s:\n%s", text, out.String())
		}
		time.Sleep(10 * time.Millisecond) // polling output under a deadline
	}
}

// statusJSON runs `octoha status --json`.
func statusJSON(t *testing.T, bin, dir string) local.StatusReport {
	t.Helper()
	code, stdout, stderr := runOctoha(t, bin, 30*time.Second, "status", "--run-dir", dir, "--json")
	if code != 0 && code != statusDegradedCode {
		t.Fatalf("status --json exited %d: %s", code, stderr)
	}
	var rep local.StatusReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("status --json: %v\n%s", err, stdout)
	}
	return rep
}

// TestUpDetachStatusDown: `up --detach` returns once ready; `status --json`
// shows three nodes answering 200 and UP at HAProxy; a second `up` on the
// same run directory refuses, saying why and what to do; status tells the
// truth after a drain and a kill; `down` leaves nothing behind.
func TestUpDetachStatusDown(t *testing.T) {
	bin := needUpBinary(t)
	dir := filepath.Join(t.TempDir(), "run")
	cleanupRun(t, dir)
	start := time.Now()
	code, stdout, stderr := runOctoha(t, bin, 120*time.Second, "up", "--detach", "--network", "127.0.24", "--run-dir", dir)
	if code != 0 {
		t.Fatalf("up --detach exited %d:\n%s\n%s", code, stdout, stderr)
	}
	t.Logf("up --detach returned after %v", time.Since(start).Round(time.Millisecond))
	for _, want := range []string{"ready in", "http://127.0.24.10:8080", "Stop it with: octoha down --run-dir " + dir} {
		if !strings.Contains(stdout, want) {
			t.Errorf("up --detach output lacks %q:\n%s", want, stdout)
		}
	}
	st, err := local.ReadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Ready || !proc.Alive(st.SupervisorPID) {
		t.Fatalf("after up --detach: ready %v, owner %d alive %v", st.Ready, st.SupervisorPID, proc.Alive(st.SupervisorPID))
	}
	pids := statePIDs(st)
	if len(pids) != 5 {
		t.Fatalf("state file names %v; want the owner, 3 nodes and HAProxy", pids)
	}

	rep := statusJSON(t, bin, dir)
	if !rep.OwnerAlive || rep.LBPing != http.StatusOK || rep.LBKind != string(lb.HAProxy) || len(rep.Nodes) != 3 {
		t.Errorf("status: owner alive %v, LB ping %d, LB %s, %d nodes; want alive, 200, haproxy, 3", rep.OwnerAlive, rep.LBPing, rep.LBKind, len(rep.Nodes))
	}
	for _, n := range rep.Nodes {
		if n.Ping != http.StatusOK || n.LBState != string(lb.StateUp) || n.Draining == nil || *n.Draining || n.ProcessLive == nil || !*n.ProcessLive || n.LastSeen == nil {
			t.Errorf("status of %s: %+v; want ping 200, UP, not draining, process alive, a heartbeat", n.Name, n)
		}
	}

	// A second up on the same run directory refuses, detached or not.
	want := fmt.Sprintf("octoha up: a cluster is already running in this run directory: %s (pid %d); run `octoha down --run-dir %s` first", dir, st.SupervisorPID, dir)
	for _, args := range [][]string{
		{"up", "--detach", "--network", "127.0.24", "--run-dir", dir},
		{"up", "--network", "127.0.24", "--run-dir", dir},
	} {
		code, stdout, stderr := runOctoha(t, bin, 30*time.Second, args...)
		if code != 1 || !strings.Contains(stderr, want) {
			t.Errorf("second `octoha %s`: exit %d, stderr %q; want exit 1 and %q (stdout %q)", strings.Join(args, " "), code, stderr, want, stdout)
		}
	}
	if st2, err := local.ReadState(dir); err != nil || st2.SupervisorPID != st.SupervisorPID {
		t.Fatalf("the refused up changed the state file: %+v %v", st2, err)
	}

	// Drain Node2 through the LB and kill Node3: status shows both.
	key, err := local.ReadAPIKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	on := true
	body, _ := json.Marshal(octopusapi.NodeUpdate{Id: "OctopusServerNodes-2", IsInMaintenanceMode: &on})
	req, _ := http.NewRequest(http.MethodPut, st.LBURL+octopusapi.NodePath("OctopusServerNodes-2"), bytes.NewReader(body))
	req.Header.Set(octopusapi.HeaderAPIKey, key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("drain Node2: %s", resp.Status)
	}
	var node3 int
	for _, c := range st.Components {
		if c.Part == "node Node3" {
			node3 = c.PID
		}
	}
	if node3 == 0 {
		t.Fatalf("no PID for Node3 in %+v", st.Components)
	}
	if err := proc.SignalPID(node3, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		rep = statusJSON(t, bin, dir)
		n2, n3 := rep.Nodes[1], rep.Nodes[2]
		ok2 := n2.Ping == http.StatusTeapot && n2.LBState == string(lb.StateDown) && n2.Draining != nil && *n2.Draining
		ok3 := n3.Ping == 0 && n3.LBState == string(lb.StateDown) && n3.ProcessLive != nil && !*n3.ProcessLive
		if ok2 && ok3 && rep.LBPing == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status after drain and kill, within 20s:\nNode2 %+v\nNode3 %+v\nLB ping %d", n2, n3, rep.LBPing)
		}
		time.Sleep(200 * time.Millisecond) // polling status under a deadline
	}
	code, stdout, _ = runOctoha(t, bin, 30*time.Second, "status", "--run-dir", dir)
	if code != statusDegradedCode || !strings.Contains(stdout, "418 draining") || !strings.Contains(stdout, "dead") || !strings.Contains(stdout, "DOWN (L7STS/418)") ||
		!strings.Contains(stdout, "DEGRADED: Node2 DRAINING; Node3 DEAD") {
		t.Errorf("human status (exit %d) does not show the drain and the kill:\n%s", code, stdout)
	}

	// down stops everything and removes the run directory.
	start = time.Now()
	code, stdout, stderr = runOctoha(t, bin, 90*time.Second, "down", "--run-dir", dir)
	if code != 0 || !strings.Contains(stdout, "stopped and removed") {
		t.Errorf("down: exit %d\n%s\n%s", code, stdout, stderr)
	}
	t.Logf("down took %v; checking PIDs %v", time.Since(start).Round(time.Millisecond), pids)
	waitAllGone(t, pids, 5*time.Second)
	assertNoPath(t, dir)
	assertNoPath(t, dir+".up.log")
	code, _, stderr = runOctoha(t, bin, 30*time.Second, "status", "--run-dir", dir)
	if code != 1 || !strings.Contains(stderr, "no cluster in "+dir) {
		t.Errorf("status after down: exit %d, %q; want 1 and \"no cluster in %s\"", code, stderr, dir)
	}
}

// TestUpOwnerKilled: when the process running `up` dies without tearing
// down (SIGKILL, as on a crash), its children die with it (parent-death
// signal); status says the owner is gone, and down cleans the run directory.
func TestUpOwnerKilled(t *testing.T) {
	bin := needUpBinary(t)
	dir := filepath.Join(t.TempDir(), "run")
	cleanupRun(t, dir)
	var out syncbuf.Buffer
	cmd := childCmd(context.Background(), bin, "up", "--network", "127.0.25", "--run-dir", dir)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	st := waitReady(t, dir, cmd.Process.Pid, exited, out.String)
	pids := statePIDs(st)
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-exited
	waitAllGone(t, pids, 10*time.Second)
	rep := statusJSON(t, bin, dir)
	if rep.OwnerAlive || len(rep.Notes) == 0 || !strings.Contains(strings.Join(rep.Notes, "\n"), "is gone") {
		t.Errorf("status after the owner died: alive %v, notes %q", rep.OwnerAlive, rep.Notes)
	}
	code, stdout, stderr := runOctoha(t, bin, 30*time.Second, "down", "--run-dir", dir)
	if code != 0 {
		t.Errorf("down of a dead run: exit %d\n%s\n%s", code, stdout, stderr)
	}
	assertNoPath(t, dir)
}

// TestUpBadSpecCreatesNothing: a bad spec is a usage error (exit 2) found
// before anything starts or any directory is made. A zero typed on the
// command line is refused, not read as "the default".
func TestUpBadSpecCreatesNothing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	cleanupRun(t, dir) // should a regression start a cluster after all
	for _, args := range [][]string{
		{"--nodes", "0"},
		{"--nodes", "-1"},
		{"--nodes", "21"},
		{"--port", "0"},
		{"--fall", "0"},
		{"--rise", "0"},
		{"--interval", "0s"},
		{"--lb", "traefik"},
		{"--db", "oracle"},
		{"--storage", "nfs"},
		{"--drain", "maybe"},
		{"--network", "10.0.0"},
	} {
		var stdout, stderr bytes.Buffer
		// The last --network wins in a regression that gets past the spec,
		// so such a cluster would stay on this test's own network.
		code := run(append([]string{"up", "--run-dir", dir, "--network", "127.0.25"}, args...), &stdout, &stderr)
		if code != 2 || !strings.Contains(stderr.String(), "octoha up: usage:") {
			t.Errorf("up %v: exit %d, stderr %q; want 2 and a usage error", args, code, stderr.String())
		}
		assertNoPath(t, dir)
	}
}

// TestUpRefusesMixedOS: Windows and Linux nodes in one cluster are a usage
// error citing the seed's rule, before anything starts.
func TestUpRefusesMixedOS(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	cleanupRun(t, dir)
	var stdout, stderr bytes.Buffer
	code := run([]string{"up", "--run-dir", dir, "--network", "127.0.200", "--nodes", "2", "--os", "windows,linux"}, &stdout, &stderr)
	if code != 2 || !strings.Contains(stderr.String(), "It has to be either all Windows or all containers") || !strings.Contains(stderr.String(), "--allow-mixed-os") {
		t.Errorf("up --os windows,linux: exit %d, stderr %q; want 2 citing the seed's rule", code, stderr.String())
	}
	assertNoPath(t, dir)
}

// TestUpRenamedBinary: a binary not called "octoha" (e.g. a release named
// octoha-linux-amd64) runs its own nodes: up --detach comes up, down
// removes everything.
func TestUpRenamedBinary(t *testing.T) {
	bin := needUpBinary(t)
	renamed := filepath.Join(t.TempDir(), "octoha-linux-amd64")
	raw, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(renamed, raw, 0o755); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "run")
	cleanupRun(t, dir)
	cmd := childCmd(context.Background(), renamed, "up", "--detach", "--nodes", "1", "--network", "127.0.25", "--run-dir", dir)
	// Without $OCTOHA_BIN, as a user would run it.
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, local.EnvBinary+"=") })
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s up --detach: %v\n%s", filepath.Base(renamed), err, out)
	}
	st, err := local.ReadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	pids := statePIDs(st)
	code, stdout, stderr := runOctoha(t, renamed, 60*time.Second, "down", "--run-dir", dir)
	if code != 0 {
		t.Errorf("down: exit %d\n%s\n%s", code, stdout, stderr)
	}
	waitAllGone(t, pids, 5*time.Second)
	assertNoPath(t, dir)
}
