package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"  // driver "pgx"
	_ "github.com/microsoft/go-mssqldb" // driver "sqlserver"
	_ "modernc.org/sqlite"              // driver "sqlite"
)

// Defaults for the Open options.
const (
	// DefaultConnectTimeout bounds establishing one connection, and Ping,
	// so a database outage is noticed within seconds.
	DefaultConnectTimeout = 3 * time.Second
	// DefaultOpTimeout bounds every other operation whose ctx has no
	// deadline (a paused database server would otherwise hang it forever).
	DefaultOpTimeout = 10 * time.Second
	// DefaultOpenTimeout bounds Open (connect + schema) when ctx has no deadline.
	DefaultOpenTimeout = 30 * time.Second
	// DefaultBusyTimeout is how long SQLite waits for another connection or
	// process holding the write lock.
	DefaultBusyTimeout = 10 * time.Second
	// DefaultMaxConcurrentTasks is a new node's task cap, as in Octopus.
	DefaultMaxConcurrentTasks = 20
)

// AcceptedDSNs describes the DSN forms Open accepts.
const AcceptedDSNs = "sqlite:PATH, postgres://user:pass@host:port/db (or postgresql://), " +
	"sqlserver://user:pass@host:port?database=db"

// Option configures Open.
type Option func(*options)

type options struct {
	connectTimeout time.Duration
	opTimeout      time.Duration
	busyTimeout    time.Duration
	log            *slog.Logger
	reconnect      ReconnectPolicy
}

// WithConnectTimeout sets how long establishing a connection (and Ping)
// may take (default DefaultConnectTimeout).
func WithConnectTimeout(d time.Duration) Option { return func(o *options) { o.connectTimeout = d } }

// WithOpTimeout bounds operations whose ctx has no deadline (default
// DefaultOpTimeout; 0 leaves them unbounded).
func WithOpTimeout(d time.Duration) Option { return func(o *options) { o.opTimeout = d } }

// WithBusyTimeout sets SQLite's wait for the write lock (default DefaultBusyTimeout).
func WithBusyTimeout(d time.Duration) Option { return func(o *options) { o.busyTimeout = d } }

// WithLogger logs schema retries (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// DB is the shared database of a fake cluster. It is safe for concurrent
// use; database/sql reconnects by itself after an outage, so a DB stays
// usable across a database restart without being reopened.
type DB struct {
	sql     *sql.DB
	d       *dialect
	dsn     string   // redacted
	secrets []string // passwords in the DSN, kept out of error messages
	opts    options
}

// Open connects to the database named by dsn and creates the schema if it
// does not exist yet; several nodes (goroutines or processes) may Open the
// same database at once. dsn is one of:
//
//	sqlite:PATH                  modernc.org/sqlite, a file shared by processes (WAL, busy timeout)
//	postgres://… postgresql://…  pgx
//	sqlserver://…                github.com/microsoft/go-mssqldb
//
// SQLite runs with synchronous=NORMAL in WAL mode: a killed node process
// loses no committed row (only a machine crash could). "sqlite::memory:"
// is a private in-memory database on a single connection. Open fails if the
// database cannot be reached within the connect timeout; it does not wait
// for one that is still starting.
func Open(ctx context.Context, dsn string, opts ...Option) (*DB, error) {
	o := options{
		connectTimeout: DefaultConnectTimeout,
		opTimeout:      DefaultOpTimeout,
		busyTimeout:    DefaultBusyTimeout,
		log:            slog.Default(),
		reconnect:      DefaultReconnect,
	}
	for _, opt := range opts {
		opt(&o)
	}
	redacted := RedactDSN(dsn)
	drv, driverDSN, d, memory, err := driverFor(dsn, o)
	if err != nil {
		return nil, err
	}
	sdb, err := sql.Open(drv, driverDSN)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", redacted, scrub(err, dsn))
	}
	if d.connLost != nil {
		// Reopen through a connector whose connections drop themselves
		// after a connection loss (reconnect.go).
		dc, ok := sdb.Driver().(driver.DriverContext)
		if !ok {
			_ = sdb.Close()
			return nil, fmt.Errorf("store: open %s: driver %s has no connector", redacted, drv)
		}
		conn, err := dc.OpenConnector(driverDSN)
		_ = sdb.Close()
		if err != nil {
			return nil, fmt.Errorf("store: open %s: %w", redacted, scrub(err, dsn))
		}
		sdb = sql.OpenDB(lossConnector{Connector: conn, lost: d.connLost})
	}
	if memory {
		// Each connection to ":memory:" is its own database: keep exactly one.
		sdb.SetMaxOpenConns(1)
	} else {
		// Idle connections die silently in an outage; do not keep them long.
		sdb.SetConnMaxIdleTime(30 * time.Second)
		sdb.SetMaxIdleConns(4)
	}
	db := &DB{sql: sdb, d: d, dsn: redacted, secrets: secrets(dsn), opts: o}
	octx, cancel := bound(ctx, DefaultOpenTimeout)
	defer cancel()
	if err := db.createSchema(octx); err != nil {
		_ = sdb.Close()
		return nil, fmt.Errorf("store: open %s: %w", redacted, scrub(err, dsn))
	}
	return db, nil
}

