package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/octoha/octoha/harness/history"
)

func TestAttackCommandBadInputSendsNothing(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir()) // no cluster named default here
	srv := newTrafficTestServer(t)
	for name, args := range map[string][]string{
		"no url":         {"--target", "ping"},
		"bad target":     {"--url", srv.URL, "--target", "tasks"},
		"bad rate":       {"--url", srv.URL, "--rate", "fast"},
		"zero duration":  {"--url", srv.URL, "--duration", "0s"},
		"zero timeout":   {"--url", srv.URL, "--timeout", "0s"},
		"rate 0 no max":  {"--url", srv.URL, "--rate", "0"},
		"bad space":      {"--url", srv.URL, "--target", "packages", "--space", "x"},
		"stray argument": {"--url", srv.URL, "now"},
	} {
		var stdout, stderr bytes.Buffer
		if err := runAttack(t.Context(), args, &stdout, &stderr); !errors.Is(err, errUsage) {
			t.Errorf("%s: err = %v, want a usage error", name, err)
		}
	}
	if n := srv.requests.Load(); n != 0 {
		t.Fatalf("bad input sent %d requests", n)
	}
}

func TestAttackCommand(t *testing.T) {
	srv := newTrafficTestServer(t)
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	err := runAttack(t.Context(), []string{"--url", srv.URL, "--target", "ping", "--rate", "40/s", "--duration", "500ms", "--out", dir}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("attack: %v\n%s", err, &stderr)
	}
	out := stdout.String()
	for _, want := range []string{"Requests", "Success", "Status Codes", "Node spread", "NodeT"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	h, err := history.Load(filepath.Join(dir, historyFileName))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(h.OpsOfKind(history.KindPing)); n < 15 || int64(n) != srv.requests.Load() {
		t.Fatalf("ping ops = %d, server saw %d", n, srv.requests.Load())
	}
	if fi, err := os.Stat(filepath.Join(dir, "attack-1"+resultsSuffix)); err != nil || fi.Size() == 0 {
		t.Fatalf("results file: %v", err)
	}
	if !strings.Contains(stderr.String(), "achieved") || !strings.Contains(stderr.String(), "left") {
		t.Errorf("no progress line on stderr:\n%s", &stderr)
	}
}

// upload and attack into one --out share one history (one header, unique
// sequence numbers, records tagged with their command) and write one
// results file each; the results files together hold every request the
// history holds, and nothing is truncated by a later command.
func TestSharedRunDirectory(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	srv := newTrafficTestServer(t)
	t.Setenv(trafficAPIKeyEnv, trafficTestKey)
	dir := filepath.Join(t.TempDir(), "run1")
	steps := [][]string{
		{"upload", "--url", srv.URL, "--size", "10KiB", "--count", "2", "--seed", "5", "--quiet", "--out", dir},
		{"attack", "--url", srv.URL, "--rate", "40/s", "--duration", "300ms", "--quiet", "--out", dir},
		{"upload", "--url", srv.URL, "--size", "10KiB", "--count", "2", "--seed", "6", "--quiet", "--out", dir},
	}
	for _, args := range steps {
		var stdout, stderr bytes.Buffer
		if code := run(args, &stdout, &stderr); code != 0 {
			t.Fatalf("%v: exit %d\n%s\n%s", args, code, &stdout, &stderr)
		}
	}
	h, err := history.Load(filepath.Join(dir, historyFileName))
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Meta) != 1 || len(h.Commands) != 3 {
		t.Fatalf("meta %d, commands %+v", len(h.Meta), h.Commands)
	}
	for i, o := range h.Ops {
		if o.Seq != uint64(i+1) {
			t.Fatalf("op %d has seq %d", i, o.Seq)
		}
		if o.Command == "" {
			t.Fatalf("op %d is not tagged with its command", o.Seq)
		}
	}
	results, _ := filepath.Glob(filepath.Join(dir, "*"+resultsSuffix))
	want := []string{"attack-2" + resultsSuffix, "upload-1" + resultsSuffix, "upload-3" + resultsSuffix}
	if len(results) != 3 {
		t.Fatalf("results files %v, want %v", results, want)
	}
	n := 0
	for i, p := range results {
		if filepath.Base(p) != want[i] {
			t.Fatalf("results files %v, want %v", results, want)
		}
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
	if n != len(h.Ops) || n < 10 {
		t.Fatalf("results files hold %d requests, the history %d ops", n, len(h.Ops))
	}
}
