package store

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

// allStmts builds every statement the store runs, for one dialect.
func allStmts(d *dialect) map[string]stmt {
	on, three := true, 3
	n := Node{ID: "n1", Name: "one", MaxConcurrentTasks: 20, LastSeen: time.Unix(1, 2), Version: "v", URL: "u"}
	p := Package{SpaceID: "Spaces-1", PackageID: "Acme", Version: "1.0.0", Extension: ".zip", Hash: "h", Size: 1,
		Path: "x", Published: time.Unix(3, 4), NodeID: "n1"}
	out := map[string]stmt{
		"heartbeat":         d.heartbeatStmt(n),
		"nodes":             d.nodesStmt(),
		"node":              d.nodeStmt("n1"),
		"deleteNode":        d.deleteNodeStmt("n1"),
		"insertPackage":     d.insertPackageStmt(p),
		"upsertPackage":     d.upsertPackageStmt(p),
		"package":           d.packageStmt("s", "p", "v"),
		"versions":          d.versionsStmt("s", "p"),
		"deletePackage":     d.deletePackageStmt("s", "p", "v"),
		"lockSchema":        {sql: d.lockSchema},
		"lockPackage":       {},
		"lockPackageShared": {},
		"updateNodeBoth":    {},
		"updateNodeOne":     {},
	}
	out["updateNodeBoth"], _ = d.updateNodeStmt("n1", &on, &three)
	out["updateNodeOne"], _ = d.updateNodeStmt("n1", nil, &three)
	out["lockPackage"], _ = d.lockPackageStmt("Spaces-1", "Acme", false)
	out["lockPackageShared"], _ = d.lockPackageStmt("Spaces-1", "Acme", true)
	for i, s := range d.schema {
		out[fmt.Sprint("schema", i)] = stmt{sql: s}
	}
	at := time.Unix(5, 6)
	out["insertTask"] = d.stmt(d.insertTask, "Spaces-1", "Health", "d", "{}", int64(1), int64(1))
	out["insertLease"] = d.insertLeaseStmt("leader")
	out["acquireLease"] = d.acquireLeaseStmt("leader", "n1", "Node1", at, at.Add(time.Second))
	out["claimTask"] = d.claimTaskStmt(7, "Node1", at, true)
	out["forceClaimTask"] = d.claimTaskStmt(7, "Node1", at, false)
	out["finishTask"] = d.finishTaskStmt(7, "Node1", TaskFailed, "gone", at)
	for i, c := range d.cancelTaskStmts(7, at) {
		out[fmt.Sprint("cancelTask", i)] = c
	}
	out["queuedTasks"] = d.queuedTasksStmt("Spaces-1", 5)
	out["queuedTasksAll"] = d.queuedTasksStmt("", 5)
	for _, q := range []TaskQuery{
		{},
		{SpaceID: "s", Name: "Health", States: []string{TaskQueued, TaskExecuting}, Node: "Node1", IDs: []string{"ServerTasks-3", "x", "ServerTasks-4"}, Skip: 2, Take: 3},
	} {
		c, l, _ := d.listTasksStmts(q)
		out[fmt.Sprintf("countTasks %+v", q)] = c
		out[fmt.Sprintf("listTasks %+v", q)] = l
	}
	for _, q := range []PackageQuery{
		{},
		{SpaceID: "s", PackageID: "p", Filter: "f", Skip: 10, Take: 5},
		{SpaceID: "s", Skip: 3},
		{Filter: "f", Take: 1},
	} {
		c, l := d.listPackagesStmts(q)
		out[fmt.Sprintf("count %+v", q)] = c
		out[fmt.Sprintf("list %+v", q)] = l
	}
	return out
}

