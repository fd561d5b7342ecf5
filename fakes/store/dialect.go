package store

import (
	"errors"
	"strconv"
	"strings"
)

// The SQL each engine runs. Shared statements are written once with "?"
// placeholders and rebound; what differs (types, upserts, paging, schema
// locking) is spelled out per dialect below so it can be read and
// unit-tested without a server.

// Column lists, in the order rows are scanned and arguments are passed.
const (
	nodeCols = "id, name, max_tasks, maintenance, last_seen_ns, app_version, url"
	pkgCols  = "space_id, package_id, pkg_version, file_ext, file_hash, size_bytes, file_path, published_ns, node_id"
	// pkgKey is the unique key of a package row.
	pkgKey = "space_id, package_id, pkg_version"
	// pkgOrder makes listings stable and identical on every engine (all key
	// columns use binary collation).
	pkgOrder = "package_id, pkg_version, published_ns, space_id"
)

// dialect is one engine's SQL.
type dialect struct {
	kind Kind
	// connLost reports an error after which the connection must be
	// dropped and the work retried on a new one (reconnect.go); nil: the
	// engine is embedded and has no connections to lose.
	connLost func(error) bool
	// bindvar returns the n-th (1-based) placeholder.
	bindvar func(n int) string
	// lockSchema serialises concurrent schema creation inside the schema
	// transaction; empty when the transaction itself does (SQLite's BEGIN
	// IMMEDIATE takes the database write lock).
	lockSchema string
	// schema creates the tables if they do not exist; run in order in one
	// transaction after lockSchema.
	schema []string
	// heartbeat inserts a node (not in maintenance) or updates its name,
	// last-seen, version and URL, never its maintenance flag or task cap.
	// Args: id, name, max_tasks, last_seen_ns, app_version, url.
	heartbeat string
	// insertPackage inserts a package row. Args: pkgCols. "Already there"
	// shows as no row affected or a unique violation.
	insertPackage string
	// upsertPackage inserts or replaces a package row and returns one row
	// with its revision: 0 when it was inserted, >0 when it replaced one.
	// Args: pkgCols.
	upsertPackage string
	// lockPackage takes one package's lock for the rest of the transaction
	// (see DB.LockPackage); empty when BEGIN already does (SQLite). Arg:
	// the lock key (packageLockKey, hashed where hashLockKey is set).
	lockPackage string
	// lockPackageShared is lockPackage in shared mode, for readers that
	// only wait for writers; empty when BEGIN takes the lock.
	lockPackageShared string
	hashLockKey       bool
	// insertTask queues a task and returns one row with its seq. Args:
	// space_id, name, description, args, queue_ns, updated_ns.
	insertTask string
	// insertLease creates a lease row, unheld, unless it exists. Args:
	// name (twice on SQL Server).
	insertLease     string
	insertLeaseArgs int
	// page returns the paging clause (after ORDER BY) and its args.
	page func(skip, take int) (string, []any)
	// uniqueViolation reports a duplicate-key error.
	uniqueViolation func(error) bool
	// transient reports an error worth retrying schema creation for
	// (deadlock victim, lock timeout, a concurrent creator winning a race).
	transient func(error) bool
}

// stmt is one statement ready to run.
type stmt struct {
	sql  string
	args []any
}

