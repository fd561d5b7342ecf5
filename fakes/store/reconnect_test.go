package store

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net/url"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/octoha/octoha/internal/relay"
)

func TestMSSQLConnLostClassifier(t *testing.T) {
	for _, n := range []int32{40613, 40501, 40197, 10928, 10929, 49918, 49919, 49920, 4060, 4221, 233, 64, 10053, 10054, 10060} {
		if !mssqlConnLost(fmt.Errorf("heartbeat: %w", fakeMSSQLError(n))) {
			t.Errorf("error %d is transient per Microsoft but not classified as a connection loss", n)
		}
	}
	for _, n := range []int32{2627, 2601, 1205, 208, 0} {
		if mssqlConnLost(fakeMSSQLError(n)) {
			t.Errorf("error %d classified as a connection loss", n)
		}
	}
	for _, err := range []error{driver.ErrBadConn, io.EOF, syscall.ECONNRESET, fmt.Errorf("read: %w", syscall.ECONNREFUSED)} {
		if !mssqlConnLost(err) {
			t.Errorf("%v not classified as a connection loss", err)
		}
	}
	if mssqlConnLost(nil) || mssqlConnLost(errors.New("syntax error")) {
		t.Error("nil or a plain error classified as a connection loss")
	}
}

func TestPostgresConnLostClassifier(t *testing.T) {
	for _, st := range []string{"08006", "08001", "08003", "57P01", "57P02", "57P03", "25006"} {
		if !pgConnLost(fmt.Errorf("x: %w", &pgconn.PgError{Code: st})) {
			t.Errorf("SQLSTATE %s not classified as a connection loss", st)
		}
	}
	for _, st := range []string{"23505", "40001", "42P01"} {
		if pgConnLost(&pgconn.PgError{Code: st}) {
			t.Errorf("SQLSTATE %s classified as a connection loss", st)
		}
	}
}

func TestReconnectPolicy(t *testing.T) {
	lost := fakeMSSQLError(40613)
	p := ReconnectPolicy{Attempts: 3, Delay: 10 * time.Millisecond, MaxDelay: 15 * time.Millisecond}
	t.Run("retries a connection loss, bounded", func(t *testing.T) {
		var calls []time.Time
		err := p.do(context.Background(), mssqlConnLost, func(context.Context) error {
			calls = append(calls, time.Now())
			return lost
		})
		if !errors.Is(err, lost) || len(calls) != 3 {
			t.Fatalf("got %v after %d calls, want the loss after 3", err, len(calls))
		}
		if gap := calls[1].Sub(calls[0]); gap < 10*time.Millisecond {
			t.Errorf("first retry after %v, want at least the 10ms delay", gap)
		}
		if gap := calls[2].Sub(calls[1]); gap < 15*time.Millisecond {
			t.Errorf("second retry after %v, want the delay doubled, capped at 15ms", gap)
		}
	})
	t.Run("succeeds on the retry", func(t *testing.T) {
		n := 0
		err := p.do(context.Background(), mssqlConnLost, func(context.Context) error {
			if n++; n == 1 {
				return lost
			}
			return nil
		})
		if err != nil || n != 2 {
			t.Fatalf("got %v after %d calls, want success on the 2nd", err, n)
		}
	})
	t.Run("does not retry other errors", func(t *testing.T) {
		n := 0
		dup := fakeMSSQLError(2627)
		if err := p.do(context.Background(), mssqlConnLost, func(context.Context) error { n++; return dup }); !errors.Is(err, dup) || n != 1 {
			t.Fatalf("got %v after %d calls, want the error after 1", err, n)
		}
	})
	t.Run("stops when the context ends", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		n := 0
		if err := p.do(ctx, mssqlConnLost, func(context.Context) error { n++; return lost }); !errors.Is(err, lost) || n != 1 {
			t.Fatalf("got %v after %d calls, want the loss after 1", err, n)
		}
	})
}

// fakeConn is a driver connection whose Exec fails with a given error and
// which its driver still calls valid (as go-mssqldb does after a server
// error such as 40613).
type fakeConn struct{ execErr error }

func (c *fakeConn) Prepare(string) (driver.Stmt, error) { return nil, errors.New("no") }
func (c *fakeConn) Close() error                        { return nil }
func (c *fakeConn) Begin() (driver.Tx, error)           { return nil, errors.New("no") }
func (c *fakeConn) IsValid() bool                       { return true }
func (c *fakeConn) ExecContext(context.Context, string, []driver.NamedValue) (driver.Result, error) {
	return nil, c.execErr
}

func TestLossConnDropsItselfAfterATransientError(t *testing.T) {
	for _, tc := range []struct {
		err  error
		keep bool
	}{
		{fakeMSSQLError(40613), false},
		{fakeMSSQLError(10054), false},
		{fakeMSSQLError(2627), true}, // a duplicate key: the connection is fine
		{nil, true},
	} {
		c := &lossConn{Conn: &fakeConn{execErr: tc.err}, lost: mssqlConnLost}
		_, _ = c.ExecContext(context.Background(), "UPDATE x", nil)
		if c.IsValid() != tc.keep {
			t.Errorf("after %v: IsValid %v, want %v", tc.err, c.IsValid(), tc.keep)
		}
		if rerr := c.ResetSession(context.Background()); (rerr == nil) != tc.keep {
			t.Errorf("after %v: ResetSession %v", tc.err, rerr)
		}
	}
}

// A real PostgreSQL behind a relay: when every connection is reset (an
// Azure SQL reconfiguration), the next heartbeat succeeds on a new
// connection, and no reset connection is used again.
func TestPostgresReconnectAfterReset(t *testing.T) {
	srv := pgServer(t)
	ctx := testCtx(t)
	r, err := relay.Listen("127.0.0.1:0", srv.Addr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	u, err := url.Parse(pgFreshDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	u.Host = r.Addr()
	db := openT(t, u.String(), WithConnectTimeout(time.Second), WithOpTimeout(3*time.Second),
		// One retry only: if the reset connection went back to the pool,
		// the retry would take it again and fail.
		WithReconnect(ReconnectPolicy{Attempts: 2, Delay: 50 * time.Millisecond}))
	n := Node{ID: "n1", Name: "one"}
	if err := db.Heartbeat(ctx, n); err != nil {
		t.Fatal(err)
	}
	for round := 0; round < 3; round++ {
		if got := r.ResetAll(); got == 0 {
			t.Fatal("no pooled connection went through the relay")
		}
		// The pool holds only reset connections now: the heartbeat must
		// notice, drop them and succeed on a new one.
		if err := db.Heartbeat(ctx, n); err != nil {
			t.Fatalf("round %d: heartbeat after every connection was reset: %v", round, err)
		}
		if _, err := db.Node(ctx, "n1"); err != nil {
			t.Fatalf("round %d: read after the reset: %v", round, err)
		}
	}

	// Refused for a while (a reconfiguration): heartbeats fail, then
	// succeed by themselves once it ends.
	r.Refuse(500 * time.Millisecond)
	if err := db.Ping(ctx); err == nil {
		t.Fatal("ping succeeded while the listener refused connections")
	}
	deadline := time.Now().Add(10 * time.Second)
	for db.Heartbeat(ctx, n) != nil {
		if time.Now().After(deadline) {
			t.Fatal("heartbeats still fail 10s after a 500ms reconfiguration")
		}
		time.Sleep(50 * time.Millisecond) // the node's heartbeat interval, scaled
	}
}