// Every statement's placeholders are the dialect's, numbered 1..N in order,
// with exactly one argument each.
func TestPlaceholdersMatchArgs(t *testing.T) {
	for _, d := range []*dialect{sqliteDialect, postgresDialect, mssqlDialect} {
		var re *regexp.Regexp
		switch d.kind {
		case SQLite:
			re = regexp.MustCompile(`\?`)
		case Postgres:
			re = regexp.MustCompile(`\$(\d+)`)
		case SQLServer:
			re = regexp.MustCompile(`@p(\d+)`)
		}
		for name, s := range allStmts(d) {
			m := re.FindAllStringSubmatch(s.sql, -1)
			if len(m) != len(s.args) {
				t.Errorf("%s %s: %d placeholders, %d args:\n%s", d.kind, name, len(m), len(s.args), s.sql)
			}
			for i, g := range m {
				if len(g) > 1 && g[1] != fmt.Sprint(i+1) {
					t.Errorf("%s %s: placeholder %d is %s", d.kind, name, i+1, g[0])
				}
			}
			if d.kind != SQLite && strings.Contains(s.sql, "?") {
				t.Errorf("%s %s: unbound ?:\n%s", d.kind, name, s.sql)
			}
		}
	}
}

// SQL Server's SQL is checked here, without a server (none can run on this
// machine): T-SQL only, upserts that hold their key-range locks, OFFSET/FETCH
// paging, SQL Server types.
func TestSQLServerStatements(t *testing.T) {
	d := mssqlDialect
	st := allStmts(d)
	for name, s := range st {
		for _, bad := range []string{"LIMIT", "ON CONFLICT", "RETURNING", "IF NOT EXISTS", "BOOLEAN", "TRUE", "FALSE",
			"||", "$1", "excluded.", " TEXT"} {
			if strings.Contains(strings.ToUpper(s.sql), strings.ToUpper(bad)) {
				t.Errorf("%s contains %q, not T-SQL:\n%s", name, bad, s.sql)
			}
		}
	}

	hb := st["heartbeat"]
	for _, want := range []string{
		"MERGE octoha_node WITH (HOLDLOCK) AS t",
		"USING (SELECT @p1 AS id, @p2 AS name, @p3 AS max_tasks, @p4 AS last_seen_ns, @p5 AS app_version, @p6 AS url) AS s",
		"ON t.id = s.id",
		"WHEN NOT MATCHED THEN INSERT (id, name, max_tasks, maintenance, last_seen_ns, app_version, url)",
		"VALUES (s.id, s.name, s.max_tasks, 0, s.last_seen_ns, s.app_version, s.url);",
	} {
		if !strings.Contains(hb.sql, want) {
			t.Errorf("heartbeat lacks %q:\n%s", want, hb.sql)
		}
	}
	// The update branch must leave maintenance and the cap alone.
	matched := hb.sql[strings.Index(hb.sql, "WHEN MATCHED"):strings.Index(hb.sql, "WHEN NOT MATCHED")]
	if strings.Contains(matched, "maintenance") || strings.Contains(matched, "max_tasks") {
		t.Errorf("heartbeat's update branch touches maintenance or max_tasks: %s", matched)
	}
	if hb.args[2] != int64(20) || hb.args[3] != time.Unix(1, 2).UnixNano() {
		t.Errorf("heartbeat args = %v", hb.args)
	}

	up := st["upsertPackage"].sql
	for _, want := range []string{
		"MERGE octoha_package WITH (HOLDLOCK) AS t",
		"ON t.space_id = s.space_id AND t.package_id = s.package_id AND t.pkg_version = s.pkg_version",
		"t.revision = t.revision + 1",
		"OUTPUT inserted.revision;",
		"@p9 AS node_id",
	} {
		if !strings.Contains(up, want) {
			t.Errorf("upsertPackage lacks %q:\n%s", want, up)
		}
	}
	if got, want := st["insertPackage"].sql, "INSERT INTO octoha_package (space_id, package_id, pkg_version, file_ext, file_hash, size_bytes, file_path, published_ns, node_id) VALUES (@p1, @p2, @p3, @p4, @p5, @p6, @p7, @p8, @p9)"; got != want {
		t.Errorf("insertPackage =\n%s\nwant\n%s", got, want)
	}

	c, l := d.listPackagesStmts(PackageQuery{SpaceID: "Spaces-1", Filter: "A_b", Skip: 10, Take: 5})
	if want := `SELECT COUNT(*) FROM octoha_package WHERE space_id = @p1 AND LOWER(package_id) LIKE @p2 ESCAPE '\'`; c.sql != want {
		t.Errorf("count =\n%s\nwant\n%s", c.sql, want)
	}
	if want := "SELECT " + pkgCols + ` FROM octoha_package WHERE space_id = @p1 AND LOWER(package_id) LIKE @p2 ESCAPE '\'` +
		" ORDER BY package_id, pkg_version, published_ns, space_id OFFSET @p3 ROWS FETCH NEXT @p4 ROWS ONLY"; l.sql != want {
		t.Errorf("list =\n%s\nwant\n%s", l.sql, want)
	}
	if fmt.Sprint(l.args) != `[Spaces-1 %a\_b% 10 5]` {
		t.Errorf("list args = %v", l.args)
	}
	_, l = d.listPackagesStmts(PackageQuery{Skip: 7})
	if !strings.HasSuffix(l.sql, "ORDER BY package_id, pkg_version, published_ns, space_id OFFSET @p1 ROWS") || fmt.Sprint(l.args) != "[7]" {
		t.Errorf("list without Take = %s %v", l.sql, l.args)
	}

	if s, _ := d.updateNodeStmt("n1", nil, nil); s.sql != "" {
		t.Errorf("update with nothing to set = %q", s.sql)
	}
	if got := st["updateNodeBoth"].sql; got != "UPDATE octoha_node SET maintenance = @p1, max_tasks = @p2 WHERE id = @p3" {
		t.Errorf("updateNode = %s", got)
	}

	schema := strings.Join(d.schema, "\n")
	for _, want := range []string{
		"IF OBJECT_ID(N'octoha_node', N'U') IS NULL", "IF OBJECT_ID(N'octoha_package', N'U') IS NULL",
		"NVARCHAR(100) COLLATE Latin1_General_100_BIN2 NOT NULL PRIMARY KEY", "BIT            NOT NULL DEFAULT 0",
		"last_seen_ns BIGINT", "published_ns BIGINT", "size_bytes   BIGINT", "max_tasks    INT",
		"CONSTRAINT pk_octoha_package PRIMARY KEY (space_id, package_id, pkg_version)",
	} {
		if !strings.Contains(schema, want) {
			t.Errorf("schema lacks %q", want)
		}
	}
	// The task queue: an identity key, the new ID through OUTPUT, indexes
	// created only once, claims conditional on the state.
	for _, want := range []string{
		"seq          BIGINT IDENTITY(1,1) PRIMARY KEY", "IF OBJECT_ID(N'octoha_task', N'U') IS NULL",
		"IF INDEXPROPERTY(OBJECT_ID(N'octoha_task'), N'ix_octoha_task_queue', N'IndexID') IS NULL",
		"IF OBJECT_ID(N'octoha_lease', N'U') IS NULL", "description  NVARCHAR(MAX)",
	} {
		if !strings.Contains(schema, want) {
			t.Errorf("schema lacks %q", want)
		}
	}
	if got := st["insertTask"].sql; !strings.Contains(got, "OUTPUT inserted.seq VALUES (@p1, @p2, @p3, @p4, N'Queued', @p5, @p6)") {
		t.Errorf("insertTask:\n%s", got)
	}
	if got := st["claimTask"].sql; got != "UPDATE octoha_task SET state = 'Executing', server_node = @p1, start_ns = @p2, updated_ns = @p3 WHERE seq = @p4 AND state = 'Queued'" {
		t.Errorf("claimTask:\n%s", got)
	}
	if got := st["forceClaimTask"].sql; strings.Contains(got, "state = 'Queued'") {
		t.Errorf("the unsafe claim checks the state:\n%s", got)
	}
	if got := st["finishTask"].sql; !strings.HasSuffix(got, "WHERE seq = @p5 AND server_node = @p6 AND state IN ('Executing', 'Cancelling')") {
		t.Errorf("finishTask:\n%s", got)
	}
	if got := st["insertLease"].sql; !strings.Contains(got, "WITH (UPDLOCK, HOLDLOCK) WHERE name = @p2") {
		t.Errorf("insertLease:\n%s", got)
	}
	if got := st["queuedTasks"].sql; !strings.HasSuffix(got, "WHERE state = 'Queued' AND space_id = @p1 ORDER BY queue_ns, seq OFFSET @p2 ROWS FETCH NEXT @p3 ROWS ONLY") {
		t.Errorf("queuedTasks:\n%s", got)
	}
	if got := st["acquireLease"].sql; !strings.Contains(got, "WHERE name = @p6 AND (node_id = @p7 OR expires_ns <= @p8)") {
		t.Errorf("acquireLease:\n%s", got)
	}
	// Clustered index keys are limited to 900 bytes: NVARCHAR is 2 bytes a character.
	if keyBytes := 2 * (50 + 200 + 100); keyBytes > 900 {
		t.Errorf("package key is %d bytes", keyBytes)
	}
	for _, want := range []string{"sp_getapplock", "@LockOwner = N'Transaction'", "IF @rc < 0 RAISERROR("} {
		if !strings.Contains(d.lockSchema, want) {
			t.Errorf("schema lock lacks %q", want)
		}
	}
	// The package lock (issue 11 item 7): an application lock owned by the
	// transaction, named by a hash short enough for sp_getapplock, the same
	// for every spelling of the ID.
	lock := st["lockPackage"]
	for _, want := range []string{"sp_getapplock @Resource = @p1", "@LockOwner = N'Transaction'", "IF @rc < 0 RAISERROR("} {
		if !strings.Contains(lock.sql, want) {
			t.Errorf("package lock lacks %q:\n%s", want, lock.sql)
		}
	}
	if !strings.Contains(lock.sql, "@LockMode = N'Exclusive'") || !strings.Contains(st["lockPackageShared"].sql, "@LockMode = N'Shared'") {
		t.Errorf("package lock modes:\n%s\n%s", lock.sql, st["lockPackageShared"].sql)
	}
	long, _ := d.lockPackageStmt("Spaces-1", strings.Repeat("A", 200), false)
	upper, _ := d.lockPackageStmt("Spaces-1", "ACME", true)
	if key := long.args[0].(string); len(key) > 255 {
		t.Errorf("package lock name is %d characters, sp_getapplock takes 255", len(key))
	}
	if lock.args[0] != upper.args[0] {
		t.Errorf("package lock names differ by case: %v, %v", lock.args, upper.args)
	}
	// IDs compare in lower case.
	for _, name := range []string{"package", "versions", "deletePackage"} {
		if !strings.Contains(st[name].sql, "LOWER(package_id) = LOWER(@p2)") {
			t.Errorf("%s does not match the ID in any case:\n%s", name, st[name].sql)
		}
	}
}

