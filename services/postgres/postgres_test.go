package postgres

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/octoha/octoha/internal/proc"
)

// needPostgres skips when the server binaries are missing (make deps
// installs them; on CI they are present and the tests run).
func needPostgres(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: skipping tests that start a real PostgreSQL server")
	}
	if _, err := Available(); err != nil {
		t.Skipf("PostgreSQL binaries not installed: %v", err)
	}
}

// testLog sends the server's output to the test log, only shown on failure
// or with -v.
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func start(t *testing.T, ctx context.Context, opts Options) *Server {
	t.Helper()
	opts.Log = testLog{t}
	s, err := Start(ctx, opts)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		pid := s.PID()
		if err := s.Close(context.Background()); err != nil {
			t.Errorf("close: %v", err)
		}
		if pid != 0 && proc.Alive(pid) {
			t.Errorf("postgres pid %d still alive after Close", pid)
		}
	})
	return s
}

func query(ctx context.Context, dsn, sql string, args ...any) ([]string, error) {
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, err
	}
	defer c.Close(context.Background())
	rows, err := c.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

func exec(t *testing.T, ctx context.Context, dsn, sql string, args ...any) {
	t.Helper()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer c.Close(context.Background())
	if _, err := c.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// holdConn opens a connection and returns it with its backend's PID.
func holdConn(t *testing.T, ctx context.Context, dsn string) (*pgx.Conn, int) {
	t.Helper()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	var pid int
	if err := c.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatalf("backend pid: %v", err)
	}
	return c, pid
}

func wantRows(t *testing.T, ctx context.Context, dsn string, want ...string) {
	t.Helper()
	got, err := query(ctx, dsn, "SELECT v FROM kv ORDER BY v")
	if err != nil {
		t.Fatalf("select: %v", err)
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("rows = %v, want %v", got, want)
	}
}

