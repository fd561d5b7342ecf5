package postgres

import (
	"context"
	"testing"
	"time"
)

// A real primary and a streaming standby: what the primary commits is
// replayed on the standby (synchronously when asked), the standby refuses
// writes until promoted, and accepts them after.
func TestStandbyReplicatesAndPromotes(t *testing.T) {
	needPostgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	primary := start(t, ctx, Options{})
	if err := primary.EnableReplication(ctx); err != nil {
		t.Fatal(err)
	}
	exec(t, ctx, primary.DSN(), "CREATE TABLE t (v text)")
	exec(t, ctx, primary.DSN(), "INSERT INTO t VALUES ('before')")
	standby, err := StartStandby(ctx, primary, StandbyOptions{Options: Options{Log: testLog{t}}, Name: "pgb"})
	if err != nil {
		t.Fatal(err)
	}
	defer standby.Close(context.Background())
	if rec, err := standby.InRecovery(ctx); err != nil || !rec {
		t.Fatalf("standby in recovery: %v, %v", rec, err)
	}
	if err := primary.SetSynchronousStandby(ctx, "pgb"); err != nil {
		t.Fatal(err)
	}
	// Synchronous: the commit returns once the standby has it, so it is
	// readable there at once (remote_apply is not asked; wait for replay).
	exec(t, ctx, primary.DSN(), "INSERT INTO t VALUES ('sync')")
	lsn, err := primary.CurrentLSN(ctx)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		ok, err := standby.ReplayedAtLeast(ctx, lsn)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("standby did not replay %s within 10s", lsn)
		}
		time.Sleep(20 * time.Millisecond)
	}
	got, err := query(ctx, standby.DSN(), "SELECT v FROM t ORDER BY v")
	if err != nil || len(got) != 2 {
		t.Fatalf("standby rows %v, %v; want before and sync", got, err)
	}
	if _, err := query(ctx, standby.DSN(), "INSERT INTO t VALUES ('on standby') RETURNING v"); err == nil {
		t.Fatal("a standby accepted a write")
	}
	if err := primary.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	if err := standby.Promote(ctx); err != nil {
		t.Fatal(err)
	}
	if err := standby.SetSynchronousStandby(ctx, ""); err != nil {
		t.Fatal(err)
	}
	exec(t, ctx, standby.DSN(), "INSERT INTO t VALUES ('after')")
	if got, err := query(ctx, standby.DSN(), "SELECT v FROM t ORDER BY v"); err != nil || len(got) != 3 {
		t.Fatalf("promoted rows %v, %v; want 3", got, err)
	}
}
