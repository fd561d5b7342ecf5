package store

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// Database outages against the shared PostgreSQL server: the same *DB fails
// fast while the database is away and works again once it is back,
// without being reopened, with every acknowledged write kept.

func TestPostgresOutage(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault func(context.Context) error
	}{
		{"Stop", func(ctx context.Context) error { return pg.srv.Stop(ctx) }},
		{"Kill", func(ctx context.Context) error { return pg.srv.Kill(ctx) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := pgServer(t)
			ctx := testCtx(t)
			t.Cleanup(func() { ensureRunning(t) })
			db := openT(t, pgFreshDSN(t), WithConnectTimeout(time.Second), WithOpTimeout(3*time.Second))
			n := Node{ID: "n1", Name: "one"}
			if err := db.Heartbeat(ctx, n); err != nil {
				t.Fatal(err)
			}
			p := Package{SpaceID: "Spaces-1", PackageID: "Acme", Version: "1.0.0", Size: 42}
			if _, err := db.AddPackage(ctx, p, false); err != nil {
				t.Fatal(err)
			}

			fstart := time.Now()
			if err := tc.fault(ctx); err != nil {
				t.Fatal(err)
			}
			t.Logf("%s took %v", tc.name, time.Since(fstart))
			start := time.Now()
			err := db.Ping(context.Background())
			if err == nil {
				t.Fatal("Ping succeeded with the database down")
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Fatalf("Ping took %v to fail, want about the 1s connect timeout at most", d)
			}
			if strings.Contains(err.Error(), srv.DSN()) || !strings.Contains(err.Error(), "(redacted)") {
				t.Fatalf("error should name the DSN with its password redacted: %v", err)
			}
			if err := db.Heartbeat(context.Background(), n); err == nil {
				t.Fatal("Heartbeat succeeded with the database down")
			}
			if _, err := db.Nodes(context.Background()); err == nil {
				t.Fatal("Nodes succeeded with the database down")
			}

			t.Logf("failing operations took %v", time.Since(start))
			if err := srv.StartAgain(ctx); err != nil {
				t.Fatal(err)
			}
			// The pool's old connections are dead; database/sql (with pgx's
			// liveness check on reuse) must replace them by itself.
			if err := db.Ping(ctx); err != nil {
				t.Fatalf("Ping after the database came back: %v", err)
			}
			if err := db.Heartbeat(ctx, n); err != nil {
				t.Fatalf("Heartbeat after recovery: %v", err)
			}
			got, err := db.Package(ctx, p.SpaceID, p.PackageID, p.Version)
			if err != nil || got.Size != 42 {
				t.Fatalf("acknowledged package after the outage: %+v, %v", got, err)
			}
			if _, err := db.AddPackage(ctx, p, false); !errors.Is(err, ErrExists) {
				t.Fatalf("re-add after recovery: %v, want ErrExists", err)
			}
		})
	}
}

// A frozen (SIGSTOP) database: operations time out instead of hanging,
// and work again after it resumes.
func TestPostgresPaused(t *testing.T) {
	srv := pgServer(t)
	ctx := testCtx(t)
	t.Cleanup(func() { ensureRunning(t) })
	db := openT(t, pgFreshDSN(t), WithConnectTimeout(time.Second), WithOpTimeout(2*time.Second))
	if err := db.Heartbeat(ctx, Node{ID: "n1"}); err != nil {
		t.Fatal(err)
	}
	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := db.Ping(context.Background()); err == nil {
		t.Fatal("Ping succeeded while the database was paused")
	}
	if err := db.Heartbeat(context.Background(), Node{ID: "n1"}); err == nil {
		t.Fatal("Heartbeat succeeded while the database was paused")
	}
	if d := time.Since(start); d > 6*time.Second {
		t.Fatalf("two operations took %v to fail, want about 1s + 2s", d)
	}
	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	if err := db.Ping(ctx); err != nil {
		t.Fatalf("Ping after resume: %v", err)
	}
	if _, err := db.Node(ctx, "n1"); err != nil {
		t.Fatalf("Node after resume: %v", err)
	}
}

// ensureRunning brings the shared server back after a fault test, even
// one that failed half-way, so later tests have it.
func ensureRunning(t *testing.T) {
	if pg.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = pg.srv.Resume()
	if !pg.srv.Running() {
		if err := pg.srv.StartAgain(ctx); err != nil {
			t.Errorf("restart the shared PostgreSQL server: %v", err)
		}
	}
}
