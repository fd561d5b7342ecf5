package store

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The conformance suite: every engine must behave the same. Tests only
// look at rows with their own keys (prefix, space), so they also run
// against a shared database (SQL Server) and clean up after themselves.

func TestSQLite(t *testing.T)   { runSuite(t, sqliteBackend) }
func TestPostgres(t *testing.T) { runSuite(t, postgresBackend) }

type fixture struct {
	dsn    string
	db     *DB
	prefix string // node ID prefix
	space  string // space ID
}

func newFixture(t *testing.T, b backend) *fixture {
	t.Helper()
	f := &fixture{dsn: b.fresh(t), prefix: uniq(t)}
	f.space = fmt.Sprintf("Spaces-%d", time.Now().UnixNano())
	f.db = openT(t, f.dsn)
	t.Cleanup(func() { f.cleanup(t) })
	return f
}

// cleanup deletes the test's rows (matters on a shared database).
func (f *fixture) cleanup(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nodes, err := f.db.Nodes(ctx)
	if err != nil {
		t.Logf("cleanup: %v", err)
		return
	}
	for _, n := range f.own(nodes) {
		_ = f.db.DeleteNode(ctx, n.ID)
	}
	for _, space := range []string{f.space, f.space + "0"} {
		pkgs, _, err := f.db.ListPackages(ctx, PackageQuery{SpaceID: space})
		if err != nil {
			t.Logf("cleanup: %v", err)
			return
		}
		for _, p := range pkgs {
			_ = f.db.DeletePackage(ctx, p.SpaceID, p.PackageID, p.Version)
		}
	}
}

func (f *fixture) own(nodes []Node) []Node {
	var out []Node
	for _, n := range nodes {
		if strings.HasPrefix(n.ID, f.prefix) {
			out = append(out, n)
		}
	}
	return out
}

func (f *fixture) node(name string) Node {
	return Node{ID: f.prefix + name, Name: name, LastSeen: time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC),
		Version: "2026.1.0", URL: "http://127.0.0.11:8080"}
}

func (f *fixture) pkg(id, version string) Package {
	return Package{
		SpaceID: f.space, PackageID: id, Version: version, Extension: ".zip",
		Hash: "da39a3ee5e6b4b0d3255bfef95601890afd80709", Size: 1 << 40,
		Path:      f.space + "/feeds-builtin/" + id + "/" + id + "." + version + ".zip",
		Published: time.Date(2026, 2, 3, 4, 5, 6, 987654321, time.UTC), NodeID: f.prefix + "n1",
	}
}

func runSuite(t *testing.T, b backend) {
	tests := []struct {
		name string
		fn   func(t *testing.T, b backend)
	}{
		{"ConcurrentOpen", testConcurrentOpen},
		{"HeartbeatInsertsWithDefaults", testHeartbeatDefaults},
		{"HeartbeatKeepsDrainAndCap", testHeartbeatKeepsDrainAndCap},
		{"UpdateNode", testUpdateNode},
		{"NodesSortedAndDelete", testNodesSortedAndDelete},
		{"ConcurrentHeartbeats", testConcurrentHeartbeats},
		{"AddPackage", testAddPackage},
		{"AddPackageConcurrent", testAddPackageConcurrent},
		{"ListPackages", testListPackages},
		{"LatestPackage", testLatestPackage},
		{"Validation", testValidation},
		{"PackageLock", testPackageLock},
		{"TaskLifecycle", testTaskLifecycle},
		{"TaskClaimExclusive", testTaskClaimExclusive},
		{"TaskForceClaim", testTaskForceClaim},
		{"Lease", testLease},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, b) })
	}
}

// Several nodes start at once against a new database: every Open succeeds,
// and every handle sees the others' writes.
func testConcurrentOpen(t *testing.T, b backend) {
	ctx := testCtx(t)
	dsn := b.fresh(t)
	const n = 4
	dbs := make([]*DB, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			dbs[i], errs[i] = Open(ctx, dsn)
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("concurrent Open %d: %v", i, err)
		}
		t.Cleanup(func() { dbs[i].Close() })
	}
	f := &fixture{dsn: dsn, db: dbs[0], prefix: uniq(t), space: fmt.Sprintf("Spaces-%d", time.Now().UnixNano())}
	t.Cleanup(func() { f.cleanup(t) })
	for i, db := range dbs {
		if db.Kind() != Kind(b.name) {
			t.Fatalf("Kind = %s, want %s", db.Kind(), b.name)
		}
		if err := db.Heartbeat(ctx, f.node(fmt.Sprint(i))); err != nil {
			t.Fatalf("heartbeat through handle %d: %v", i, err)
		}
	}
	// A handle opened later, on the now existing schema, sees them all.
	late := openT(t, dsn)
	nodes, err := late.Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(f.own(nodes)); got != n {
		t.Fatalf("late handle sees %d of the %d nodes", got, n)
	}
	for _, db := range dbs {
		if err := db.Ping(ctx); err != nil {
			t.Fatalf("ping: %v", err)
		}
	}
}

