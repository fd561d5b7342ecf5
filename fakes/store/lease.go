package store

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// LeaderLease is the name of the lease whose holder is the cluster's
// leader.
const LeaderLease = "leader"

// Lease is a named lease row: who holds it, until when, and the term, which
// grows by one each time the lease changes hands or lapses and is taken
// again.
type Lease struct {
	Name     string
	NodeID   string
	NodeName string
	Expires  time.Time // zero or past: nobody holds it
	Term     int64
}

// HeldAt reports whether the lease is held at now.
func (l Lease) HeldAt(now time.Time) bool { return l.NodeID != "" && now.Before(l.Expires) }

// AcquireLease takes or renews the lease name for node until now+ttl: it
// succeeds when node holds it already or nobody does at now (expired or
// released). Of several nodes acquiring a free lease at once exactly one
// succeeds: the conditional update is atomic on every engine. Times are the
// callers' clocks; a node must act on the lease only until the expiry it
// computed before calling (now+ttl), so that a node paused past it never
// acts alongside the next holder.
func (db *DB) AcquireLease(ctx context.Context, name, nodeID, nodeName string, now time.Time, ttl time.Duration) (Lease, bool, error) {
	if name == "" || nodeID == "" || ttl <= 0 {
		return Lease{}, false, db.errorf("store: acquire lease %q for %q: name, node and a positive TTL are required", name, nodeID)
	}
	ctx, cancel := db.op(ctx)
	defer cancel()
	// Read first: a follower finding the lease held writes nothing, so
	// heartbeats of many nodes do not contend for SQLite's write lock.
	cur, err := db.lease(ctx, name)
	if err != nil {
		return Lease{}, false, err
	}
	if cur.NodeID != "" && cur.NodeID != nodeID && cur.HeldAt(now) {
		return cur, false, nil
	}
	if cur.Term == 0 && cur.NodeID == "" {
		ins := db.d.insertLeaseStmt(name)
		if _, err := db.sql.ExecContext(ctx, ins.sql, ins.args...); err != nil && !db.d.uniqueViolation(err) {
			return Lease{}, false, db.errorf("store: create lease %s: %w", name, err)
		}
	}
	ok, err := db.execOne(ctx, "acquire lease "+name+" for "+nodeID, db.d.acquireLeaseStmt(name, nodeID, nodeName, now, now.Add(ttl)))
	if err != nil {
		return Lease{}, false, err
	}
	l, err := db.lease(ctx, name)
	return l, ok, err
}

// ReleaseLease gives the lease up if node holds it.
func (db *DB) ReleaseLease(ctx context.Context, name, nodeID string) error {
	s := db.d.stmt("UPDATE octoha_lease SET expires_ns = 0 WHERE name = ? AND node_id = ?", name, nodeID)
	_, err := db.execOne(ctx, "release lease "+name, s)
	return err
}

// Lease returns a lease row; a lease nobody ever took is returned empty.
func (db *DB) Lease(ctx context.Context, name string) (Lease, error) {
	ctx, cancel := db.op(ctx)
	defer cancel()
	return db.lease(ctx, name)
}

func (db *DB) lease(ctx context.Context, name string) (Lease, error) {
	s := db.d.stmt("SELECT name, node_id, node_name, expires_ns, term FROM octoha_lease WHERE name = ?", name)
	var l Lease
	var expires int64
	err := db.sql.QueryRowContext(ctx, s.sql, s.args...).Scan(&l.Name, &l.NodeID, &l.NodeName, &expires, &l.Term)
	if errors.Is(err, sql.ErrNoRows) {
		return Lease{Name: name}, nil
	}
	if err != nil {
		return Lease{}, db.errorf("store: lease %s: %w", name, err)
	}
	l.Expires = fromNanos(expires)
	return l, nil
}

func (d *dialect) insertLeaseStmt(name string) stmt {
	args := make([]any, d.insertLeaseArgs)
	for i := range args {
		args[i] = name
	}
	return d.stmt(d.insertLease, args...)
}

// acquireLeaseStmt: SET expressions read the row's old values on every
// engine, so the term grows exactly when the holder changes or the lease
// had lapsed.
func (d *dialect) acquireLeaseStmt(name, nodeID, nodeName string, now, until time.Time) stmt {
	n, u := toNanos(now), toNanos(until)
	return d.stmt(`UPDATE octoha_lease SET term = CASE WHEN node_id = ? AND expires_ns > ? THEN term ELSE term + 1 END,
	node_id = ?, node_name = ?, expires_ns = ?
WHERE name = ? AND (node_id = ? OR expires_ns <= ?)`, nodeID, n, nodeID, nodeName, u, name, nodeID, n)
}
