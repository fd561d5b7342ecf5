package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// childEnv makes the test binary act as one node process sharing a SQLite
// file (see TestSQLiteSharedByProcesses).
const childEnv = "OCTOHA_STORE_TEST_CHILD_DSN"

// childMain is one "node process": it opens the shared file, heartbeats,
// adds its own packages and races the others for one shared package. It
// prints "created=<bool>" and exits non-zero on any error.
func childMain() int {
	dsn, id := os.Getenv(childEnv), os.Getenv("OCTOHA_STORE_TEST_CHILD_ID")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	db, err := Open(ctx, dsn)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child open:", err)
		return 1
	}
	defer db.Close()
	for i := range 30 {
		if err := db.Heartbeat(ctx, Node{ID: "n" + id, Name: id, Version: fmt.Sprint(i)}); err != nil {
			fmt.Fprintln(os.Stderr, "child heartbeat:", err)
			return 1
		}
		p := Package{SpaceID: "Spaces-1", PackageID: "P" + id, Version: fmt.Sprintf("1.0.%d", i), NodeID: id}
		if _, err := db.AddPackage(ctx, p, false); err != nil {
			fmt.Fprintln(os.Stderr, "child add:", err)
			return 1
		}
	}
	created, err := db.AddPackage(ctx, Package{SpaceID: "Spaces-1", PackageID: "Shared", Version: "1.0.0", NodeID: id}, false)
	if err != nil && !errors.Is(err, ErrExists) {
		fmt.Fprintln(os.Stderr, "child shared add:", err)
		return 1
	}
	fmt.Printf("created=%v\n", created)
	return 0
}

// Several node processes share one SQLite file: schema creation, writes
// and the race for one package all work across processes.
func TestSQLiteSharedByProcesses(t *testing.T) {
	dsn := sqliteFreshDSN(t)
	ctx := testCtx(t)
	const n = 3
	type child struct {
		cmd *exec.Cmd
		out bytes.Buffer
	}
	children := make([]*child, n)
	for i := range n {
		c := &child{cmd: exec.CommandContext(ctx, os.Args[0], "-test.run=^$")}
		c.cmd.Env = append(os.Environ(), childEnv+"="+dsn, fmt.Sprintf("OCTOHA_STORE_TEST_CHILD_ID=%d", i))
		c.cmd.Stdout = &c.out
		c.cmd.Stderr = &c.out
		if err := c.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		children[i] = c
	}
	wins := 0
	for i, c := range children {
		if err := c.cmd.Wait(); err != nil {
			t.Fatalf("child %d: %v\n%s", i, err, c.out.String())
		}
		if strings.Contains(c.out.String(), "created=true") {
			wins++
		}
	}
	if wins != 1 {
		t.Fatalf("%d processes created the shared package, want 1", wins)
	}
	db := openT(t, dsn)
	nodes, err := db.Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != n {
		t.Fatalf("%d nodes, want %d", len(nodes), n)
	}
	for _, nd := range nodes {
		if nd.Version != "29" {
			t.Fatalf("node %s last heartbeat version %q, want 29", nd.ID, nd.Version)
		}
	}
	_, total, err := db.ListPackages(ctx, PackageQuery{SpaceID: "Spaces-1"})
	if err != nil || total != n*30+1 {
		t.Fatalf("%d packages (%v), want %d", total, err, n*30+1)
	}
}

func TestSQLiteDSNForms(t *testing.T) {
	ctx := testCtx(t)
	dir := t.TempDir()
	for _, dsn := range []string{
		"sqlite:" + dir + "/a.db",
		"sqlite://" + dir + "/b.db",
		"SQLite:" + dir + "/c.db?_foreign_keys=1",
	} {
		db, err := Open(ctx, dsn)
		if err != nil {
			t.Fatalf("%s: %v", dsn, err)
		}
		if db.Kind() != SQLite || db.String() != dsn {
			t.Fatalf("%s: Kind %s String %s", dsn, db.Kind(), db.String())
		}
		var mode string
		if err := db.sql.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
			t.Fatalf("%s: journal_mode %q (%v), want wal", dsn, mode, err)
		}
		db.Close()
	}
	if _, err := os.Stat(dir + "/b.db"); err != nil {
		t.Fatalf("sqlite:// form did not use the absolute path: %v", err)
	}
	// In memory: one connection, so the schema and rows stay visible.
	db := openT(t, "sqlite::memory:")
	if err := db.Heartbeat(ctx, Node{ID: "n1"}); err != nil {
		t.Fatal(err)
	}
	if nodes, err := db.Nodes(ctx); err != nil || len(nodes) != 1 {
		t.Fatalf("in-memory nodes = %v, %v", nodes, err)
	}
	if _, err := Open(ctx, "sqlite:"); err == nil || !strings.Contains(err.Error(), "sqlite:PATH") {
		t.Fatalf("empty path: %v", err)
	}
	if _, err := Open(ctx, "sqlite:"+dir+"/missing-dir/x.db"); err == nil {
		t.Fatal("file in a missing directory opened")
	}
}

// A writer holding SQLite's lock past the busy timeout makes others fail
// with an error rather than hang.
func TestSQLiteBusyTimeout(t *testing.T) {
	ctx := testCtx(t)
	dsn := sqliteFreshDSN(t)
	a := openT(t, dsn)
	b := openT(t, dsn, WithBusyTimeout(200*time.Millisecond))
	tx, err := a.sql.BeginTx(ctx, nil) // BEGIN IMMEDIATE: holds the write lock
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	start := time.Now()
	err = b.Heartbeat(ctx, Node{ID: "n1"})
	if err == nil {
		t.Fatal("heartbeat succeeded while another connection held the write lock")
	}
	if d := time.Since(start); d < 150*time.Millisecond || d > 5*time.Second {
		t.Fatalf("heartbeat failed after %v, want about the 200ms busy timeout", d)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := b.Heartbeat(ctx, Node{ID: "n1"}); err != nil {
		t.Fatalf("heartbeat after the lock was released: %v", err)
	}
}
