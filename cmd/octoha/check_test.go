package main

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/octoha/octoha/harness/checker"
	"github.com/octoha/octoha/harness/checker/checkertest"
	"github.com/octoha/octoha/harness/history"
)

const checkTestKey = "API-CHECKCLISECRET42"

func runCheckCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(append([]string{"check"}, args...), &out, &errb)
	if strings.Contains(out.String(), checkTestKey) || strings.Contains(errb.String(), checkTestKey) {
		t.Fatalf("the API key was printed:\nstdout:\n%s\nstderr:\n%s", out.String(), errb.String())
	}
	return code, out.String(), errb.String()
}

// writeCheckHistory records acknowledged uploads of pkgs and some pings into
// a history file and returns its path.
func writeCheckHistory(t *testing.T, dir, name string, pkgs ...checkertest.Package) string {
	t.Helper()
	path := filepath.Join(dir, name)
	rec, err := history.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now().Add(-time.Minute)
	for i, p := range pkgs {
		sum := sha1.Sum(p.Data)
		s := start.Add(time.Duration(i) * time.Second)
		rec.Op(history.Op{Kind: history.KindUpload, Start: s, End: s.Add(500 * time.Millisecond), Outcome: history.OK,
			Status: 201, Node: "Node1", Via: "lb", PackageID: p.ID, Version: p.Version,
			Hash: hex.EncodeToString(sum[:]), Size: int64(len(p.Data)), Attempt: 1})
	}
	for i := range 10 {
		s := start.Add(time.Duration(i) * 100 * time.Millisecond)
		rec.Op(history.Op{Kind: history.KindPing, Start: s, End: s.Add(time.Millisecond), Outcome: history.OK, Status: 200, Node: "Node2", Via: "lb"})
	}
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

var (
	cliPkgA = checkertest.Package{ID: "Cli.Web", Version: "1.0.0", Ext: ".zip", Data: []byte(strings.Repeat("a", 1000))}
	cliPkgB = checkertest.Package{ID: "Cli.Api", Version: "2.1.0", Ext: ".tar.gz", Data: []byte(strings.Repeat("b", 2000))}
)

func TestCheckFlagErrors(t *testing.T) {
	dir := t.TempDir()
	hist := writeCheckHistory(t, dir, "h.jsonl", cliPkgA)
	garbage := filepath.Join(dir, "garbage.jsonl")
	if err := os.WriteFile(garbage, []byte("{not json}\n{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(checkAPIKeyEnv, "")
	t.Setenv("TMPDIR", t.TempDir()) // no cluster named default, no default run directory
	base := []string{"--history", hist, "--url", "http://127.0.0.1:1", "--api-key", checkTestKey}
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"no history":       {[]string{"--url", "http://127.0.0.1:1", "--api-key", checkTestKey}, "open history"},
		"no url":           {[]string{"--history", hist, "--api-key", checkTestKey}, "--url is required when no cluster runs"},
		"bad url":          {[]string{"--history", hist, "--url", "127.0.0.1:8080", "--api-key", checkTestKey}, "--url"},
		"no key":           {[]string{"--history", hist, "--url", "http://127.0.0.1:1"}, "API key is required"},
		"missing file":     {append(base[2:], "--history", filepath.Join(dir, "nope.jsonl")), "open history"},
		"malformed file":   {append(base[2:], "--history", garbage), "line 1"},
		"bad node":         {append(base, "--node", "Node1"), "want Name=URL"},
		"node named lb":    {append(base, "--node", "lb=http://127.0.0.1:2"), "not \"lb\""},
		"duplicate node":   {append(base, "--node", "A=http://127.0.0.1:2", "--node", "A=http://127.0.0.1:3"), "unique"},
		"bad node url":     {append(base, "--node", "A=ftp://x"), "--node A"},
		"unknown down":     {append(base, "--node", "A=http://127.0.0.1:2", "--down", "B"), "--down \"B\""},
		"bad min-ops":      {append(base, "--min-ops", "upload=zero"), "--min-ops"},
		"bad space":        {append(base, "--space", "Default"), "--space"},
		"bad status":       {append(base, "--ignore-status", "abc"), "--ignore-status"},
		"missing dir":      {append(base, "--files-dir", filepath.Join(dir, "nope")), "--files-dir"},
		"unknown flag":     {append(base, "--frobnicate"), "flag provided but not defined"},
		"stray argument":   {append(base, "extra"), "unexpected argument"},
		"zero concurrency": {append(base, "--concurrency", "0"), "must be positive"},
	} {
		t.Run(name, func(t *testing.T) {
			code, _, stderr := runCheckCLI(t, tc.args...)
			if code != 2 || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d, stderr:\n%s\nwant exit 2 and %q", code, stderr, tc.want)
			}
		})
	}
}

func newCheckCluster(t *testing.T) *checkertest.Cluster {
	t.Helper()
	c := checkertest.New(checkertest.Options{Nodes: []string{"Node1", "Node2"}, APIKey: checkTestKey, MaxTake: 1, NextLinks: true})
	t.Cleanup(c.Close)
	c.Put(cliPkgA)
	c.Put(cliPkgB)
	return c
}

func TestCheckJSONAgainstHTTPCluster(t *testing.T) {
	c := newCheckCluster(t)
	dir := t.TempDir()
	// Two machines' histories, merged.
	h1 := writeCheckHistory(t, dir, "a.jsonl", cliPkgA)
	h2 := writeCheckHistory(t, dir, "b.jsonl", cliPkgB)
	t.Setenv(checkAPIKeyEnv, checkTestKey)
	args := []string{"--history", h1, "--history", h2, "--url", c.LB.URL,
		"--node", "Node1=" + c.Nodes["Node1"].URL, "--node", "Node2=" + c.Nodes["Node2"].URL,
		"--min-ops", "upload=2", "--min-ops", "5", "--json"}

	code, stdout, stderr := runCheckCLI(t, args...)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	var rep struct {
		Passed  bool
		Results []checker.Result
	}
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("stdout is not a JSON report: %v\n%s", err, stdout)
	}
	statuses := map[string]checker.Status{}
	for _, r := range rep.Results {
		statuses[r.Name] = r.Status
	}
	if !rep.Passed || statuses["durability"] != checker.Pass || statuses["min-ops:upload"] != checker.Pass ||
		statuses["min-ops"] != checker.Pass || statuses["no-leftovers"] != checker.Skip {
		t.Fatalf("report: %s", stdout)
	}
	for _, r := range rep.Results {
		if r.Name == "durability" && (r.Value("verified") != 2 || r.Value("endpoints") != 3) {
			t.Fatalf("durability: %+v", r)
		}
	}

	// A corrupt copy on one node fails the run with exit code 1.
	c.Corrupt("Node2", cliPkgB.ID, cliPkgB.Version, []byte(strings.Repeat("c", 2000)))
	code, stdout, stderr = runCheckCLI(t, args...)
	if code != 1 || !strings.Contains(stderr, "1 of 9 checks failed") {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	rep.Passed = true
	rep.Results = nil
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatal(err)
	}
	for _, r := range rep.Results {
		if r.Name == "durability" && (r.Status != checker.Fail || r.Value("corrupt") != 1) {
			t.Fatalf("durability: %+v", r)
		}
	}
	if rep.Passed {
		t.Fatal("passed must be false")
	}

	// A node that is down is not read when declared so.
	c.Stop("Node2")
	code, _, stderr = runCheckCLI(t, append(args, "--down", "Node2")...)
	if code != 0 {
		t.Fatalf("with Node2 declared down: exit %d\n%s", code, stderr)
	}
}