// The same queries on the other engines, for comparison.
func TestPortablePaging(t *testing.T) {
	_, l := sqliteDialect.listPackagesStmts(PackageQuery{Skip: 2})
	if !strings.HasSuffix(l.sql, "LIMIT -1 OFFSET ?") {
		t.Errorf("sqlite skip-only paging: %s", l.sql)
	}
	_, l = postgresDialect.listPackagesStmts(PackageQuery{Skip: 2, Take: 3})
	if !strings.HasSuffix(l.sql, "LIMIT $1 OFFSET $2") || fmt.Sprint(l.args) != "[3 2]" {
		t.Errorf("postgres paging: %s %v", l.sql, l.args)
	}
	_, l = postgresDialect.listPackagesStmts(PackageQuery{Skip: -1, Take: -5})
	if !strings.HasSuffix(l.sql, "OFFSET $1") || fmt.Sprint(l.args) != "[0]" {
		t.Errorf("negative paging: %s %v", l.sql, l.args)
	}
}

// Paging is clamped to [0, MaxPage] on every engine (issue 11 item 10).
func TestPagingClampedInSQL(t *testing.T) {
	const huge = int(^uint(0) >> 1)
	for _, d := range []*dialect{sqliteDialect, postgresDialect, mssqlDialect} {
		_, l := d.listPackagesStmts(PackageQuery{Skip: huge, Take: huge})
		for _, a := range l.args {
			if n, ok := a.(int64); ok && (n < 0 || n > MaxPage) {
				t.Errorf("%s: paging argument %d outside [0, %d]: %s", d.kind, n, MaxPage, l.sql)
			}
		}
	}
}

