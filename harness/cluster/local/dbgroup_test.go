package local

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/services/postgres"
)

func groupExec(ctx context.Context, dsn, sql string) error {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := pgx.Connect(cctx, dsn)
	if err != nil {
		return err
	}
	defer c.Close(context.Background())
	_, err = c.Exec(cctx, sql)
	return err
}

func groupCount(t *testing.T, ctx context.Context, dsn string) int {
	t.Helper()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	var n int
	if err := c.QueryRow(ctx, "SELECT count(*) FROM t").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// An asynchronous failover group through its listener: what is committed
// while WAL shipping is cut is lost in a forced failover, what came before
// is kept; the rebuilt standby follows the new primary; a planned failover
// loses nothing; a reconfiguration refuses connections and ends by itself.
// Needs its own network namespace (the group listens on 127.0.0.1:5432…):
// run with `isolated`.
func TestDBGroupFailovers(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping a test that starts two real PostgreSQL servers")
	}
	if _, err := postgres.Available(); err != nil {
		t.Skipf("PostgreSQL binaries not installed: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	g, err := startDBGroup(ctx, cluster.ReplicaAsync, t.TempDir(), "127.0.0.1", io.Discard, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close(context.Background())
	dsn := g.DSN()
	for _, s := range []string{"CREATE TABLE t (v int)", "INSERT INTO t VALUES (1)"} {
		if err := groupExec(ctx, dsn, s); err != nil {
			t.Fatal(err)
		}
	}
	if err := g.PauseReplication(ctx); err != nil {
		t.Fatal(err)
	}
	if err := groupExec(ctx, dsn, "INSERT INTO t VALUES (2)"); err != nil {
		t.Fatalf("an asynchronous primary must commit with replication cut: %v", err)
	}
	if err := g.ForcedFailover(ctx); err != nil {
		t.Fatal(err)
	}
	if n := groupCount(t, ctx, dsn); n != 1 {
		t.Fatalf("after a forced failover with replication cut: %d rows, want 1 (the row committed after the cut lost)", n)
	}
	if err := g.ResumeReplication(ctx); err != nil {
		t.Fatal(err)
	}
	if err := g.RebuildStandby(ctx); err != nil {
		t.Fatal(err)
	}
	if err := groupExec(ctx, dsn, "INSERT INTO t VALUES (3)"); err != nil {
		t.Fatal(err)
	}
	if err := g.PlannedFailover(ctx); err != nil {
		t.Fatal(err)
	}
	if n := groupCount(t, ctx, dsn); n != 2 {
		t.Fatalf("after a planned failover: %d rows, want 2", n)
	}
	if err := g.RebuildStandby(ctx); err != nil {
		t.Fatal(err)
	}
	if err := g.Reconfigure(ctx, 300*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := groupExec(ctx, dsn, "SELECT 1"); err == nil {
		t.Fatal("a connection succeeded during the reconfiguration")
	}
	deadline := time.Now().Add(10 * time.Second)
	for groupExec(ctx, dsn, "SELECT 1") != nil {
		if time.Now().After(deadline) {
			t.Fatal("still refused 10s after a 300ms reconfiguration")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A synchronous group really is synchronous: with WAL shipping cut, a
// commit does not return; once shipping resumes it does.
func TestDBGroupSyncWaitsForTheStandby(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping a test that starts two real PostgreSQL servers")
	}
	if _, err := postgres.Available(); err != nil {
		t.Skipf("PostgreSQL binaries not installed: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	g, err := startDBGroup(ctx, cluster.ReplicaSync, t.TempDir(), "127.0.0.1", io.Discard, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close(context.Background())
	dsn := g.DSN()
	if err := groupExec(ctx, dsn, "CREATE TABLE t (v int)"); err != nil {
		t.Fatal(err)
	}
	if err := g.PauseReplication(ctx); err != nil {
		t.Fatal(err)
	}
	bctx, bcancel := context.WithTimeout(ctx, 1500*time.Millisecond)
	err = groupExec(bctx, dsn, "INSERT INTO t VALUES (1)")
	bcancel()
	if err == nil {
		t.Fatal("a synchronous primary acknowledged a commit with WAL shipping cut")
	}
	if err := g.ResumeReplication(ctx); err != nil {
		t.Fatal(err)
	}
	if err := groupExec(ctx, dsn, "INSERT INTO t VALUES (2)"); err != nil {
		t.Fatalf("commit after WAL shipping resumed: %v", err)
	}
}