func testHeartbeatDefaults(t *testing.T, b backend) {
	f := newFixture(t, b)
	ctx := testCtx(t)
	n := f.node("a")
	if err := f.db.Heartbeat(ctx, n); err != nil {
		t.Fatal(err)
	}
	got, err := f.db.Node(ctx, n.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := n
	want.MaxConcurrentTasks = DefaultMaxConcurrentTasks
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("node = %+v\nwant   %+v", got, want)
	}
	if got.LastSeen.Location() != time.UTC {
		t.Fatalf("LastSeen not UTC: %v", got.LastSeen.Location())
	}

	// An explicit cap is kept; a zero LastSeen means now.
	c := f.node("c")
	c.MaxConcurrentTasks = 7
	c.LastSeen = time.Time{}
	before := time.Now()
	if err := f.db.Heartbeat(ctx, c); err != nil {
		t.Fatal(err)
	}
	got, err = f.db.Node(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.MaxConcurrentTasks != 7 || got.IsInMaintenanceMode {
		t.Fatalf("node = %+v, want cap 7, not in maintenance", got)
	}
	if got.LastSeen.Before(before.Add(-time.Second)) || got.LastSeen.After(time.Now().Add(time.Second)) {
		t.Fatalf("zero LastSeen stored as %v, want about now", got.LastSeen)
	}
}

// A drain or cap set through any node survives the drained node's own
// heartbeats, as in Octopus.
func testHeartbeatKeepsDrainAndCap(t *testing.T, b backend) {
	f := newFixture(t, b)
	ctx := testCtx(t)
	n := f.node("a")
	if err := f.db.Heartbeat(ctx, n); err != nil {
		t.Fatal(err)
	}
	on, five := true, 5
	if _, err := f.db.UpdateNode(ctx, n.ID, &on, &five); err != nil {
		t.Fatal(err)
	}
	n.Name, n.Version, n.URL = "renamed", "2026.2.0", "http://127.0.0.12:8080"
	n.LastSeen = n.LastSeen.Add(time.Minute)
	n.MaxConcurrentTasks = 50
	if err := f.db.Heartbeat(ctx, n); err != nil {
		t.Fatal(err)
	}
	got, err := f.db.Node(ctx, n.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := n
	want.IsInMaintenanceMode, want.MaxConcurrentTasks = true, 5
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("after heartbeat node = %+v\nwant %+v", got, want)
	}
}

func testUpdateNode(t *testing.T, b backend) {
	f := newFixture(t, b)
	ctx := testCtx(t)
	n := f.node("a")
	if err := f.db.Heartbeat(ctx, n); err != nil {
		t.Fatal(err)
	}
	on, off, three := true, false, 3
	got, err := f.db.UpdateNode(ctx, n.ID, &on, nil)
	if err != nil || !got.IsInMaintenanceMode || got.MaxConcurrentTasks != DefaultMaxConcurrentTasks {
		t.Fatalf("drain only: %+v, %v", got, err)
	}
	got, err = f.db.UpdateNode(ctx, n.ID, nil, &three)
	if err != nil || !got.IsInMaintenanceMode || got.MaxConcurrentTasks != 3 {
		t.Fatalf("cap only: %+v, %v", got, err)
	}
	got, err = f.db.UpdateNode(ctx, n.ID, &off, nil)
	if err != nil || got.IsInMaintenanceMode || got.MaxConcurrentTasks != 3 {
		t.Fatalf("undrain: %+v, %v", got, err)
	}
	// Setting the same value again is not "not found".
	if got, err = f.db.UpdateNode(ctx, n.ID, &off, &three); err != nil || got.Name != "a" {
		t.Fatalf("same values: %+v, %v", got, err)
	}
	if got, err = f.db.UpdateNode(ctx, n.ID, nil, nil); err != nil || got.ID != n.ID {
		t.Fatalf("no change: %+v, %v", got, err)
	}
	for _, tc := range []struct {
		m *bool
		c *int
	}{{&on, nil}, {nil, &three}, {nil, nil}} {
		if _, err := f.db.UpdateNode(ctx, f.prefix+"missing", tc.m, tc.c); !errors.Is(err, ErrNotFound) {
			t.Fatalf("update of a missing node: %v, want ErrNotFound", err)
		}
	}
	neg := -1
	if _, err := f.db.UpdateNode(ctx, n.ID, nil, &neg); err == nil {
		t.Fatal("negative cap accepted")
	}
}

func testNodesSortedAndDelete(t *testing.T, b backend) {
	f := newFixture(t, b)
	ctx := testCtx(t)
	for _, name := range []string{"c", "a", "B", "b"} {
		if err := f.db.Heartbeat(ctx, f.node(name)); err != nil {
			t.Fatal(err)
		}
	}
	nodes, err := f.db.Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, n := range f.own(nodes) {
		ids = append(ids, strings.TrimPrefix(n.ID, f.prefix))
	}
	// Binary order on every engine: upper case first.
	if want := []string{"B", "a", "b", "c"}; !reflect.DeepEqual(ids, want) {
		t.Fatalf("Nodes order = %v, want %v", ids, want)
	}
	if err := f.db.DeleteNode(ctx, f.prefix+"a"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.db.Node(ctx, f.prefix+"a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Node after delete: %v, want ErrNotFound", err)
	}
	if err := f.db.DeleteNode(ctx, f.prefix+"a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v, want ErrNotFound", err)
	}
	if _, err := f.db.Node(ctx, f.prefix+"A"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("IDs must be case-sensitive: %v", err)
	}
}

