package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/octoha/octoha/harness/history"
)

func TestAttackCommandBadInputSendsNothing(t *testing.T) {
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
	if fi, err := os.Stat(filepath.Join(dir, attackResultsFileName)); err != nil || fi.Size() == 0 {
		t.Fatalf("results file: %v", err)
	}
}
