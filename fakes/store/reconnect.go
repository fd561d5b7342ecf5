package store

import (
	"context"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"syscall"
	"time"
)

// Connection loss, and what a client does about it, as Microsoft tells
// Azure SQL clients to (learn.microsoft.com, "Troubleshoot transient
// connection errors"; /work/shared/reference/azure.md): on a transient
// error the connection is dropped, never used again, and the work is
// retried on a NEW connection after a delay, a bounded number of times.
// database/sql discards a connection only when the driver says so
// (driver.ErrBadConn, or Validator.IsValid false): pgx marks a connection
// closed after a network error, but a SQL Server error such as 40613
// ("database not currently available") arrives on a connection the driver
// still calls good. So every connection is wrapped (lossConn): once one of
// its calls fails with a connection-loss error it reports itself invalid
// and the pool closes it instead of reusing it.

// mssqlTransient are the SQL Server / Azure SQL error numbers Microsoft
// lists as transient (reconnect and retry): 40613 database unavailable,
// 40501 service busy, 40197 error processing the request (failover),
// 10928/10929 resource limits, 49918–49920 cannot process request, 4060
// cannot open database, 4221 login timed out on a readable secondary,
// 233/64 connection dropped, 10053/10054/10060 transport errors (source:
// the Azure SQL section of /work/shared/reference/azure.md).
var mssqlTransient = map[int32]bool{
	40613: true, 40501: true, 40197: true, 10928: true, 10929: true,
	49918: true, 49919: true, 49920: true, 4060: true, 4221: true,
	233: true, 64: true, 10053: true, 10054: true, 10060: true,
}

// mssqlConnLost reports whether a SQL Server error means: drop this
// connection and reconnect.
func mssqlConnLost(err error) bool {
	if err == nil {
		return false
	}
	if mssqlTransient[mssqlErrNumber(err)] {
		return true
	}
	return netLost(err)
}

// pgConnLost is PostgreSQL's equivalent: SQLSTATE class 08 (connection
// exception), 57P01–57P03 (the server is shutting down, crashed or not
// accepting connections yet: a failover in progress), 25006 (a read-only
// transaction: the connection reached a standby, as a listener that has
// not moved yet sends it there) — and any network error.
func pgConnLost(err error) bool {
	if err == nil {
		return false
	}
	st := pgState(err)
	switch {
	case len(st) == 5 && st[:2] == "08":
		return true
	case st == "57P01", st == "57P02", st == "57P03", st == "25006":
		return true
	}
	return netLost(err)
}

// netLost: errors that say the connection itself is gone.
func netLost(err error) bool {
	var ne net.Error
	switch {
	case errors.Is(err, driver.ErrBadConn), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EPIPE),
		errors.Is(err, net.ErrClosed):
		return true
	case errors.As(err, &ne):
		return true
	}
	return false
}

// ReconnectPolicy is how an idempotent operation is retried after a
// connection loss: Attempts in all (1: no retry), the first retry after
// Delay, each later one after twice the last, at most MaxDelay.
type ReconnectPolicy struct {
	Attempts        int
	Delay, MaxDelay time.Duration
}

// DefaultReconnect: one retry after a delay, as SqlClient's connection
// resiliency defaults (ConnectRetryCount 1; its ConnectRetryInterval is
// 10 s, scaled here to 250 ms because a node's heartbeat, which bounds the
// operation, is a few seconds in the simulated clusters and the next
// heartbeat is the next reconnect anyway).
var DefaultReconnect = ReconnectPolicy{Attempts: 2, Delay: 250 * time.Millisecond, MaxDelay: 5 * time.Second}

// WithReconnect sets the policy for idempotent operations (Ping excluded:
// it must report an outage at once).
func WithReconnect(p ReconnectPolicy) Option { return func(o *options) { o.reconnect = p } }