// Heartbeats from several handles (nodes) at once, about as the cluster
// does it, all land.
func testConcurrentHeartbeats(t *testing.T, b backend) {
	f := newFixture(t, b)
	ctx := testCtx(t)
	other := openT(t, f.dsn)
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := range 4 {
		db := f.db
		if i%2 == 1 {
			db = other
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 20 {
				n := f.node(fmt.Sprint(i))
				n.LastSeen = n.LastSeen.Add(time.Duration(j) * time.Second)
				if err := db.Heartbeat(ctx, n); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent heartbeat: %v", err)
	}
	nodes, err := f.db.Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	own := f.own(nodes)
	if len(own) != 4 {
		t.Fatalf("got %d nodes, want 4", len(own))
	}
	for _, n := range own {
		if want := f.node("x").LastSeen.Add(19 * time.Second); !n.LastSeen.Equal(want) {
			t.Fatalf("node %s LastSeen %v, want the last heartbeat's %v", n.ID, n.LastSeen, want)
		}
	}
}

func testAddPackage(t *testing.T, b backend) {
	f := newFixture(t, b)
	ctx := testCtx(t)
	p := f.pkg("Acme.Web", "1.0.0")
	created, err := f.db.AddPackage(ctx, p, false)
	if err != nil || !created {
		t.Fatalf("first add: created=%v err=%v", created, err)
	}
	got, err := f.db.Package(ctx, p.SpaceID, p.PackageID, p.Version)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, p) {
		t.Fatalf("package = %+v\nwant      %+v", got, p)
	}
	if got.Published.Location() != time.UTC {
		t.Fatal("Published not UTC")
	}

	// Without replace: refused, row unchanged.
	q := p
	q.Hash, q.Size, q.NodeID = "0000000000000000000000000000000000000000", 1, f.prefix+"n2"
	created, err = f.db.AddPackage(ctx, q, false)
	if !errors.Is(err, ErrExists) || created {
		t.Fatalf("duplicate add: created=%v err=%v, want ErrExists", created, err)
	}
	if got, _ := f.db.Package(ctx, p.SpaceID, p.PackageID, p.Version); !reflect.DeepEqual(got, p) {
		t.Fatalf("a refused add changed the row: %+v", got)
	}

	// With replace: overwritten, not created.
	q.Published = p.Published.Add(time.Hour)
	created, err = f.db.AddPackage(ctx, q, true)
	if err != nil || created {
		t.Fatalf("replace: created=%v err=%v, want false, nil", created, err)
	}
	if got, _ := f.db.Package(ctx, p.SpaceID, p.PackageID, p.Version); !reflect.DeepEqual(got, q) {
		t.Fatalf("after replace = %+v\nwant %+v", got, q)
	}
	created, err = f.db.AddPackage(ctx, q, true)
	if err != nil || created {
		t.Fatalf("second replace: created=%v err=%v", created, err)
	}
	// Replace of a new version creates it.
	created, err = f.db.AddPackage(ctx, f.pkg("Acme.Web", "1.0.1"), true)
	if err != nil || !created {
		t.Fatalf("replace-mode add of a new version: created=%v err=%v", created, err)
	}
	// Same ID and version in another space is another package; the ID is
	// case-insensitive (issue 11 item 8), and the row keeps its first
	// spelling.
	other := p
	other.SpaceID = f.space + "0"
	if created, err := f.db.AddPackage(ctx, other, false); err != nil || !created {
		t.Fatalf("same package in another space: created=%v err=%v", created, err)
	}
	upper := f.pkg("ACME.WEB", "1.0.0")
	if created, err := f.db.AddPackage(ctx, upper, false); !errors.Is(err, ErrExists) || created {
		t.Fatalf("differently cased ID: created=%v err=%v, want ErrExists", created, err)
	}
	upper.Hash = "1111111111111111111111111111111111111111"
	if created, err := f.db.AddPackage(ctx, upper, true); err != nil || created {
		t.Fatalf("replace under a differently cased ID: created=%v err=%v, want false, nil", created, err)
	}
	got, err = f.db.Package(ctx, p.SpaceID, "acme.web", p.Version)
	if err != nil || got.PackageID != "Acme.Web" || got.Hash != upper.Hash {
		t.Fatalf("after replace as ACME.WEB, acme.web = %+v, %v; want the Acme.Web row with the new hash", got, err)
	}
	if created, err := f.db.AddPackage(ctx, f.pkg("ACME.web", "7.0.0"), false); err != nil || !created {
		t.Fatalf("new version under another spelling: created=%v err=%v", created, err)
	}
	if got, err := f.db.Package(ctx, p.SpaceID, "Acme.Web", "7.0.0"); err != nil || got.PackageID != "Acme.Web" {
		t.Fatalf("new version under another spelling = %+v, %v; want the first spelling Acme.Web", got, err)
	}
	if err := f.db.DeletePackage(ctx, p.SpaceID, "ACME.WEB", "7.0.0"); err != nil {
		t.Fatalf("delete under another spelling: %v", err)
	}

	if _, err := f.db.Package(ctx, p.SpaceID, p.PackageID, "9.9.9"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing package: %v, want ErrNotFound", err)
	}
	if err := f.db.DeletePackage(ctx, p.SpaceID, p.PackageID, p.Version); err != nil {
		t.Fatal(err)
	}
	if _, err := f.db.Package(ctx, p.SpaceID, p.PackageID, p.Version); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted package: %v, want ErrNotFound", err)
	}
	if err := f.db.DeletePackage(ctx, p.SpaceID, p.PackageID, p.Version); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v, want ErrNotFound", err)
	}
	// After a delete, the version can be added again.
	if created, err := f.db.AddPackage(ctx, p, false); err != nil || !created {
		t.Fatalf("re-add after delete: created=%v err=%v", created, err)
	}
}

