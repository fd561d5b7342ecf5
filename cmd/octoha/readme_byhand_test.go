package main

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/octoha/octoha/harness/byhand"
	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/cluster/local"
	"github.com/octoha/octoha/harness/history"
	"github.com/octoha/octoha/internal/syncbuf"
)

// The README's "Load, faults and checks by hand" section, run line by line
// exactly as written (sh -c in a directory holding bin/octoha, without
// $OCTOHA_API_KEY), against the default cluster on SQLite + a local
// directory and on PostgreSQL + Samba: upload, attack, fault kill --node
// Node2, more uploads, check --name default (exit 0, Node2 treated as down,
// an ejection time), fault start, status (exit 0). Then a package damaged
// on the share: check exits 1 naming it.
func TestReadmeByHand(t *testing.T) {
	bin := needUpBinary(t)
	lines := docBlock(t, "docs/by-hand.md", "Load, faults and checks by hand")
	for _, v := range []struct {
		name    string
		up      []string
		storage string
	}{
		{"sqlite-local", nil, cluster.StorageLocal},
		{"postgres-samba", []string{"--db", "postgres", "--storage", "smb"}, cluster.StorageSMB},
	} {
		t.Run(v.name, func(t *testing.T) { readmeByHand(t, bin, lines, v.up, v.storage) })
	}
}

func readmeByHand(t *testing.T, bin string, lines, upArgs []string, storage string) {
	dir := local.DefaultRunDir("default")
	if _, err := os.Stat(dir); err == nil {
		t.Skipf("a cluster named default is running in %s (yours?): not touching it", dir)
	}
	cleanupRun(t, dir)
	if code, stdout, stderr := runOctoha(t, bin, 3*time.Minute, append([]string{"up", "--detach"}, upArgs...)...); code != 0 {
		t.Fatalf("octoha up --detach %v: exit %d\n%s\n%s", upArgs, code, stdout, stderr)
	}
	st, err := local.ReadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Spec.Storage.Kind != storage {
		t.Fatalf("the cluster's storage is %s, want %s (a fallback?)", st.Spec.Storage.Kind, storage)
	}
	out := defaultOutDir(st, "default")
	t.Cleanup(func() { os.RemoveAll(out) })

	work := binWorkDir(t, bin)
	env := envWithout(trafficAPIKeyEnv) // the key comes from the cluster
	outputs := map[string]string{}
	for _, line := range lines {
		start := time.Now()
		code, output := shLine(t, work, env, line)
		if code != 0 {
			t.Fatalf("README line %q: exit %d\n%s", line, code, output)
		}
		t.Logf("%s: ok in %s", line, time.Since(start).Round(100*time.Millisecond))
		for _, word := range []string{"fault kill", "check", "fault start", "status"} {
			if strings.HasPrefix(line, "bin/octoha "+word) {
				outputs[word] = output
			}
		}
	}
	for word, wants := range map[string][]string{
		"fault kill":  {"recorded as kill-1 in " + filepath.Join(out, historyFileName), "Node2 DOWN"},
		"check":       {"Node2: treated as down: fault kill-1 (kill at", "not read on down node Node2", "ejected within", "kill-1.eject-lb", "PASS"},
		"fault start": {"ended kill-1", "Node2 UP"},
		"status":      {"OK: every node serving", "Node2  OK"},
	} {
		for _, want := range wants {
			if !strings.Contains(outputs[word], want) {
				t.Errorf("the README's %s line printed no %q:\n%s", word, want, outputs[word])
			}
		}
	}
	t.Logf("check:\n%s", outputs["check"])

	// One history, numbered across the commands, and one results file per
	// command that sent requests, together holding every request.
	h, err := history.Load(filepath.Join(out, historyFileName))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range h.Commands {
		names = append(names, c.Name)
	}
	if got := strings.Join(names, " "); got != "upload-1 attack-2 fault-3 upload-4 fault-5" || len(h.Meta) != 1 {
		t.Errorf("commands %q, %d headers", got, len(h.Meta))
	}
	if len(h.Faults) != 1 || h.Faults[0].Kind != "kill" || h.Faults[0].End.IsZero() || h.Faults[0].Command != "fault-3" {
		t.Errorf("faults = %+v", h.Faults)
	}
	results, _ := filepath.Glob(filepath.Join(out, "*"+resultsSuffix))
	if n := countResults(t, results); n != len(h.Ops) {
		t.Errorf("%d results in %v, %d ops in the history", n, results, len(h.Ops))
	}

	// A package damaged on the share: check fails and names it.
	pkgs := byhand.PackagesDir(st)
	victim := damageOnePackage(t, pkgs)
	code, output := shLine(t, work, env, "bin/octoha check --name default")
	m := regexp.MustCompile(`^(.+?)\.(\d+\.\d+\.\d+)\.zip$`).FindStringSubmatch(filepath.Base(victim))
	if m == nil {
		t.Fatalf("package file %s: unexpected name", victim)
	}
	if code != 1 || !strings.Contains(output, m[1]+"@"+m[2]) || !strings.Contains(output, "FAIL") {
		t.Errorf("check after damaging %s: exit %d, want 1 naming %s@%s:\n%s", victim, code, m[1], m[2], output)
	}
	t.Logf("check after damage:\n%s", output)

	faultFor(t, bin, work, env, out)

	if code, stdout, stderr := runOctoha(t, bin, 90*time.Second, "down"); code != 0 {
		t.Fatalf("down: %d\n%s\n%s", code, stdout, stderr)
	}
}