// do runs op, and again on a new connection after a delay while it fails
// with a connection loss and attempts remain. Only for idempotent work:
// a lost connection may have committed what it was doing.
func (p ReconnectPolicy) do(ctx context.Context, lost func(error) bool, op func(context.Context) error) error {
	delay := p.Delay
	for attempt := 1; ; attempt++ {
		err := op(ctx)
		if err == nil || lost == nil || !lost(err) || attempt >= p.Attempts {
			return err
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		delay = min(2*delay, max(p.MaxDelay, p.Delay))
	}
}

// lossConnector wraps a driver's connector so that every connection it
// makes marks itself bad on a connection-loss error.
type lossConnector struct {
	driver.Connector
	lost func(error) bool
}

func (c lossConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &lossConn{Conn: conn, lost: c.lost}, nil
}

// lossConn forwards to the driver's connection and remembers whether a
// call failed with a connection loss.
type lossConn struct {
	driver.Conn
	lost func(error) bool
	bad  atomic.Bool
}

func (c *lossConn) note(err error) error {
	if err != nil && c.lost(err) {
		c.bad.Store(true)
	}
	return err
}

// IsValid implements driver.Validator: database/sql closes an invalid
// connection instead of returning it to the pool.
func (c *lossConn) IsValid() bool {
	if c.bad.Load() {
		return false
	}
	if v, ok := c.Conn.(driver.Validator); ok {
		return v.IsValid()
	}
	return true
}

// ResetSession implements driver.SessionResetter.
func (c *lossConn) ResetSession(ctx context.Context) error {
	if c.bad.Load() {
		return driver.ErrBadConn
	}
	if r, ok := c.Conn.(driver.SessionResetter); ok {
		return c.note(r.ResetSession(ctx))
	}
	return nil
}

func (c *lossConn) Ping(ctx context.Context) error {
	if c.bad.Load() {
		return driver.ErrBadConn
	}
	if p, ok := c.Conn.(driver.Pinger); ok {
		return c.note(p.Ping(ctx))
	}
	return nil
}

func (c *lossConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	if p, ok := c.Conn.(driver.ConnPrepareContext); ok {
		s, err := p.PrepareContext(ctx, query)
		return s, c.note(err)
	}
	s, err := c.Conn.Prepare(query)
	return s, c.note(err)
}

func (c *lossConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	b, ok := c.Conn.(driver.ConnBeginTx)
	if !ok {
		return nil, errors.New("store: driver connection cannot begin a transaction with options")
	}
	tx, err := b.BeginTx(ctx, opts)
	if err != nil {
		return nil, c.note(err)
	}
	return lossTx{tx, c}, nil
}

func (c *lossConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	e, ok := c.Conn.(driver.ExecerContext)
	if !ok {
		return nil, driver.ErrSkip
	}
	r, err := e.ExecContext(ctx, query, args)
	if errors.Is(err, driver.ErrSkip) {
		return r, err
	}
	return r, c.note(err)
}

func (c *lossConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	q, ok := c.Conn.(driver.QueryerContext)
	if !ok {
		return nil, driver.ErrSkip
	}
	r, err := q.QueryContext(ctx, query, args)
	if errors.Is(err, driver.ErrSkip) {
		return r, err
	}
	return r, c.note(err)
}

// CheckNamedValue keeps the driver's own argument conversions (pgx and
// go-mssqldb both have them).
func (c *lossConn) CheckNamedValue(nv *driver.NamedValue) error {
	if ch, ok := c.Conn.(driver.NamedValueChecker); ok {
		return ch.CheckNamedValue(nv)
	}
	return driver.ErrSkip
}

type lossTx struct {
	driver.Tx
	c *lossConn
}

func (t lossTx) Commit() error   { return t.c.note(t.Tx.Commit()) }
func (t lossTx) Rollback() error { return t.c.note(t.Tx.Rollback()) }

var (
	_ driver.Validator          = (*lossConn)(nil)
	_ driver.SessionResetter    = (*lossConn)(nil)
	_ driver.Pinger             = (*lossConn)(nil)
	_ driver.ConnPrepareContext = (*lossConn)(nil)
	_ driver.ConnBeginTx        = (*lossConn)(nil)
	_ driver.ExecerContext      = (*lossConn)(nil)
	_ driver.QueryerContext     = (*lossConn)(nil)
	_ driver.NamedValueChecker  = (*lossConn)(nil)
)