// Several nodes receive the same upload at once: exactly one records it.
func testAddPackageConcurrent(t *testing.T, b backend) {
	f := newFixture(t, b)
	ctx := testCtx(t)
	other := openT(t, f.dsn)
	for _, replace := range []bool{false, true} {
		p := f.pkg("Race", fmt.Sprintf("1.0.%v", replace))
		const n = 8
		var wg sync.WaitGroup
		created := make([]bool, n)
		errs := make([]error, n)
		start := make(chan struct{})
		for i := range n {
			db := f.db
			if i%2 == 1 {
				db = other
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				q := p
				q.NodeID = fmt.Sprint(i)
				created[i], errs[i] = db.AddPackage(ctx, q, replace)
			}()
		}
		close(start)
		wg.Wait()
		wins := 0
		for i := range n {
			switch {
			case created[i]:
				wins++
				if errs[i] != nil {
					t.Fatalf("replace=%v adder %d: created with error %v", replace, i, errs[i])
				}
			case replace && errs[i] != nil:
				t.Fatalf("replace=%v adder %d: %v", replace, i, errs[i])
			case !replace && !errors.Is(errs[i], ErrExists):
				t.Fatalf("replace=%v adder %d: %v, want ErrExists", replace, i, errs[i])
			}
		}
		if wins != 1 {
			t.Fatalf("replace=%v: %d adders created the package, want exactly 1", replace, wins)
		}
	}
}

