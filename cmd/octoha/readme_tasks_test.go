package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/octoha/octoha/harness/cluster/local"
	"github.com/octoha/octoha/harness/history"
)

// The README's "Server tasks by hand" lines, run as written against a
// cluster started with docs/examples/tasks-cluster.yaml (on this test's
// own loopback network, with TMPDIR moving its run directory and the
// by-hand output away from any other cluster): tasks are created,
// cancelled, a node is killed, and watch ends with every task check
// passing, the killed node's tasks Failed naming it.
func TestReadmeTasksByHand(t *testing.T) {
	bin := needUpBinary(t)
	tmp := t.TempDir()
	env := append(envWithout(trafficAPIKeyEnv), "TMPDIR="+tmp)
	t.Setenv("TMPDIR", tmp) // so that this test finds the same run directory
	dir := local.DefaultRunDir("default")
	cleanupRun(t, dir)
	work := binWorkDir(t, bin)
	cfg, err := filepath.Abs("../../docs/examples/tasks-cluster.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if code, out := shLine(t, work, env, "bin/octoha up --detach --config "+cfg+" --network 127.0.121"); code != 0 {
		t.Fatalf("up: exit %d\n%s", code, out)
	}
	st, err := local.ReadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{}
	for _, line := range docBlock(t, "docs/tasks.md", "Server tasks by hand") {
		start := time.Now()
		code, output := shLine(t, work, env, line)
		if code != 0 {
			t.Fatalf("README line %q: exit %d\n%s", line, code, output)
		}
		t.Logf("%s: ok in %s", line, time.Since(start).Round(100*time.Millisecond))
		f := strings.Fields(line)
		outputs[strings.Join(f[:min(3, len(f))], " ")] = output
	}
	watch := outputs["bin/octoha tasks watch"]
	t.Logf("watch:\n%s", watch)
	for _, want := range []string{"PASS  tasks-terminal", "PASS  tasks-once", "PASS  tasks-cap", "PASS  tasks-cancel", "Canceled", " Leader ", "Node2 "} {
		if !strings.Contains(watch, want) {
			t.Errorf("tasks watch printed no %q", want)
		}
	}
	if strings.Contains(watch, "FAIL") {
		t.Errorf("a task check failed:\n%s", watch)
	}
	if check := outputs["bin/octoha check"]; !strings.Contains(check, "tasks-dead-node") || !strings.Contains(check, "error-window") {
		t.Errorf("octoha check did not judge the tasks:\n%s", check)
	}
	h, err := history.Load(filepath.Join(defaultOutDir(st, "default"), historyFileName))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range h.Commands {
		names = append(names, c.Name)
	}
	if got := strings.Join(names, " "); got != "tasks-1 tasks-2 tasks-3 fault-4 tasks-5 fault-6" {
		t.Errorf("commands %q", got)
	}
	if n := len(h.OpsOfKind(history.KindTaskCreate)); n != 14 {
		t.Errorf("%d creates recorded, want 14", n)
	}
	// The key the commands used (the cluster's) is in no output and no
	// file of the run.
	key, err := local.ReadAPIKey(st.RunDir)
	if err != nil || key == "" {
		t.Fatalf("the cluster's key: %v", err)
	}
	for line, out := range outputs {
		if strings.Contains(out, key) {
			t.Errorf("%s printed the API key", line)
		}
	}
	if k := readKeyFromLog(defaultOutDir(st, "default")); k != "" {
		t.Errorf("an API key is in the by-hand run directory: %s", k)
	}
	if code, out := shLine(t, work, env, "bin/octoha down"); code != 0 {
		t.Fatalf("down: exit %d\n%s", code, out)
	}
}