func TestLifecycle(t *testing.T) {
	needPostgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	// t.TempDir is 0700 root when tests run as root: Start must cope.
	dir := t.TempDir()
	s := start(t, ctx, Options{Dir: dir, Host: "127.0.0.5", Password: "p@ss w'rd:/?"})
	if !strings.HasPrefix(s.Addr(), "127.0.0.5:") {
		t.Fatalf("Addr = %s, want 127.0.0.5:port", s.Addr())
	}
	if !strings.Contains(s.DSN(), "sslmode=disable") || !strings.Contains(s.DSN(), "connect_timeout=2") {
		t.Fatalf("DSN lacks sslmode/connect_timeout: %s", s.DSN())
	}
	dsn := s.DSN()
	exec(t, ctx, dsn, "CREATE TABLE kv (v text PRIMARY KEY)")
	exec(t, ctx, dsn, "INSERT INTO kv VALUES ('a')")

	// A wrong password is refused: the user really has password auth.
	bad := strings.Replace(dsn, "p%40ss", "nope", 1)
	if bad == dsn {
		t.Fatalf("test bug: password not found in DSN %s", dsn)
	}
	if _, err := query(ctx, bad, "SELECT 'x'"); err == nil {
		t.Fatal("connected with a wrong password")
	}

	// Clean stop: process gone, connections refused.
	pid := s.PID()
	if pid == 0 || !proc.Alive(pid) {
		t.Fatalf("PID %d not alive while running", pid)
	}
	if err := s.Stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if proc.Alive(pid) || s.PID() != 0 {
		t.Fatalf("postgres pid %d alive after Stop", pid)
	}
	if _, err := query(ctx, dsn, "SELECT 'x'"); err == nil {
		t.Fatal("query succeeded while stopped")
	}
	if err := s.StartAgain(ctx); err != nil {
		t.Fatalf("start again: %v", err)
	}
	if s.DSN() != dsn {
		t.Fatalf("DSN changed across restart: %s", s.DSN())
	}
	wantRows(t, ctx, dsn, "a")

	// Crash: committed data survives crash recovery, and no process of the
	// old server (such as the backend of an open connection) survives.
	exec(t, ctx, dsn, "INSERT INTO kv VALUES ('b')")
	held, backend := holdConn(t, ctx, dsn)
	pid = s.PID()
	if err := s.Kill(ctx); err != nil {
		t.Fatalf("kill: %v", err)
	}
	if proc.Alive(pid) {
		t.Fatalf("postgres pid %d alive after Kill", pid)
	}
	if proc.Alive(backend) {
		t.Fatalf("backend pid %d of an open connection alive after Kill", backend)
	}
	held.Close(context.Background())
	if err := s.StartAgain(ctx); err != nil {
		t.Fatalf("start after kill: %v", err)
	}
	wantRows(t, ctx, dsn, "a", "b")

	// Restart while running.
	old := s.PID()
	if err := s.Restart(ctx); err != nil {
		t.Fatalf("restart: %v", err)
	}
	if s.PID() == old || proc.Alive(old) {
		t.Fatalf("restart kept pid %d", old)
	}
	wantRows(t, ctx, dsn, "a", "b")

	// Paused: a query on an open connection and a new connection both
	// time out; resumed: it works again.
	held, _ = holdConn(t, ctx, dsn)
	defer held.Close(context.Background())
	if err := s.Pause(); err != nil {
		t.Fatalf("pause: %v", err)
	}
	pctx, pcancel := context.WithTimeout(ctx, 500*time.Millisecond)
	err := held.Ping(pctx)
	pcancel()
	if err == nil {
		t.Fatal("query on an open connection succeeded while paused")
	}
	pctx, pcancel = context.WithTimeout(ctx, 500*time.Millisecond)
	_, err = query(pctx, dsn, "SELECT 'x'")
	pcancel()
	if err == nil {
		t.Fatal("new connection succeeded while paused")
	}
	if err := s.Resume(); err != nil {
		t.Fatalf("resume: %v", err)
	}
	wantRows(t, ctx, dsn, "a", "b")

	// Stopping a paused server works too.
	if err := s.Pause(); err != nil {
		t.Fatalf("pause: %v", err)
	}
	pid = s.PID()
	if err := s.Stop(ctx); err != nil {
		t.Fatalf("stop paused: %v", err)
	}
	if proc.Alive(pid) {
		t.Fatalf("paused postgres pid %d alive after Stop", pid)
	}

	// Close leaves a caller's Dir in place, and a new Start reuses it.
	if err := s.Close(ctx); err != nil {
		t.Fatalf("close: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "PG_VERSION")); err != nil {
		t.Fatalf("data dir gone after Close of a caller's Dir: %v", err)
	}
	if err := s.StartAgain(ctx); err == nil {
		t.Fatal("StartAgain after Close succeeded")
	}
	s2 := start(t, ctx, Options{Dir: dir, Host: "127.0.0.5", Password: "other"})
	wantRows(t, ctx, s2.DSN(), "a", "b")
}

func TestTempDirRemoved(t *testing.T) {
	needPostgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s := start(t, ctx, Options{})
	dir, pid := s.Dir(), s.PID()
	if _, err := query(ctx, s.DSN(), "SELECT current_user::text"); err != nil {
		t.Fatalf("query: %v", err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatalf("close: %v", err)
	}
	if proc.Alive(pid) {
		t.Fatalf("postgres pid %d alive after Close", pid)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("temp dir %s not removed by Close: %v", dir, err)
	}
}

func TestStartFailsCleanly(t *testing.T) {
	needPostgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// The port is taken: startup must fail, say why, and leave nothing.
	s := start(t, ctx, Options{})
	_, err := Start(ctx, Options{Dir: t.TempDir(), Host: "127.0.0.1", Port: mustPort(t, s.Addr())})
	if err == nil {
		t.Fatal("second server on a taken port started")
	}
	if !strings.Contains(err.Error(), "exited during startup") {
		t.Fatalf("error does not say the server exited: %v", err)
	}
}

func mustPort(t *testing.T, addr string) int {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestFindBinDir(t *testing.T) {
	empty := t.TempDir()
	_, err := findBinDir([]string{empty}, empty)
	if err == nil || !strings.Contains(err.Error(), "apt-get install postgresql") || !strings.Contains(err.Error(), "initdb") {
		t.Fatalf("error should name the binaries and how to install them: %v", err)
	}
	good := t.TempDir()
	for _, n := range []string{"initdb", "postgres"} {
		if err := os.WriteFile(filepath.Join(good, n), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if d, err := findBinDir([]string{empty}, "/nonexistent:"+good); err != nil || d != good {
		t.Fatalf("findBinDir via PATH = %q, %v; want %q", d, err, good)
	}
	if _, err := Start(context.Background(), Options{BinDir: empty}); err == nil || !strings.Contains(err.Error(), "apt-get install postgresql") {
		t.Fatalf("Start with an empty BinDir: %v", err)
	}
	if versionKey("/usr/lib/postgresql/15/bin") != 15 {
		t.Fatal("versionKey")
	}
}