func testListPackages(t *testing.T, b backend) {
	f := newFixture(t, b)
	ctx := testCtx(t)
	add := func(p Package) {
		t.Helper()
		if _, err := f.db.AddPackage(ctx, p, false); err != nil {
			t.Fatal(err)
		}
	}
	// Inserted out of order; expected order: PackageID, then Version text.
	for _, k := range [][2]string{
		{"Acme.Web", "2.0.0"}, {"Acme.Web", "1.0.0"}, {"Acme.Api", "1.0.0"},
		{"Acme.Web", "1.10.0"}, {"My_Pkg", "1.0.0"}, {"MyXPkg", "1.0.0"}, {"Other", "3.0.0"},
	} {
		add(f.pkg(k[0], k[1]))
	}
	elsewhere := f.pkg("Acme.Web", "9.0.0")
	elsewhere.SpaceID = f.space + "0"
	add(elsewhere)

	keys := func(ps []Package) []string {
		var out []string
		for _, p := range ps {
			out = append(out, p.PackageID+"@"+p.Version)
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		q     PackageQuery
		want  []string
		total int
	}{
		{"all", PackageQuery{SpaceID: f.space}, []string{"Acme.Api@1.0.0", "Acme.Web@1.0.0", "Acme.Web@1.10.0",
			"Acme.Web@2.0.0", "MyXPkg@1.0.0", "My_Pkg@1.0.0", "Other@3.0.0"}, 7},
		{"page", PackageQuery{SpaceID: f.space, Skip: 1, Take: 2}, []string{"Acme.Web@1.0.0", "Acme.Web@1.10.0"}, 7},
		{"last page", PackageQuery{SpaceID: f.space, Skip: 6, Take: 5}, []string{"Other@3.0.0"}, 7},
		{"past the end", PackageQuery{SpaceID: f.space, Skip: 50, Take: 5}, nil, 7},
		{"skip only", PackageQuery{SpaceID: f.space, Skip: 5}, []string{"My_Pkg@1.0.0", "Other@3.0.0"}, 7},
		{"exact id", PackageQuery{SpaceID: f.space, PackageID: "Acme.Web"}, []string{"Acme.Web@1.0.0", "Acme.Web@1.10.0", "Acme.Web@2.0.0"}, 3},
		{"exact id is case-insensitive", PackageQuery{SpaceID: f.space, PackageID: "acme.web"}, []string{"Acme.Web@1.0.0", "Acme.Web@1.10.0", "Acme.Web@2.0.0"}, 3},
		{"filter is case-insensitive", PackageQuery{SpaceID: f.space, Filter: "ACME"}, []string{"Acme.Api@1.0.0", "Acme.Web@1.0.0", "Acme.Web@1.10.0", "Acme.Web@2.0.0"}, 4},
		{"filter and page", PackageQuery{SpaceID: f.space, Filter: "acme.w", Skip: 2, Take: 1}, []string{"Acme.Web@2.0.0"}, 3},
		{"underscore is literal", PackageQuery{SpaceID: f.space, Filter: "y_p"}, []string{"My_Pkg@1.0.0"}, 1},
		{"percent is literal", PackageQuery{SpaceID: f.space, Filter: "%"}, nil, 0},
		{"other space", PackageQuery{SpaceID: f.space + "0"}, []string{"Acme.Web@9.0.0"}, 1},
	} {
		items, total, err := f.db.ListPackages(ctx, tc.q)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := keys(items); !reflect.DeepEqual(got, tc.want) || total != tc.total {
			t.Fatalf("%s: got %v total %d, want %v total %d", tc.name, got, total, tc.want, tc.total)
		}
	}
	// Full rows come back.
	items, _, err := f.db.ListPackages(ctx, PackageQuery{SpaceID: f.space, PackageID: "Acme.Api"})
	if err != nil || len(items) != 1 || !reflect.DeepEqual(items[0], f.pkg("Acme.Api", "1.0.0")) {
		t.Fatalf("listed row = %+v, %v", items, err)
	}
	// Same version text twice is impossible, so Published only breaks ties
	// across spaces; without a space both spaces' rows are listed.
	all, total, err := f.db.ListPackages(ctx, PackageQuery{PackageID: "Acme.Web", Filter: "web"})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, p := range all {
		if strings.HasPrefix(p.SpaceID, f.space) {
			n++
		}
	}
	if n != 4 || total < 4 {
		t.Fatalf("across spaces: %d own rows of %d (total %d), want 4", n, len(all), total)
	}
}

func testLatestPackage(t *testing.T, b backend) {
	f := newFixture(t, b)
	ctx := testCtx(t)
	if _, err := f.db.LatestPackage(ctx, f.space, "Acme.Web"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("latest of nothing: %v, want ErrNotFound", err)
	}
	for i, v := range []string{"1.9.0", "1.10.0", "2.0.0-beta.2", "2.0.0-beta.10", "1.2"} {
		if _, err := f.db.AddPackage(ctx, f.pkg("Acme.Web", v), false); err != nil {
			t.Fatal(i, err)
		}
	}
	latest := func() string {
		t.Helper()
		p, err := f.db.LatestPackage(ctx, f.space, "Acme.Web")
		if err != nil {
			t.Fatal(err)
		}
		return p.Version
	}
	if v := latest(); v != "2.0.0-beta.10" {
		t.Fatalf("latest = %s, want 2.0.0-beta.10", v)
	}
	if _, err := f.db.AddPackage(ctx, f.pkg("Acme.Web", "2.0.0"), false); err != nil {
		t.Fatal(err)
	}
	if v := latest(); v != "2.0.0" {
		t.Fatalf("latest = %s, want the release 2.0.0", v)
	}
}

func testValidation(t *testing.T, b backend) {
	f := newFixture(t, b)
	ctx := testCtx(t)
	if err := f.db.Heartbeat(ctx, Node{Name: "x"}); err == nil {
		t.Fatal("heartbeat without an ID accepted")
	}
	for _, p := range []Package{{PackageID: "a", Version: "1"}, {SpaceID: f.space, Version: "1"}, {SpaceID: f.space, PackageID: "a"}} {
		if _, err := f.db.AddPackage(ctx, p, false); err == nil || errors.Is(err, ErrExists) {
			t.Fatalf("AddPackage(%+v) = %v, want a validation error", p, err)
		}
	}
}

// The package lock (issue 11 item 7) is held across handles, as nodes hold
// it across processes, whatever the spelling of the ID (item 8): a second
// holder waits until the first commits, and then sees its row.
func testPackageLock(t *testing.T, b backend) {
	f := newFixture(t, b)
	ctx := testCtx(t)
	other := openT(t, f.dsn)
	held := make(chan struct{})
	release := make(chan struct{})
	first := make(chan error, 1)
	go func() {
		first <- f.db.LockPackage(ctx, f.space, "Lock.Me", func(ctx context.Context, tx *PackageTx) error {
			close(held)
			<-release
			_, err := tx.Add(ctx, f.pkg("Lock.Me", "1.0.0"), false)
			return err
		})
	}()
	<-held
	var acquired atomic.Bool
	second := make(chan error, 1)
	var seen []Package
	go func() {
		second <- other.LockPackage(ctx, f.space, "LOCK.ME", func(ctx context.Context, tx *PackageTx) error {
			acquired.Store(true)
			var err error
			seen, err = tx.Versions(ctx)
			return err
		})
	}()
	time.Sleep(300 * time.Millisecond)
	if acquired.Load() {
		t.Fatal("a second holder got the lock of LOCK.ME while Lock.Me's was held")
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if err := <-second; err != nil {
		t.Fatal(err)
	}
	if len(seen) != 1 || seen[0].PackageID != "Lock.Me" {
		t.Fatalf("second holder saw %+v, want the first holder's Lock.Me row", seen)
	}
	// An error rolls back.
	boom := errors.New("boom")
	err := f.db.LockPackage(ctx, f.space, "lock.me", func(ctx context.Context, tx *PackageTx) error {
		if err := tx.Delete(ctx, "1.0.0"); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("LockPackage = %v, want fn's error", err)
	}
	if _, err := f.db.Package(ctx, f.space, "Lock.Me", "1.0.0"); err != nil {
		t.Fatalf("a rolled-back delete removed the row: %v", err)
	}
	// Only the locked package can be changed under its lock.
	err = f.db.LockPackage(ctx, f.space, "Lock.Me", func(ctx context.Context, tx *PackageTx) error {
		_, err := tx.Add(ctx, f.pkg("Other", "1.0.0"), false)
		return err
	})
	if err == nil {
		t.Fatal("added another package's row under Lock.Me's lock")
	}
}