// rebind turns "?" placeholders (outside string literals and quoted
// identifiers) into the dialect's.
func (d *dialect) rebind(q string) string {
	if d.kind == SQLite {
		return q
	}
	var b strings.Builder
	n := 0
	var quote byte
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '?':
			n++
			b.WriteString(d.bindvar(n))
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

func (d *dialect) stmt(q string, args ...any) stmt { return stmt{d.rebind(q), args} }

// Statements shared by every dialect.

func (d *dialect) heartbeatStmt(n Node) stmt {
	return d.stmt(d.heartbeat, n.ID, n.Name, int64(n.MaxConcurrentTasks), toNanos(n.LastSeen), n.Version, n.URL)
}

func (d *dialect) nodesStmt() stmt {
	return d.stmt("SELECT " + nodeCols + " FROM octoha_node ORDER BY id")
}

func (d *dialect) nodeStmt(id string) stmt {
	return d.stmt("SELECT "+nodeCols+" FROM octoha_node WHERE id = ?", id)
}

// updateNodeStmt sets only the fields given; ok is false when none is.
func (d *dialect) updateNodeStmt(id string, maintenance *bool, maxTasks *int) (s stmt, ok bool) {
	var set []string
	var args []any
	if maintenance != nil {
		set = append(set, "maintenance = ?")
		args = append(args, *maintenance)
	}
	if maxTasks != nil {
		set = append(set, "max_tasks = ?")
		args = append(args, int64(*maxTasks))
	}
	if len(set) == 0 {
		return stmt{}, false
	}
	return d.stmt("UPDATE octoha_node SET "+strings.Join(set, ", ")+" WHERE id = ?", append(args, id)...), true
}

func (d *dialect) deleteNodeStmt(id string) stmt {
	return d.stmt("DELETE FROM octoha_node WHERE id = ?", id)
}

func pkgArgs(p Package) []any {
	return []any{p.SpaceID, p.PackageID, p.Version, p.Extension, p.Hash, p.Size, p.Path, toNanos(p.Published), p.NodeID}
}

func (d *dialect) insertPackageStmt(p Package) stmt { return d.stmt(d.insertPackage, pkgArgs(p)...) }
func (d *dialect) upsertPackageStmt(p Package) stmt { return d.stmt(d.upsertPackage, pkgArgs(p)...) }

// Package IDs are case-insensitive (as in Octopus, and as file names are on
// an SMB share): every statement that names one compares lower case. IDs are
// ASCII word characters, where every engine's LOWER agrees with Go's. The
// key columns keep binary collation, so a row keeps its ID's first spelling.
const pkgIDIs = "LOWER(package_id) = LOWER(?)"

// Versions too: the node stores them normalised (1.0.0, never 01.0 or
// 1.0.0+meta), and NuGet compares pre-release labels in any case, so
// 1.0.0-Beta and 1.0.0-beta are one version. ASCII only, like IDs.
const pkgVersionIs = "LOWER(pkg_version) = LOWER(?)"

func (d *dialect) packageStmt(spaceID, packageID, version string) stmt {
	return d.stmt("SELECT "+pkgCols+" FROM octoha_package WHERE space_id = ? AND "+pkgIDIs+" AND "+pkgVersionIs,
		spaceID, packageID, version)
}

// versionsStmt lists a package's versions, ordered so that the first row's
// spelling of the ID is stable.
func (d *dialect) versionsStmt(spaceID, packageID string) stmt {
	return d.stmt("SELECT "+pkgCols+" FROM octoha_package WHERE space_id = ? AND "+pkgIDIs+" ORDER BY "+pkgOrder, spaceID, packageID)
}

func (d *dialect) deletePackageStmt(spaceID, packageID, version string) stmt {
	return d.stmt("DELETE FROM octoha_package WHERE space_id = ? AND "+pkgIDIs+" AND "+pkgVersionIs,
		spaceID, packageID, version)
}

// lockPackageStmt takes a package's lock; ok is false when beginning the
// transaction took it.
func (d *dialect) lockPackageStmt(spaceID, packageID string, shared bool) (s stmt, ok bool) {
	q := d.lockPackage
	if shared {
		q = d.lockPackageShared
	}
	if q == "" {
		return stmt{}, false
	}
	key := packageLockKey(spaceID, packageID)
	if d.hashLockKey {
		key = hashedLockKey(key)
	}
	return d.stmt(q, key), true
}

// listPackagesStmts returns the count and the page queries for q.
func (d *dialect) listPackagesStmts(q PackageQuery) (count, list stmt) {
	var where []string
	var args []any
	if q.SpaceID != "" {
		where = append(where, "space_id = ?")
		args = append(args, q.SpaceID)
	}
	if q.PackageID != "" {
		where = append(where, pkgIDIs)
		args = append(args, q.PackageID)
	}
	if q.Filter != "" {
		// Package IDs are ASCII word characters, where every engine's LOWER
		// agrees with Go's.
		where = append(where, `LOWER(package_id) LIKE ? ESCAPE '\'`)
		args = append(args, "%"+escapeLike(strings.ToLower(q.Filter))+"%")
	}
	cond := ""
	if len(where) > 0 {
		cond = " WHERE " + strings.Join(where, " AND ")
	}
	count = d.stmt("SELECT COUNT(*) FROM octoha_package"+cond, args...)
	pageSQL, pageArgs := d.page(clampPage(q.Skip), clampPage(q.Take))
	list = d.stmt("SELECT "+pkgCols+" FROM octoha_package"+cond+" ORDER BY "+pkgOrder+" "+pageSQL,
		append(append([]any{}, args...), pageArgs...)...)
	return count, list
}

// MaxPage bounds Skip and Take: Octopus reads them as 32-bit integers, and
// clients ask for "everything" with int.MaxValue. Anything larger (or
// negative) is clamped, so no engine sees an out-of-range OFFSET or LIMIT.
const MaxPage = 1<<31 - 1

func clampPage(n int) int { return min(max(n, 0), MaxPage) }

// escapeLike escapes LIKE's wildcards with a backslash.
func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// Error classification through the drivers' error methods, so this file
// needs no driver types.
type (
	sqliteCoder interface{ Code() int }             // modernc.org/sqlite *Error
	pgStater    interface{ SQLState() string }      // pgx *pgconn.PgError
	mssqlNumber interface{ SQLErrorNumber() int32 } // go-mssqldb Error
)

func sqliteCode(err error) int {
	var e sqliteCoder
	if errors.As(err, &e) {
		return e.Code()
	}
	return 0
}

func pgState(err error) string {
	var e pgStater
	if errors.As(err, &e) {
		return e.SQLState()
	}
	return ""
}

func mssqlErrNumber(err error) int32 {
	var e mssqlNumber
	if errors.As(err, &e) {
		return e.SQLErrorNumber()
	}
	return 0
}

var sqliteDialect = &dialect{
	kind:    SQLite,
	bindvar: func(int) string { return "?" },
	schema: []string{
		`CREATE TABLE IF NOT EXISTS octoha_node (
	id           TEXT    NOT NULL PRIMARY KEY,
	name         TEXT    NOT NULL,
	max_tasks    INTEGER NOT NULL,
	maintenance  INTEGER NOT NULL DEFAULT 0,
	last_seen_ns INTEGER NOT NULL,
	app_version  TEXT    NOT NULL,
	url          TEXT    NOT NULL
)`,
		`CREATE TABLE IF NOT EXISTS octoha_package (
	space_id     TEXT    NOT NULL,
	package_id   TEXT    NOT NULL,
	pkg_version  TEXT    NOT NULL,
	file_ext     TEXT    NOT NULL,
	file_hash    TEXT    NOT NULL,
	size_bytes   INTEGER NOT NULL,
	file_path    TEXT    NOT NULL,
	published_ns INTEGER NOT NULL,
	node_id      TEXT    NOT NULL,
	revision     INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (space_id, package_id, pkg_version)
)`,
		`CREATE TABLE IF NOT EXISTS octoha_task (
	seq          INTEGER PRIMARY KEY AUTOINCREMENT,
	space_id     TEXT    NOT NULL,
	name         TEXT    NOT NULL,
	description  TEXT    NOT NULL,
	args         TEXT    NOT NULL,
	state        TEXT    NOT NULL,
	server_node  TEXT    NOT NULL DEFAULT '',
	queue_ns     INTEGER NOT NULL,
	start_ns     INTEGER NOT NULL DEFAULT 0,
	completed_ns INTEGER NOT NULL DEFAULT 0,
	updated_ns   INTEGER NOT NULL,
	error_msg    TEXT    NOT NULL DEFAULT ''
)`,
		`CREATE INDEX IF NOT EXISTS ix_octoha_task_queue ON octoha_task (state, queue_ns, seq)`,
		`CREATE INDEX IF NOT EXISTS ix_octoha_task_node ON octoha_task (server_node, state)`,
		`CREATE TABLE IF NOT EXISTS octoha_lease (
	name       TEXT    NOT NULL PRIMARY KEY,
	node_id    TEXT    NOT NULL,
	node_name  TEXT    NOT NULL,
	expires_ns INTEGER NOT NULL,
	term       INTEGER NOT NULL
)`,
	},
	heartbeat: `INSERT INTO octoha_node (` + nodeCols + `)
VALUES (?, ?, ?, 0, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET name = excluded.name, last_seen_ns = excluded.last_seen_ns,
	app_version = excluded.app_version, url = excluded.url`,
	insertPackage: `INSERT INTO octoha_package (` + pkgCols + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (` + pkgKey + `) DO NOTHING`,
	upsertPackage: `INSERT INTO octoha_package (` + pkgCols + `, revision) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0)
ON CONFLICT (` + pkgKey + `) DO UPDATE SET file_ext = excluded.file_ext, file_hash = excluded.file_hash,
	size_bytes = excluded.size_bytes, file_path = excluded.file_path, published_ns = excluded.published_ns,
	node_id = excluded.node_id, revision = octoha_package.revision + 1
RETURNING revision`,
	insertTask: `INSERT INTO octoha_task (space_id, name, description, args, state, queue_ns, updated_ns)
VALUES (?, ?, ?, ?, 'Queued', ?, ?) RETURNING seq`,
	insertLease:     `INSERT INTO octoha_lease (name, node_id, node_name, expires_ns, term) VALUES (?, '', '', 0, 0) ON CONFLICT (name) DO NOTHING`,
	insertLeaseArgs: 1,
	page: func(skip, take int) (string, []any) {
		if take > 0 {
			return "LIMIT ? OFFSET ?", []any{int64(take), int64(skip)}
		}
		return "LIMIT -1 OFFSET ?", []any{int64(skip)}
	},
	uniqueViolation: func(err error) bool {
		c := sqliteCode(err)
		return c == 1555 || c == 2067 // SQLITE_CONSTRAINT_PRIMARYKEY, SQLITE_CONSTRAINT_UNIQUE
	},
	transient: func(err error) bool {
		c := sqliteCode(err) & 0xff
		return c == 5 || c == 6 // SQLITE_BUSY, SQLITE_LOCKED
	},
}

// schemaLockKey is the advisory lock (PostgreSQL) / app lock (SQL Server)
// that serialises schema creation: concurrent CREATE TABLE IF NOT EXISTS
// race on PostgreSQL's catalog and fail with a unique violation.
const schemaLockKey = 0x6f63746f6861 // "octoha"

// packageLockClass is the first key of PostgreSQL's package locks.
const packageLockClass = 0x6f6370 // "ocp"

var postgresDialect = &dialect{
	kind:       Postgres,
	connLost:   pgConnLost,
	bindvar:    func(n int) string { return "$" + strconv.Itoa(n) },
	lockSchema: "SELECT pg_advisory_xact_lock(" + strconv.Itoa(schemaLockKey) + ")",
	schema: []string{
		`CREATE TABLE IF NOT EXISTS octoha_node (
	id           TEXT COLLATE "C" NOT NULL PRIMARY KEY,
	name         TEXT    NOT NULL,
	max_tasks    INTEGER NOT NULL,
	maintenance  BOOLEAN NOT NULL DEFAULT FALSE,
	last_seen_ns BIGINT  NOT NULL,
	app_version  TEXT    NOT NULL,
	url          TEXT    NOT NULL
)`,
		`CREATE TABLE IF NOT EXISTS octoha_package (
	space_id     TEXT COLLATE "C" NOT NULL,
	package_id   TEXT COLLATE "C" NOT NULL,
	pkg_version  TEXT COLLATE "C" NOT NULL,
	file_ext     TEXT   NOT NULL,
	file_hash    TEXT   NOT NULL,
	size_bytes   BIGINT NOT NULL,
	file_path    TEXT   NOT NULL,
	published_ns BIGINT NOT NULL,
	node_id      TEXT   NOT NULL,
	revision     BIGINT NOT NULL DEFAULT 0,
	PRIMARY KEY (space_id, package_id, pkg_version)
)`,
		`CREATE TABLE IF NOT EXISTS octoha_task (
	seq          BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	space_id     TEXT COLLATE "C" NOT NULL,
	name         TEXT   NOT NULL,
	description  TEXT   NOT NULL,
	args         TEXT   NOT NULL,
	state        TEXT COLLATE "C" NOT NULL,
	server_node  TEXT COLLATE "C" NOT NULL DEFAULT '',
	queue_ns     BIGINT NOT NULL,
	start_ns     BIGINT NOT NULL DEFAULT 0,
	completed_ns BIGINT NOT NULL DEFAULT 0,
	updated_ns   BIGINT NOT NULL,
	error_msg    TEXT   NOT NULL DEFAULT ''
)`,
		`CREATE INDEX IF NOT EXISTS ix_octoha_task_queue ON octoha_task (state, queue_ns, seq)`,
		`CREATE INDEX IF NOT EXISTS ix_octoha_task_node ON octoha_task (server_node, state)`,
		`CREATE TABLE IF NOT EXISTS octoha_lease (
	name       TEXT COLLATE "C" NOT NULL PRIMARY KEY,
	node_id    TEXT   NOT NULL,
	node_name  TEXT   NOT NULL,
	expires_ns BIGINT NOT NULL,
	term       BIGINT NOT NULL
)`,
	},
	heartbeat: `INSERT INTO octoha_node (` + nodeCols + `)
VALUES (?, ?, ?, FALSE, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET name = excluded.name, last_seen_ns = excluded.last_seen_ns,
	app_version = excluded.app_version, url = excluded.url`,
	insertPackage: `INSERT INTO octoha_package (` + pkgCols + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (` + pkgKey + `) DO NOTHING`,
	upsertPackage: `INSERT INTO octoha_package (` + pkgCols + `, revision) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0)
ON CONFLICT (` + pkgKey + `) DO UPDATE SET file_ext = excluded.file_ext, file_hash = excluded.file_hash,
	size_bytes = excluded.size_bytes, file_path = excluded.file_path, published_ns = excluded.published_ns,
	node_id = excluded.node_id, revision = octoha_package.revision + 1
RETURNING revision`,
	insertTask: `INSERT INTO octoha_task (space_id, name, description, args, state, queue_ns, updated_ns)
VALUES (?, ?, ?, ?, 'Queued', ?, ?) RETURNING seq`,
	insertLease:     `INSERT INTO octoha_lease (name, node_id, node_name, expires_ns, term) VALUES (?, '', '', 0, 0) ON CONFLICT (name) DO NOTHING`,
	insertLeaseArgs: 1,
	page: func(skip, take int) (string, []any) {
		if take > 0 {
			return "LIMIT ? OFFSET ?", []any{int64(take), int64(skip)}
		}
		return "OFFSET ?", []any{int64(skip)}
	},
	// A transaction-scoped advisory lock in its own key space (the two-int
	// form never meets schemaLockKey's one-bigint form); a hash collision
	// only serialises two packages needlessly.
	lockPackage:       "SELECT pg_advisory_xact_lock(" + strconv.Itoa(packageLockClass) + ", hashtext(?))",
	lockPackageShared: "SELECT pg_advisory_xact_lock_shared(" + strconv.Itoa(packageLockClass) + ", hashtext(?))",
	uniqueViolation:   func(err error) bool { return pgState(err) == "23505" },
	transient: func(err error) bool {
		switch pgState(err) {
		case "40001", "40P01", "55P03", "23505", "42P07": // serialization, deadlock, lock, duplicate key/table
			return true
		}
		return false
	},
}

// SQL Server: binary collation on key columns so uniqueness, ordering and
// equality match the other engines (the server default is case-insensitive).
const mssqlKey = "COLLATE Latin1_General_100_BIN2 NOT NULL"

// mssqlPackageLock takes a package's application lock in mode.
func mssqlPackageLock(mode string) string {
	return `DECLARE @rc INT;
EXEC @rc = sp_getapplock @Resource = ?, @LockMode = N'` + mode + `',
	@LockOwner = N'Transaction', @LockTimeout = 30000;
IF @rc < 0 RAISERROR(N'octoha: package lock not granted (sp_getapplock returned %d)', 16, 1, @rc);`
}

var mssqlDialect = &dialect{
	kind:     SQLServer,
	connLost: mssqlConnLost,
	bindvar:  func(n int) string { return "@p" + strconv.Itoa(n) },
	lockSchema: `DECLARE @rc INT;
EXEC @rc = sp_getapplock @Resource = N'octoha.store.schema', @LockMode = N'Exclusive',
	@LockOwner = N'Transaction', @LockTimeout = 30000;
IF @rc < 0 RAISERROR(N'octoha: schema lock not granted (sp_getapplock returned %d)', 16, 1, @rc);`,
	schema: []string{
		`IF OBJECT_ID(N'octoha_node', N'U') IS NULL
CREATE TABLE octoha_node (
	id           NVARCHAR(100) ` + mssqlKey + ` PRIMARY KEY,
	name         NVARCHAR(200)  NOT NULL,
	max_tasks    INT            NOT NULL,
	maintenance  BIT            NOT NULL DEFAULT 0,
	last_seen_ns BIGINT         NOT NULL,
	app_version  NVARCHAR(100)  NOT NULL,
	url          NVARCHAR(1000) NOT NULL
)`,
		`IF OBJECT_ID(N'octoha_package', N'U') IS NULL
CREATE TABLE octoha_package (
	space_id     NVARCHAR(50)  ` + mssqlKey + `,
	package_id   NVARCHAR(200) ` + mssqlKey + `,
	pkg_version  NVARCHAR(100) ` + mssqlKey + `,
	file_ext     NVARCHAR(20)   NOT NULL,
	file_hash    NVARCHAR(128)  NOT NULL,
	size_bytes   BIGINT         NOT NULL,
	file_path    NVARCHAR(1000) NOT NULL,
	published_ns BIGINT         NOT NULL,
	node_id      NVARCHAR(100)  NOT NULL,
	revision     BIGINT         NOT NULL DEFAULT 0,
	CONSTRAINT pk_octoha_package PRIMARY KEY (space_id, package_id, pkg_version)
)`,
		`IF OBJECT_ID(N'octoha_task', N'U') IS NULL
CREATE TABLE octoha_task (
	seq          BIGINT IDENTITY(1,1) PRIMARY KEY,
	space_id     NVARCHAR(50)  ` + mssqlKey + `,
	name         NVARCHAR(100)  NOT NULL,
	description  NVARCHAR(MAX)  NOT NULL,
	args         NVARCHAR(MAX)  NOT NULL,
	state        NVARCHAR(20)  ` + mssqlKey + `,
	server_node  NVARCHAR(200) ` + mssqlKey + ` DEFAULT '',
	queue_ns     BIGINT         NOT NULL,
	start_ns     BIGINT         NOT NULL DEFAULT 0,
	completed_ns BIGINT         NOT NULL DEFAULT 0,
	updated_ns   BIGINT         NOT NULL,
	error_msg    NVARCHAR(MAX)  NOT NULL DEFAULT ''
)`,
		`IF INDEXPROPERTY(OBJECT_ID(N'octoha_task'), N'ix_octoha_task_queue', N'IndexID') IS NULL
CREATE INDEX ix_octoha_task_queue ON octoha_task (state, queue_ns, seq)`,
		`IF INDEXPROPERTY(OBJECT_ID(N'octoha_task'), N'ix_octoha_task_node', N'IndexID') IS NULL
CREATE INDEX ix_octoha_task_node ON octoha_task (server_node, state)`,
		`IF OBJECT_ID(N'octoha_lease', N'U') IS NULL
CREATE TABLE octoha_lease (
	name       NVARCHAR(100) ` + mssqlKey + ` PRIMARY KEY,
	node_id    NVARCHAR(100) NOT NULL,
	node_name  NVARCHAR(200) NOT NULL,
	expires_ns BIGINT        NOT NULL,
	term       BIGINT        NOT NULL
)`,
	},
	// MERGE needs HOLDLOCK (serializable on the key range) or two concurrent
	// upserts of a new key both take the NOT MATCHED branch.
	heartbeat: `MERGE octoha_node WITH (HOLDLOCK) AS t
USING (SELECT ? AS id, ? AS name, ? AS max_tasks, ? AS last_seen_ns, ? AS app_version, ? AS url) AS s
ON t.id = s.id
WHEN MATCHED THEN UPDATE SET t.name = s.name, t.last_seen_ns = s.last_seen_ns,
	t.app_version = s.app_version, t.url = s.url
WHEN NOT MATCHED THEN INSERT (` + nodeCols + `)
	VALUES (s.id, s.name, s.max_tasks, 0, s.last_seen_ns, s.app_version, s.url);`,
	// The primary key makes a plain INSERT atomic: the loser of a race gets
	// error 2627.
	insertPackage: `INSERT INTO octoha_package (` + pkgCols + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
	upsertPackage: `MERGE octoha_package WITH (HOLDLOCK) AS t
USING (SELECT ? AS space_id, ? AS package_id, ? AS pkg_version, ? AS file_ext, ? AS file_hash,
	? AS size_bytes, ? AS file_path, ? AS published_ns, ? AS node_id) AS s
ON t.space_id = s.space_id AND t.package_id = s.package_id AND t.pkg_version = s.pkg_version
WHEN MATCHED THEN UPDATE SET t.file_ext = s.file_ext, t.file_hash = s.file_hash, t.size_bytes = s.size_bytes,
	t.file_path = s.file_path, t.published_ns = s.published_ns, t.node_id = s.node_id, t.revision = t.revision + 1
WHEN NOT MATCHED THEN INSERT (` + pkgCols + `, revision)
	VALUES (s.space_id, s.package_id, s.pkg_version, s.file_ext, s.file_hash, s.size_bytes, s.file_path,
	s.published_ns, s.node_id, 0)
OUTPUT inserted.revision;`,
	// An application lock owned by the transaction; names are at most 255
	// characters, so the key is hashed.
	lockPackage:       mssqlPackageLock("Exclusive"),
	lockPackageShared: mssqlPackageLock("Shared"),
	hashLockKey:       true,
	insertTask: `INSERT INTO octoha_task (space_id, name, description, args, state, queue_ns, updated_ns)
OUTPUT inserted.seq VALUES (?, ?, ?, ?, N'Queued', ?, ?)`,
	// HOLDLOCK keeps the key range locked from the check to the insert, so
	// two creators do not both insert (the loser would get error 2627).
	insertLease: `INSERT INTO octoha_lease (name, node_id, node_name, expires_ns, term)
SELECT ?, N'', N'', 0, 0 WHERE NOT EXISTS (SELECT 1 FROM octoha_lease WITH (UPDLOCK, HOLDLOCK) WHERE name = ?)`,
	insertLeaseArgs: 2,
	page: func(skip, take int) (string, []any) {
		if take > 0 {
			return "OFFSET ? ROWS FETCH NEXT ? ROWS ONLY", []any{int64(skip), int64(take)}
		}
		return "OFFSET ? ROWS", []any{int64(skip)}
	},
	uniqueViolation: func(err error) bool {
		n := mssqlErrNumber(err)
		return n == 2627 || n == 2601 // PRIMARY KEY / UNIQUE index violation
	},
	transient: func(err error) bool {
		switch mssqlErrNumber(err) {
		case 1205, 1222, 2714: // deadlock victim, lock timeout, object already exists
			return true
		}
		return false
	},
}