func TestRebindSkipsLiterals(t *testing.T) {
	got := mssqlDialect.rebind(`SELECT '?', "a?b", x FROM t WHERE a = ? AND b LIKE ? ESCAPE '\' AND c = ?`)
	want := `SELECT '?', "a?b", x FROM t WHERE a = @p1 AND b LIKE @p2 ESCAPE '\' AND c = @p3`
	if got != want {
		t.Fatalf("rebind =\n%s\nwant\n%s", got, want)
	}
}

// Error classification through the drivers' error methods.
type fakeMSSQLError int32

func (e fakeMSSQLError) Error() string         { return "mssql error" }
func (e fakeMSSQLError) SQLErrorNumber() int32 { return int32(e) }

type fakePGError string

func (e fakePGError) Error() string    { return "pg error" }
func (e fakePGError) SQLState() string { return string(e) }

func TestErrorClassification(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("exec: %w", err) }
	if !mssqlDialect.uniqueViolation(wrap(fakeMSSQLError(2627))) || !mssqlDialect.uniqueViolation(fakeMSSQLError(2601)) {
		t.Error("SQL Server 2627/2601 not a unique violation")
	}
	if mssqlDialect.uniqueViolation(fakeMSSQLError(547)) || mssqlDialect.uniqueViolation(nil) {
		t.Error("other SQL Server errors are not unique violations")
	}
	if !mssqlDialect.transient(wrap(fakeMSSQLError(1205))) || mssqlDialect.transient(fakeMSSQLError(208)) {
		t.Error("SQL Server deadlock victim (1205) is transient, invalid object (208) is not")
	}
	if !postgresDialect.uniqueViolation(wrap(fakePGError("23505"))) || postgresDialect.uniqueViolation(fakePGError("23503")) {
		t.Error("PostgreSQL 23505 classification")
	}
	if sqliteDialect.uniqueViolation(errors.New("UNIQUE constraint failed")) {
		t.Error("classification must use codes, not text")
	}
}

