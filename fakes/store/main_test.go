package store

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/octoha/octoha/services/postgres"
)

// One PostgreSQL server for the whole package test run, started on first
// use and closed by TestMain.
var pg struct {
	once sync.Once
	srv  *postgres.Server
	err  error
	skip string
	dir  string
}

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(childMain())
	}
	code := m.Run()
	if pg.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := pg.srv.Close(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "close postgres:", err)
			code = 1
		}
		cancel()
	}
	if pg.dir != "" {
		os.RemoveAll(pg.dir)
	}
	os.Exit(code)
}

// pgServer returns the shared server, skipping if PostgreSQL is not
// installed.
func pgServer(t *testing.T) *postgres.Server {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: skipping tests that start a real PostgreSQL server")
	}
	pg.once.Do(func() {
		if _, err := postgres.Available(); err != nil {
			pg.skip = "PostgreSQL binaries not installed, PostgreSQL store tests skipped: " + err.Error()
			return
		}
		pg.dir, pg.err = os.MkdirTemp("", "octoha-store-pg-")
		if pg.err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		pg.srv, pg.err = postgres.Start(ctx, postgres.Options{Dir: pg.dir, Host: "127.0.0.1"})
	})
	if pg.skip != "" {
		t.Skip(pg.skip)
	}
	if pg.err != nil {
		t.Fatalf("start the shared PostgreSQL server: %v", pg.err)
	}
	// A test that stopped the server must have restarted it.
	if !pg.srv.Running() {
		t.Fatal("the shared PostgreSQL server is not running (an earlier test left it stopped)")
	}
	return pg.srv
}

var schemaSeq atomic.Int64

// pgFreshDSN returns a DSN whose tables live in a new, empty schema of the
// shared server, so tests do not see each other's rows.
func pgFreshDSN(t *testing.T) string {
	t.Helper()
	srv := pgServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	schema := fmt.Sprintf("t%d_%d", os.Getpid(), schemaSeq.Add(1))
	db, err := sql.Open("pgx", srv.DSN())
	if err != nil {
		t.Fatalf("open admin connection: %v", err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	return srv.DSN() + "&search_path=" + schema
}

// sqliteFreshDSN returns a DSN for a new SQLite file in a temp dir.
func sqliteFreshDSN(t *testing.T) string {
	return "sqlite:" + filepath.Join(t.TempDir(), "octoha.db")
}

// backend is an engine the conformance suite runs against.
type backend struct {
	name string
	// fresh returns a DSN for a database this test alone uses, or a shared
	// one (SQL Server): the suite only ever looks at its own keys.
	fresh func(t *testing.T) string
}

var (
	sqliteBackend   = backend{"sqlite", sqliteFreshDSN}
	postgresBackend = backend{"postgres", pgFreshDSN}
)

func openT(t *testing.T, dsn string, opts ...Option) *DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := Open(ctx, dsn, opts...)
	if err != nil {
		t.Fatalf("open %s: %v", RedactDSN(dsn), err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// uniq returns a prefix unique to this test run and test.
func uniq(t *testing.T) string {
	name := strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())
	return fmt.Sprintf("%s-%d-", name, time.Now().UnixNano()%1e9)
}