// driverFor maps a DSN to a driver name, the driver's DSN and the dialect.
func driverFor(dsn string, o options) (driver, driverDSN string, d *dialect, memory bool, err error) {
	lower := strings.ToLower(dsn)
	switch {
	case strings.HasPrefix(lower, "sqlite:"):
		path := strings.TrimPrefix(dsn[len("sqlite:"):], "//") // sqlite:///abs/path
		if path == "" || strings.HasPrefix(path, "?") {
			return "", "", nil, false, fmt.Errorf("store: DSN %q has no file path; want sqlite:PATH", RedactDSN(dsn))
		}
		memory = path == ":memory:" || strings.HasPrefix(path, ":memory:?")
		// Busy timeout first so the WAL switch itself waits for other
		// processes; immediate transactions take the write lock up front,
		// since a read lock upgraded later fails at once with SQLITE_BUSY.
		params := "_busy_timeout=" + strconv.FormatInt(o.busyTimeout.Milliseconds(), 10) +
			"&_journal_mode=WAL&_synchronous=NORMAL&_txlock=immediate"
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		return "sqlite", path + sep + params, sqliteDialect, memory, nil
	case strings.HasPrefix(lower, "postgres://"), strings.HasPrefix(lower, "postgresql://"):
		u, err := url.Parse(dsn)
		if err != nil {
			return "", "", nil, false, fmt.Errorf("store: parse DSN %s: %w", RedactDSN(dsn), scrub(err, dsn))
		}
		q := u.Query()
		if q.Get("connect_timeout") == "" {
			q.Set("connect_timeout", strconv.Itoa(ceilSeconds(o.connectTimeout)))
			u.RawQuery = q.Encode()
		}
		return "pgx", u.String(), postgresDialect, false, nil
	case strings.HasPrefix(lower, "sqlserver://"):
		u, err := url.Parse(dsn)
		if err != nil {
			return "", "", nil, false, fmt.Errorf("store: parse DSN %s: %w", RedactDSN(dsn), scrub(err, dsn))
		}
		q := u.Query()
		if q.Get("dial timeout") == "" {
			q.Set("dial timeout", strconv.Itoa(ceilSeconds(o.connectTimeout)))
			u.RawQuery = q.Encode()
		}
		return "sqlserver", u.String(), mssqlDialect, false, nil
	}
	return "", "", nil, false, fmt.Errorf("store: unsupported database DSN %q; accepted forms: %s", RedactDSN(dsn), AcceptedDSNs)
}

func ceilSeconds(d time.Duration) int {
	s := int((d + time.Second - 1) / time.Second)
	return max(s, 1)
}

