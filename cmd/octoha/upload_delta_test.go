package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/octoha/octoha/fakes/blob"
	"github.com/octoha/octoha/fakes/node"
	"github.com/octoha/octoha/fakes/store"
	"github.com/octoha/octoha/harness/history"
)

// `octoha upload --delta --change 5%` against a fake node: the first
// version in full, the next ones as deltas, each recorded with its delta
// and full sizes.
func TestUploadCommandDelta(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := store.Open(ctx, "sqlite:"+filepath.Join(dir, "octopus.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	pkgs, err := blob.Open(ctx, filepath.Join(dir, "Packages"))
	if err != nil {
		t.Fatal(err)
	}
	defer pkgs.Close()
	n, err := node.New(node.Config{ID: "OctopusServerNodes-1", Name: "Node1", DB: db, Packages: pkgs,
		APIKeys: []string{trafficTestKey}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(n)
	defer srv.Close()
	t.Setenv(trafficAPIKeyEnv, trafficTestKey)
	out := filepath.Join(dir, "out")
	var stdout, stderr bytes.Buffer
	err = runUpload(t.Context(), []string{"--url", srv.URL, "--size", "4MiB", "--count", "3", "--delta", "--change", "5%", "--seed", "4", "--out", out, "--quiet"}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("upload --delta: %v\nstdout:\n%s\nstderr:\n%s", err, &stdout, &stderr)
	}
	for _, want := range []string{"2 of 3 packages sent as deltas", "OctohaLoad.1.4.0.zip", "full", "on 1.4.0", "on 1.4.1", "3 packages: 3 ok"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, &stdout)
		}
	}
	h, err := history.Load(filepath.Join(out, historyFileName))
	if err != nil {
		t.Fatal(err)
	}
	ups := h.OpsOfKind(history.KindUpload)
	if len(ups) != 3 || ups[0].DeltaBytes != 0 || ups[1].DeltaBytes == 0 || ups[2].BaseVersion != "1.4.1" || ups[2].Size != 4<<20 {
		t.Fatalf("upload ops: %+v", ups)
	}
	if c := h.Commands[0].Labels; c["delta"] != "true" || c["change"] != "5%" {
		t.Fatalf("command labels: %v", c)
	}

	for _, args := range [][]string{
		{"--change", "5%"},                                // without --delta
		{"--delta", "--change", "150%"},                   // more than everything
		{"--delta", "--change", "0"},                      // nothing
		{"--delta", "--change", "lots"},                   // not a number
		{"--delta", "--concurrency", "2", "--count", "2"}, // versions depend on each other
	} {
		err := runUpload(t.Context(), append([]string{"--url", srv.URL, "--out", out}, args...), &stdout, &stderr)
		if !errors.Is(err, errUsage) {
			t.Errorf("upload %v: err = %v, want a usage error", args, err)
		}
	}
}