// faultFor: `fault … --for D` undoes the fault by itself after D, and at
// once on Ctrl-C; both windows are recorded, and the cluster serves again.
func faultFor(t *testing.T, bin, work string, env []string, out string) {
	t.Helper()
	code, output := shLine(t, work, env, "bin/octoha fault pause --node Node3 --for 1s")
	if code != 0 || !strings.Contains(output, "recorded as pause-2") {
		t.Fatalf("fault pause --for 1s: exit %d\n%s", code, output)
	}
	var buf syncbuf.Buffer
	cmd := exec.Command(bin, "fault", "kill", "--node", "Node3", "--for", "5m")
	cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = work, env, &buf, &buf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(buf.String(), "Ctrl-C undoes it") {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("fault kill --for 5m printed:\n%s", buf.String())
		}
		time.Sleep(50 * time.Millisecond) // polling output under a deadline
	}
	time.Sleep(time.Second) // the node is down for a moment
	interrupted := time.Now()
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("fault kill --for 5m after Ctrl-C: %v\n%s", err, buf.String())
		}
	case <-time.After(90 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("fault kill --for 5m did not end after Ctrl-C:\n%s", buf.String())
	}
	t.Logf("Ctrl-C to exit: %s\n%s", time.Since(interrupted).Round(time.Millisecond), buf.String())
	if !strings.Contains(buf.String(), "interrupted, undone after") {
		t.Errorf("no interruption note:\n%s", buf.String())
	}
	h, err := history.Load(filepath.Join(out, historyFileName))
	if err != nil {
		t.Fatal(err)
	}
	var windows []string
	for _, f := range h.Faults {
		if f.Target == "Node3" {
			windows = append(windows, f.Kind)
			if f.End.IsZero() || f.End.Sub(f.Start) > time.Minute {
				t.Errorf("fault %s: window %s → %s", f.ID, f.Start, f.End)
			}
		}
	}
	if strings.Join(windows, " ") != "pause kill" {
		t.Errorf("Node3's faults: %v", windows)
	}
	if code, output := shLine(t, work, env, "bin/octoha status"); code != 0 {
		t.Errorf("status after the faults were undone: exit %d\n%s", code, output)
	}
}

// shLine runs one README line with sh in dir and returns its exit code and
// combined output.
func shLine(t *testing.T, dir string, env []string, line string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", line)
	cmd.Dir, cmd.Env = dir, env
	var b bytes.Buffer
	cmd.Stdout, cmd.Stderr = &b, &b
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, b.String()
	case errors.As(err, &ee) && ctx.Err() == nil:
		return ee.ExitCode(), b.String()
	}
	t.Fatalf("%s: %v\n%s", line, err, b.String())
	return 0, ""
}

func countResults(t *testing.T, paths []string) int {
	t.Helper()
	n := 0
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		dec := vegeta.NewDecoder(f)
		for {
			var r vegeta.Result
			if err := dec.Decode(&r); err != nil {
				break
			}
			n++
		}
		f.Close()
	}
	return n
}

// damageOnePackage flips bytes in the middle of one package file (same
// size) and returns its path.
func damageOnePackage(t *testing.T, root string) string {
	t.Helper()
	var victim string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if victim == "" && !d.IsDir() && strings.HasSuffix(p, ".zip") && !strings.Contains(p, ".octoha-tmp") {
			victim = p
		}
		return nil
	})
	if err != nil || victim == "" {
		t.Fatalf("no package file under %s: %v", root, err)
	}
	f, err := os.OpenFile(victim, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(bytes.Repeat([]byte{0xAB}, 4096), fi.Size()/2); err != nil {
		t.Fatal(err)
	}
	return victim
}