// bound adds timeout d to ctx unless it already has a deadline (or d <= 0).
func bound(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok || d <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}

func (db *DB) op(ctx context.Context) (context.Context, context.CancelFunc) {
	return bound(ctx, db.opts.opTimeout)
}

// createSchema runs the dialect's schema in one transaction, retrying a few
// times on errors a concurrent creator can cause.
func (db *DB) createSchema(ctx context.Context) error {
	const attempts = 5
	var err error
	for i := 1; ; i++ {
		if err = db.tryCreateSchema(ctx); err == nil {
			return nil
		}
		if i == attempts || !db.d.transient(err) {
			return fmt.Errorf("create schema: %w", err)
		}
		db.opts.log.Debug("store: retrying schema creation", "db", db.dsn, "attempt", i, "err", err)
		t := time.NewTimer(time.Duration(i) * 100 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("create schema: %w (after %v)", ctx.Err(), err)
		case <-t.C:
		}
	}
}

func (db *DB) tryCreateSchema(ctx context.Context) error {
	tx, err := db.sql.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	if db.d.lockSchema != "" {
		if _, err := tx.ExecContext(ctx, db.d.lockSchema); err != nil {
			return fmt.Errorf("take schema lock: %w", err)
		}
	}
	for _, s := range slices.Concat(db.d.schema, userSchema(db.d.kind)) {
		if _, err := tx.ExecContext(ctx, s); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// retry runs idempotent work under the reconnect policy (reconnect.go).
func (db *DB) retry(ctx context.Context, op func(context.Context) error) error {
	return db.opts.reconnect.do(ctx, db.d.connLost, op)
}

// errorf is fmt.Errorf with the DSN's passwords scrubbed from the message.
func (db *DB) errorf(format string, args ...any) error {
	return scrubSecrets(fmt.Errorf(format, args...), db.secrets)
}

// Kind returns the database engine.
func (db *DB) Kind() Kind { return db.d.kind }

// String returns the DSN with its password redacted.
func (db *DB) String() string { return db.dsn }

// Ping checks that the database answers, within the connect timeout when
// ctx has no deadline.
func (db *DB) Ping(ctx context.Context) error {
	ctx, cancel := bound(ctx, db.opts.connectTimeout)
	defer cancel()
	if err := db.sql.PingContext(ctx); err != nil {
		return db.errorf("store: ping %s: %w", db.dsn, err)
	}
	return nil
}

// Close closes the connection pool.
func (db *DB) Close() error { return db.sql.Close() }

// Heartbeat records that node n is alive: it inserts the node if it is new
// (task cap n.MaxConcurrentTasks, DefaultMaxConcurrentTasks if 0; not in
// maintenance) or else updates its Name, LastSeen, Version and URL. It never
// changes an existing node's maintenance mode or task cap: those belong to
// UpdateNode, which any node may call for any other, as in Octopus. A zero
// LastSeen means now.
func (db *DB) Heartbeat(ctx context.Context, n Node) error {
	if n.ID == "" {
		return errors.New("store: heartbeat: empty node ID")
	}
	if n.MaxConcurrentTasks <= 0 {
		n.MaxConcurrentTasks = DefaultMaxConcurrentTasks
	}
	if n.LastSeen.IsZero() {
		n.LastSeen = time.Now()
	}
	ctx, cancel := db.op(ctx)
	defer cancel()
	s := db.d.heartbeatStmt(n)
	// An upsert of the same row: idempotent, so retried on a new
	// connection after a connection loss.
	err := db.retry(ctx, func(ctx context.Context) error {
		_, err := db.sql.ExecContext(ctx, s.sql, s.args...)
		return err
	})
	if err != nil {
		return db.errorf("store: heartbeat of node %s: %w", n.ID, err)
	}
	return nil
}

// Nodes returns every node, sorted by ID.
func (db *DB) Nodes(ctx context.Context) ([]Node, error) {
	ctx, cancel := db.op(ctx)
	defer cancel()
	s := db.d.nodesStmt()
	rows, err := db.sql.QueryContext(ctx, s.sql, s.args...)
	if err != nil {
		return nil, db.errorf("store: list nodes: %w", err)
	}
	defer rows.Close()
	var out []Node
	for rows.Next() {
		n, err := scanNode(rows)
		if err != nil {
			return nil, db.errorf("store: list nodes: %w", err)
		}
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		return nil, db.errorf("store: list nodes: %w", err)
	}
	return out, nil
}

// Node returns one node; the error wraps ErrNotFound if there is none.
func (db *DB) Node(ctx context.Context, id string) (Node, error) {
	ctx, cancel := db.op(ctx)
	defer cancel()
	return db.node(ctx, id)
}

func (db *DB) node(ctx context.Context, id string) (Node, error) {
	s := db.d.nodeStmt(id)
	var n Node
	err := db.retry(ctx, func(ctx context.Context) (err error) {
		n, err = scanNode(db.sql.QueryRowContext(ctx, s.sql, s.args...))
		return err
	})
	if errors.Is(err, sql.ErrNoRows) {
		return Node{}, db.errorf("store: node %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Node{}, db.errorf("store: node %s: %w", id, err)
	}
	return n, nil
}

// UpdateNode sets a node's maintenance mode and/or task cap (nil leaves a
// field as it is) and returns the node; the error wraps ErrNotFound if
// there is no such node.
func (db *DB) UpdateNode(ctx context.Context, id string, maintenance *bool, maxTasks *int) (Node, error) {
	if maxTasks != nil && *maxTasks < 0 {
		return Node{}, db.errorf("store: update node %s: negative MaxConcurrentTasks %d", id, *maxTasks)
	}
	ctx, cancel := db.op(ctx)
	defer cancel()
	if s, ok := db.d.updateNodeStmt(id, maintenance, maxTasks); ok {
		res, err := db.sql.ExecContext(ctx, s.sql, s.args...)
		if err != nil {
			return Node{}, db.errorf("store: update node %s: %w", id, err)
		}
		if n, err := res.RowsAffected(); err == nil && n == 0 {
			return Node{}, db.errorf("store: update node %s: %w", id, ErrNotFound)
		}
	}
	return db.node(ctx, id)
}

// DeleteNode removes a node; the error wraps ErrNotFound if there is none.
func (db *DB) DeleteNode(ctx context.Context, id string) error {
	ctx, cancel := db.op(ctx)
	defer cancel()
	s := db.d.deleteNodeStmt(id)
	res, err := db.sql.ExecContext(ctx, s.sql, s.args...)
	if err != nil {
		return db.errorf("store: delete node %s: %w", id, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return db.errorf("store: delete node %s: %w", id, ErrNotFound)
	}
	return nil
}

// AddPackage records a package version. Without replace, an existing
// (SpaceID, PackageID, Version) makes it fail with an error wrapping
// ErrExists; of several concurrent adders of one version exactly one
// succeeds. With replace it inserts or overwrites the row, and created says
// which. Package IDs are case-insensitive, as in Octopus: the row keeps the
// spelling the package was first recorded with, whatever p's.
func (db *DB) AddPackage(ctx context.Context, p Package, replace bool) (created bool, err error) {
	err = db.LockPackage(ctx, p.SpaceID, p.PackageID, func(ctx context.Context, tx *PackageTx) error {
		created, err = tx.Add(ctx, p, replace)
		return err
	})
	return created, err
}

// Package returns one package version, its ID matched in any case; the
// error wraps ErrNotFound if there is none.
func (db *DB) Package(ctx context.Context, spaceID, packageID, version string) (Package, error) {
	ctx, cancel := db.op(ctx)
	defer cancel()
	s := db.d.packageStmt(spaceID, packageID, version)
	p, err := scanPackage(db.sql.QueryRowContext(ctx, s.sql, s.args...))
	if errors.Is(err, sql.ErrNoRows) {
		return Package{}, db.errorf("store: package %s/%s %s: %w", spaceID, packageID, version, ErrNotFound)
	}
	if err != nil {
		return Package{}, db.errorf("store: package %s/%s %s: %w", spaceID, packageID, version, err)
	}
	return p, nil
}

// LatestPackage returns the highest version of a package by SemVer
// precedence (a release outranks its pre-releases; build metadata is
// ignored, then the version text breaks ties); the error wraps ErrNotFound
// if the package has no version.
func (db *DB) LatestPackage(ctx context.Context, spaceID, packageID string) (Package, error) {
	ctx, cancel := db.op(ctx)
	defer cancel()
	s := db.d.versionsStmt(spaceID, packageID)
	all, err := db.queryPackages(ctx, s)
	if err != nil {
		return Package{}, db.errorf("store: latest of package %s/%s: %w", spaceID, packageID, err)
	}
	if len(all) == 0 {
		return Package{}, db.errorf("store: latest of package %s/%s: %w", spaceID, packageID, ErrNotFound)
	}
	sort.Slice(all, func(i, j int) bool { return CompareVersions(all[i].Version, all[j].Version) > 0 })
	return all[0], nil
}

// ListPackages returns one page of the packages matching q, ordered by
// PackageID, then Version (as text), then Published, and the number of all
// matches.
func (db *DB) ListPackages(ctx context.Context, q PackageQuery) (items []Package, total int, err error) {
	ctx, cancel := db.op(ctx)
	defer cancel()
	count, list := db.d.listPackagesStmts(q)
	if err := db.sql.QueryRowContext(ctx, count.sql, count.args...).Scan(&total); err != nil {
		return nil, 0, db.errorf("store: count packages: %w", err)
	}
	items, err = db.queryPackages(ctx, list)
	if err != nil {
		return nil, 0, db.errorf("store: list packages: %w", err)
	}
	return items, total, nil
}

// DeletePackage removes a package version's row, its ID matched in any
// case; the error wraps ErrNotFound if there is none.
func (db *DB) DeletePackage(ctx context.Context, spaceID, packageID, version string) error {
	ctx, cancel := db.op(ctx)
	defer cancel()
	s := db.d.deletePackageStmt(spaceID, packageID, version)
	res, err := db.sql.ExecContext(ctx, s.sql, s.args...)
	if err != nil {
		return db.errorf("store: delete package %s/%s %s: %w", spaceID, packageID, version, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return db.errorf("store: delete package %s/%s %s: %w", spaceID, packageID, version, ErrNotFound)
	}
	return nil
}

func (db *DB) queryPackages(ctx context.Context, s stmt) ([]Package, error) {
	rows, err := db.sql.QueryContext(ctx, s.sql, s.args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Package
	for rows.Next() {
		p, err := scanPackage(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

type scanner interface{ Scan(dest ...any) error }

func scanNode(r scanner) (Node, error) {
	var n Node
	var maxTasks, lastSeen int64
	if err := r.Scan(&n.ID, &n.Name, &maxTasks, &n.IsInMaintenanceMode, &lastSeen, &n.Version, &n.URL); err != nil {
		return Node{}, err
	}
	n.MaxConcurrentTasks = int(maxTasks)
	n.LastSeen = fromNanos(lastSeen)
	return n, nil
}

func scanPackage(r scanner) (Package, error) {
	var p Package
	var published int64
	if err := r.Scan(&p.SpaceID, &p.PackageID, &p.Version, &p.Extension, &p.Hash, &p.Size, &p.Path, &published, &p.NodeID); err != nil {
		return Package{}, err
	}
	p.Published = fromNanos(published)
	return p, nil
}

// toNanos stores a time as Unix nanoseconds (portable across the engines);
// the zero time is 0.
func toNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// fromNanos is toNanos's inverse, in UTC.
func fromNanos(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}
