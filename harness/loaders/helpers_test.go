package loaders

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/octoha/octoha/fakes/blob"
	"github.com/octoha/octoha/fakes/node"
	"github.com/octoha/octoha/fakes/store"
	"github.com/octoha/octoha/harness/history"
)

const testKey = "API-LOADERSTEST1"

// fakeNode serves one in-process fake Octopus node (SQLite, a local
// packages directory) and returns its URL.
func fakeNode(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	dir := t.TempDir()
	db, err := store.Open(ctx, "sqlite:"+filepath.Join(dir, "octopus.db"))
	if err != nil {
		t.Fatal(err)
	}
	pkgs, err := blob.Open(ctx, filepath.Join(dir, "Packages"))
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.New(node.Config{ID: "OctopusServerNodes-1", Name: "Node1", DB: db, Packages: pkgs,
		APIKeys: []string{testKey}, Heartbeat: 200 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = n.Run(ctx) }()
	srv := httptest.NewServer(n)
	t.Cleanup(func() {
		srv.Close()
		cancel()
		<-done
		pkgs.Close()
		db.Close()
	})
	return srv.URL
}

// runFiles is a run's history and results files.
type runFiles struct {
	dir      string
	rec      *history.Recorder
	results  *os.File
	histPath string
}

func newRunFiles(t *testing.T) *runFiles {
	t.Helper()
	dir := t.TempDir()
	rf := &runFiles{dir: dir, histPath: filepath.Join(dir, "history.jsonl")}
	rec, _, err := history.Join(rf.histPath, "attack", history.Meta{}, history.Command{})
	if err != nil {
		t.Fatal(err)
	}
	rf.rec = rec
	f, err := os.Create(filepath.Join(dir, "attack-1.results.gob"))
	if err != nil {
		t.Fatal(err)
	}
	rf.results = f
	return rf
}

// close closes the files and reads them back.
func (rf *runFiles) close(t *testing.T) (*history.History, []vegeta.Result) {
	t.Helper()
	if err := rf.rec.Close(); err != nil {
		t.Fatal(err)
	}
	if err := rf.results.Close(); err != nil {
		t.Fatal(err)
	}
	h, err := history.Load(rf.histPath)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(rf.results.Name())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := vegeta.NewDecoder(f)
	var rs []vegeta.Result
	for {
		var r vegeta.Result
		if err := dec.Decode(&r); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("vegeta cannot read the merged results: %v", err)
		}
		rs = append(rs, r)
	}
	return h, rs
}