func TestCheckHumanOutput(t *testing.T) {
	c := newCheckCluster(t)
	dir := t.TempDir()
	hist := writeCheckHistory(t, dir, "h.jsonl", cliPkgA, cliPkgB)
	files := filepath.Join(dir, "Packages")
	for _, p := range []checkertest.Package{cliPkgA, cliPkgB} {
		path := filepath.Join(files, filepath.FromSlash(p.StorePath("Spaces-1")))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, p.Data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	args := []string{"--history", hist, "--url", c.LB.URL, "--api-key", checkTestKey, "--files-dir", files}
	code, stdout, stderr := runCheckCLI(t, args...)
	if code != 0 || !strings.Contains(stdout, "PASS  no-leftovers") || !strings.Contains(stdout, "PASS: 6 checks passed (1 skipped)") {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}

	if err := os.MkdirAll(filepath.Join(files, checker.TempDir), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(files, checker.TempDir, "upload-9"), []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, _ = runCheckCLI(t, args...)
	for _, want := range []string{
		"FAIL  no-leftovers  Packages store inconsistent: 1 temporary file left",
		"      - temporary file left on the share: .octoha-tmp/upload-9 (7 bytes)",
		"PASS  durability",
		"FAIL: 1 of 7 checks failed (1 skipped)",
	} {
		if !strings.Contains(stdout, want) {
			t.Fatalf("exit %d; stdout lacks %q:\n%s", code, want, stdout)
		}
	}
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
}