func TestOpenRejectsUnknownDSN(t *testing.T) {
	ctx := context.Background()
	for _, dsn := range []string{"mysql://u:secret@h/db", "/tmp/x.db", "", "sqlserver2://x"} {
		_, err := Open(ctx, dsn)
		if err == nil {
			t.Fatalf("Open(%q) succeeded", dsn)
		}
		for _, want := range []string{"sqlite:PATH", "postgres://", "sqlserver://"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("Open(%q) error does not list %q: %v", dsn, want, err)
			}
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("error leaks the password: %v", err)
		}
	}
}

func TestDriverDSNs(t *testing.T) {
	o := options{connectTimeout: 2500 * time.Millisecond, busyTimeout: 1500 * time.Millisecond}
	drv, dsn, d, _, err := driverFor("postgresql://u:p@127.0.0.1:5432/db?sslmode=disable", o)
	if err != nil || drv != "pgx" || d != postgresDialect || !strings.Contains(dsn, "connect_timeout=3") {
		t.Errorf("postgres: %s %s %v", drv, dsn, err)
	}
	_, dsn, _, _, _ = driverFor("postgres://u:p@h/db?connect_timeout=9", o)
	if !strings.Contains(dsn, "connect_timeout=9") || strings.Count(dsn, "connect_timeout") != 1 {
		t.Errorf("postgres with its own timeout: %s", dsn)
	}
	drv, dsn, d, _, err = driverFor("sqlserver://sa:p%40ss@127.0.0.1:1433?database=octoha", o)
	if err != nil || drv != "sqlserver" || d != mssqlDialect || !strings.Contains(dsn, "dial+timeout=3") || !strings.Contains(dsn, "database=octoha") {
		t.Errorf("sqlserver: %s %s %v", drv, dsn, err)
	}
	drv, dsn, d, mem, err := driverFor("sqlite:/tmp/x.db", o)
	if err != nil || drv != "sqlite" || d != sqliteDialect || mem ||
		dsn != "/tmp/x.db?_busy_timeout=1500&_journal_mode=WAL&_synchronous=NORMAL&_txlock=immediate" {
		t.Errorf("sqlite: %s %s %v", drv, dsn, err)
	}
}
