package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/octoha/octoha/harness/scenario"
	"github.com/octoha/octoha/reports"
)

func TestChaosUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"chaos", "--labels", "health &&"}, "--labels"},
		{[]string{"chaos", "--focus", "("}, "--focus"},
		{[]string{"chaos", "--labels", "no-such-label"}, "no scenario matches"},
		{[]string{"chaos", "--upload-size", "0"}, "--upload-size"},
		{[]string{"chaos", "--upload-size", "lots"}, "--upload-size"},
		{[]string{"chaos", "--provider", "vm"}, "provider"},
		{[]string{"chaos", "--provider", "external"}, "--cluster"},
		{[]string{"chaos", "--abort-error-rate", "150%"}, "100%"},
		{[]string{"chaos", "stray"}, "unexpected argument"},
		{[]string{"certify"}, "--cluster"},
		{[]string{"certify", "--cluster", "/no/such/file.yaml"}, "no such file"},
		{[]string{"fault"}, "action is required"},
		{[]string{"fault", "melt", "--node", "Node1"}, "unknown action"},
		{[]string{"fault", "kill"}, "needs --node"},
		{[]string{"fault", "db-stop", "--node", "Node1"}, "takes no --node"},
		{[]string{"fault", "latency@moon", "--node", "Node1"}, "unknown link"},
		{[]string{"fault", "latency@db"}, "needs --node"},
		{[]string{"fault", "reset@client", "--node", "Node1"}, "takes no --node"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(tc.args, &stdout, &stderr)
		if code != 2 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("octoha %s: exit %d, stderr %q; want 2 and %q", strings.Join(tc.args, " "), code, stderr.String(), tc.want)
		}
	}
	// Nothing was written for a usage error.
	if _, err := os.Stat("octoha-runs"); err == nil {
		t.Error("a usage error created ./octoha-runs")
	}
}

func TestChaosListShowsEveryScenarioAndWhy(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"chaos", "--list"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	out := stdout.String()
	for _, sc := range scenario.Catalogue() {
		if !strings.Contains(out, sc.Title) {
			t.Errorf("--list lacks %q", sc.Title)
		}
	}
	if !strings.Contains(out, "LB certification") || !strings.Contains(out, "no: it runs on the external provider only") {
		t.Errorf("--list does not say why LB certification cannot run here:\n%s", out)
	}
	stdout.Reset()
	if code := run([]string{"chaos", "--list", "--labels", "capacity"}, &stdout, &stderr); code != 0 {
		t.Fatal(stderr.String())
	}
	if n := strings.Count(stdout.String(), "Capacity —"); n != 2 || strings.Contains(stdout.String(), "Health check") {
		t.Errorf("--labels capacity lists:\n%s", stdout.String())
	}
}

// The release binary runs the catalogue with no Go toolchain anywhere on
// PATH, as a nightly pipeline or an operator's workstation has it.
func TestChaosFromTheBinaryWithoutGo(t *testing.T) {
	bin := needUpBinary(t)
	pathNoGo := withoutGo(t)
	out := filepath.Join(t.TempDir(), "run")
	cmd := exec.Command(bin, "chaos", "--labels", "health", "--upload-size", "16MiB", "--seed", "42", "--out", out)
	cmd.Env = append(envWithout("PATH"), "PATH="+pathNoGo)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("octoha chaos --labels health: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	t.Logf("octoha chaos --labels health: %s", time.Since(start).Round(time.Second))
	if !strings.Contains(stdout.String(), "1 passed, 0 failed, 0 skipped") {
		t.Errorf("summary line missing:\n%s", stdout.String())
	}
	for _, f := range []string{"junit.xml", "ginkgo.json", reports.HTMLFile, reports.JSONFile, reports.MarkdownFile, "octoha.log",
		"scenarios/health-check/history.jsonl", "scenarios/health-check/scenario.json", "scenarios/health-check/attack-ping.results.gob"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("missing %s: %v", f, err)
		}
	}
	var junit struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
	}
	b, _ := os.ReadFile(filepath.Join(out, "junit.xml"))
	if err := xml.Unmarshal(b, &junit); err != nil || junit.Tests != 1 || junit.Failures != 0 {
		t.Errorf("junit.xml: %+v (%v)", junit, err)
	}
	var sum struct {
		Scenarios []struct {
			Title, State, Replay string
		}
	}
	b, _ = os.ReadFile(filepath.Join(out, reports.JSONFile))
	if err := json.Unmarshal(b, &sum); err != nil || len(sum.Scenarios) != 1 || sum.Scenarios[0].State != "passed" {
		t.Fatalf("summary.json: %+v (%v)", sum, err)
	}
	if want := "octoha chaos --focus '^Health check$' --seed 42 --upload-size 16MiB --provider local"; sum.Scenarios[0].Replay != want {
		t.Errorf("replay = %q, want %q", sum.Scenarios[0].Replay, want)
	}
	if key := readKeyFromLog(out); key != "" {
		t.Errorf("an API key is in the run's output: %s", key)
	}
}

// withoutGo returns PATH without any directory holding a go binary, and
// checks that go is then not found.
func withoutGo(t *testing.T) string {
	t.Helper()
	var keep []string
	for _, d := range filepath.SplitList(os.Getenv("PATH")) {
		if _, err := os.Stat(filepath.Join(d, "go")); err == nil {
			continue
		}
		keep = append(keep, d)
	}
	p := strings.Join(keep, string(os.PathListSeparator))
	cmd := exec.Command("sh", "-c", "command -v go")
	cmd.Env = append(envWithout("PATH"), "PATH="+p)
	if out, err := cmd.Output(); err == nil {
		t.Fatalf("go is still on PATH=%s: %s", p, out)
	}
	return p
}

func envWithout(name string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// readKeyFromLog returns an "API-…" key found in any file of a run
// directory ("" when none): keys never belong in logs or reports.
func readKeyFromLog(dir string) string {
	found := ""
	_ = filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() || strings.HasSuffix(p, ".gob") || found != "" {
			return nil
		}
		b, _ := os.ReadFile(p)
		if i := bytes.Index(b, []byte("API-")); i >= 0 && i+36 <= len(b) {
			cand := b[i : i+36]
			if isKey(cand) {
				found = p + ": " + string(cand[:8]) + "…"
			}
		}
		return nil
	})
	return found
}

// isKey matches Octopus's key format: API- and 32 upper-case alphanumerics.
func isKey(b []byte) bool {
	if len(b) != 36 || !bytes.HasPrefix(b, []byte("API-")) {
		return false
	}
	for _, c := range b[4:] {
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
