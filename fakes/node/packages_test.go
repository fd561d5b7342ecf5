package node

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/octoha/octoha/fakes/blob"
	"github.com/octoha/octoha/fakes/store"
	"github.com/octoha/octoha/octopusapi"
	"github.com/octoha/octoha/services/postgres"
	"github.com/octoha/octoha/services/samba"
)

// The package store under races and odd names: issue 11, items 7 to 9.

// result is one HTTP answer, for requests made off the test goroutine.
type result struct {
	status int
	body   []byte
	err    error
}

// goUpload uploads in a goroutine (t.Fatal may not be called there).
func (tn *testNode) goUpload(t *testing.T, query, filename string, content []byte) <-chan result {
	t.Helper()
	body, ct := multipartBody(t, "file", filename, content)
	req, err := http.NewRequest(http.MethodPost, tn.srv.URL+"/api/Spaces-1/packages/raw"+query, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(octopusapi.HeaderAPIKey, testKey)
	req.Header.Set("Content-Type", ct)
	out := make(chan result, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			out <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		out <- result{status: resp.StatusCode, body: b, err: err}
	}()
	return out
}

func wait(t *testing.T, c <-chan result, what string) result {
	t.Helper()
	select {
	case r := <-c:
		if r.err != nil {
			t.Fatalf("%s: %v", what, r.err)
		}
		return r
	case <-time.After(30 * time.Second):
		t.Fatalf("%s: no answer within 30s", what)
	}
	return result{}
}

// packageFiles lists the files under the space's folder of the Packages
// store, temporary files excepted.
func packageFiles(t *testing.T, tn *testNode) []string {
	t.Helper()
	files, err := tn.pkgs.Walk(context.Background(), "Spaces-1")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range files {
		out = append(out, f.Name)
	}
	slices.Sort(out)
	return out
}

func dirExists(t *testing.T, tn *testNode, name string) bool {
	t.Helper()
	_, err := tn.pkgs.Stat(context.Background(), name)
	return err == nil
}

// assertConsistent checks that the row of a package version, its file and a
// download through each node agree, and returns the row.
func assertConsistent(t *testing.T, id, version string, nodes ...*testNode) store.Package {
	t.Helper()
	tn := nodes[0]
	ctx := context.Background()
	row, err := tn.db.Package(ctx, "Spaces-1", id, version)
	if err != nil {
		t.Fatalf("row of %s %s: %v", id, version, err)
	}
	rel, err := resolvePath(tn.cfg.OS, row.Path)
	if err != nil {
		t.Fatalf("path of %s %s: %v", id, version, err)
	}
	f, err := tn.pkgs.Open(ctx, rel)
	if err != nil {
		t.Fatalf("file of %s %s: %v", id, version, err)
	}
	file, err := io.ReadAll(f)
	f.Close()
	if err != nil {
		t.Fatalf("file of %s %s: %v", id, version, err)
	}
	if h := sha1hex(file); h != row.Hash || int64(len(file)) != row.Size {
		t.Fatalf("%s %s: row says hash %s size %d, the stored file has %s size %d", id, version, row.Hash, row.Size, h, len(file))
	}
	for _, n := range nodes {
		resp, body := n.do(t, http.MethodGet, octopusapi.PackageRawPath("Spaces-1", octopusapi.PackageResourceID(id, version)), nil, nil)
		if resp.StatusCode != 200 || sha1hex(body) != row.Hash || resp.Header.Get(headerHash) != row.Hash {
			t.Fatalf("%s %s via %s: download = %d, body hash %s, X-Octoha-Hash %s; row hash %s",
				id, version, n.Name(), resp.StatusCode, sha1hex(body), resp.Header.Get(headerHash), row.Hash)
		}
	}
	return row
}

// raceHooks makes node a stop after renaming its file and before writing
// its row (a slow database), and records when node b gets there. Before the
// fix, b's whole publish ran in that gap; with the package lock b cannot
// even rename until a has recorded. Either way the test goes on after b
// arrives or a second has passed.
type raceHooks struct {
	inA, releaseA, inB chan struct{}
}

func newRaceHooks(a, b *testNode) *raceHooks {
	h := &raceHooks{inA: make(chan struct{}), releaseA: make(chan struct{}), inB: make(chan struct{}, 1)}
	a.hooks.beforeRecord = func(store.Package) {
		close(h.inA)
		<-h.releaseA
	}
	b.hooks.beforeRecord = func(store.Package) {
		select {
		case h.inB <- struct{}{}:
		default:
		}
	}
	return h
}

// run starts a's upload, waits until it holds, starts b's, gives b its
// chance, then releases a.
func (h *raceHooks) run(t *testing.T, startA, startB func() <-chan result) (ra, rb result) {
	t.Helper()
	ca := startA()
	select {
	case <-h.inA:
	case r := <-ca:
		t.Fatalf("upload A finished (%d %s) without reaching the hook", r.status, r.body)
	case <-time.After(30 * time.Second):
		t.Fatal("upload A never reached the hook")
	}
	cb := startB()
	select {
	case <-h.inB:
		t.Log("B published while A was between its rename and its row")
	case <-time.After(time.Second):
		t.Log("B waited for A (the package lock)")
	}
	// Before the fix B may finish now; give it the time to.
	var early *result
	select {
	case r := <-cb:
		early = &r
	case <-time.After(500 * time.Millisecond):
	}
	close(h.releaseA)
	ra = wait(t, ca, "upload A")
	if early != nil {
		rb = *early
	} else {
		rb = wait(t, cb, "upload B")
	}
	return ra, rb
}

// Item 7: concurrent OverwriteExisting uploads of one package through two
// nodes, with the database write of the first delayed: afterwards the row,
// the file and a download agree.
func TestConcurrentOverwritesAgree(t *testing.T) { testConcurrentOverwritesAgree(t, sqlitePair) }

func testConcurrentOverwritesAgree(t *testing.T, pair nodePair) {
	a, b := pair(t)
	if r, body := a.upload(t, "", "Race.1.0.0.zip", []byte("the original")); r.StatusCode != 201 {
		t.Fatalf("seed = %d %s", r.StatusCode, body)
	}
	h := newRaceHooks(a, b)
	contentA, contentB := []byte("content uploaded through node A"), []byte("content uploaded through node B, longer")
	ra, rb := h.run(t,
		func() <-chan result {
			return a.goUpload(t, "?overwriteMode=OverwriteExisting", "Race.1.0.0.zip", contentA)
		},
		func() <-chan result {
			return b.goUpload(t, "?overwriteMode=OverwriteExisting", "Race.1.0.0.zip", contentB)
		})
	if ra.status != 201 || rb.status != 201 {
		t.Fatalf("overwrites = %d %s, %d %s; want 201 twice", ra.status, ra.body, rb.status, rb.body)
	}
	row := assertConsistent(t, "Race", "1.0.0", a, b)
	if row.Hash != sha1hex(contentA) && row.Hash != sha1hex(contentB) {
		t.Fatalf("row hash %s is neither upload's", row.Hash)
	}
	if files := packageFiles(t, a); !slices.Equal(files, []string{"Spaces-1/feeds-builtin/Race/Race.1.0.0.zip"}) {
		t.Fatalf("files = %v", files)
	}
	assertNoTempFiles(t, a)
}

// Item 8: package IDs are case-insensitive everywhere, and a package keeps
// the spelling it was first stored with.
func TestPackageIDsCaseInsensitive(t *testing.T) { testPackageIDsCaseInsensitive(t, sqlitePair) }

func testPackageIDsCaseInsensitive(t *testing.T, pair nodePair) {
	a, b := pair(t)
	v1, v2, v3 := []byte("Case, first"), []byte("case, refused"), []byte("CASE, overwriting")
	if r, body := a.upload(t, "", "Case.1.0.0.zip", v1); r.StatusCode != 201 {
		t.Fatalf("Case.1.0.0 = %d %s", r.StatusCode, body)
	}
	r, body := b.upload(t, "?overwriteMode=FailIfExists", "case.1.0.0.zip", v2)
	var e octopusapi.Error
	if r.StatusCode != 409 || json.Unmarshal(body, &e) != nil || !slices.Contains(e.Errors, octopusapi.IssuePackageAlreadyExists) ||
		!strings.Contains(e.ErrorMessage, "Case version 1.0.0") {
		t.Fatalf("case.1.0.0 under FailIfExists = %d %s, want 409 naming Case (PackageAlreadyExists)", r.StatusCode, body)
	}
	r, body = b.upload(t, "?overwriteMode=IgnoreIfExists", "case.1.0.0.zip", v2)
	var p octopusapi.Package
	if r.StatusCode != 200 || json.Unmarshal(body, &p) != nil || p.PackageId != "Case" || p.Hash != sha1hex(v1) {
		t.Fatalf("case.1.0.0 under IgnoreIfExists = %d %s, want 200 with Case's row", r.StatusCode, body)
	}
	if got := assertConsistent(t, "Case", "1.0.0", a, b); got.Hash != sha1hex(v1) {
		t.Fatalf("refused uploads changed Case: %+v", got)
	}

	r, body = b.upload(t, "?overwriteMode=OverwriteExisting", "CASE.1.0.0.zip", v3)
	if r.StatusCode != 201 || json.Unmarshal(body, &p) != nil || p.PackageId != "Case" || p.Id != "packages-Case.1.0.0" || p.Hash != sha1hex(v3) {
		t.Fatalf("CASE.1.0.0 with overwrite = %d %s, want 201 for Case with the new hash", r.StatusCode, body)
	}
	row := assertConsistent(t, "Case", "1.0.0", a, b)
	if row.PackageID != "Case" || row.Hash != sha1hex(v3) || row.Path != "Spaces-1/feeds-builtin/Case/Case.1.0.0.zip" {
		t.Fatalf("after the overwrite as CASE the row is %+v", row)
	}
	assertConsistent(t, "cASE", "1.0.0", a, b) // any spelling finds it
	// A new version under another spelling joins the first spelling's folder.
	if r, body := a.upload(t, "", "CASE.2.0.0.zip", v3); r.StatusCode != 201 || !strings.Contains(string(body), `"PackageId":"Case"`) {
		t.Fatalf("CASE.2.0.0 = %d %s", r.StatusCode, body)
	}
	want := []string{"Spaces-1/feeds-builtin/Case/Case.1.0.0.zip", "Spaces-1/feeds-builtin/Case/Case.2.0.0.zip"}
	if files := packageFiles(t, a); !slices.Equal(files, want) {
		t.Fatalf("files = %v, want %v", files, want)
	}
	r, body = a.do(t, http.MethodGet, octopusapi.PackagesPath("Spaces-1")+"?nuGetPackageId=CASE", nil, nil)
	var page octopusapi.Page[octopusapi.Package]
	if r.StatusCode != 200 || json.Unmarshal(body, &page) != nil || page.TotalResults != 2 {
		t.Fatalf("list of CASE = %d %s, want Case's two versions", r.StatusCode, body)
	}

	// Deleting CASE deletes Case's row and file.
	if r, body := b.do(t, http.MethodDelete, octopusapi.PackagePath("Spaces-1", "packages-CASE.1.0.0"), nil, nil); r.StatusCode != 200 {
		t.Fatalf("delete CASE.1.0.0 = %d %s", r.StatusCode, body)
	}
	if _, err := a.db.Package(context.Background(), "Spaces-1", "Case", "1.0.0"); err == nil {
		t.Fatal("Case 1.0.0's row survived deleting CASE 1.0.0")
	}
	if files := packageFiles(t, a); !slices.Equal(files, want[1:]) {
		t.Fatalf("after deleting CASE 1.0.0 files = %v, want %v", files, want[1:])
	}
	assertConsistent(t, "Case", "2.0.0", a, b)
}

// Item 9: no file outlives its row.
func TestNoOrphanPackageFiles(t *testing.T) { testNoOrphanPackageFiles(t, sqlitePair) }

func testNoOrphanPackageFiles(t *testing.T, pair nodePair) {
	t.Run("ConflictLoserWithAnotherExtension", func(t *testing.T) {
		a, b := pair(t)
		h := newRaceHooks(a, b)
		ra, rb := h.run(t,
			func() <-chan result {
				return a.goUpload(t, "?overwriteMode=FailIfExists", "Ext.1.0.zip", []byte("zip"))
			},
			func() <-chan result {
				return b.goUpload(t, "?overwriteMode=FailIfExists", "Ext.1.0.tgz", []byte("tgz"))
			})
		statuses := []int{ra.status, rb.status}
		slices.Sort(statuses)
		if !slices.Equal(statuses, []int{201, 409}) {
			t.Fatalf("same version, two extensions = %d %s, %d %s; want one 201 and one 409", ra.status, ra.body, rb.status, rb.body)
		}
		row := assertConsistent(t, "Ext", "1.0.0", a, b) // stored normalised
		if files := packageFiles(t, a); !slices.Equal(files, []string{row.Path}) {
			t.Fatalf("files = %v, want only the row's %s", files, row.Path)
		}
		assertNoTempFiles(t, a)
	})
	t.Run("OverwriteWithAnotherExtension", func(t *testing.T) {
		a, _ := pair(t)
		if r, body := a.upload(t, "", "Ext.1.0.zip", []byte("zip")); r.StatusCode != 201 {
			t.Fatalf("Ext.1.0.zip = %d %s", r.StatusCode, body)
		}
		if r, body := a.upload(t, "?overwriteMode=OverwriteExisting", "Ext.1.0.tgz", []byte("tgz")); r.StatusCode != 201 {
			t.Fatalf("Ext.1.0.tgz = %d %s", r.StatusCode, body)
		}
		row := assertConsistent(t, "Ext", "1.0.0", a)
		if files := packageFiles(t, a); !slices.Equal(files, []string{"Spaces-1/feeds-builtin/Ext/Ext.1.0.0.tgz"}) || row.Extension != ".tgz" {
			t.Fatalf("after overwriting .zip with .tgz: files %v, row %+v", files, row)
		}
		if r, body := a.do(t, http.MethodDelete, octopusapi.PackagePath("Spaces-1", "packages-Ext.1.0"), nil, nil); r.StatusCode != 200 {
			t.Fatalf("delete = %d %s", r.StatusCode, body)
		}
		assertNoPackages(t, a)
		if dirExists(t, a, "Spaces-1/feeds-builtin/Ext") {
			t.Fatal("the package's folder outlived its last version")
		}
	})
	t.Run("DeleteLastVersionRemovesFolder", func(t *testing.T) {
		a, _ := pair(t)
		for _, v := range []string{"1.0.0", "2.0.0"} {
			if r, body := a.upload(t, "", "Del."+v+".zip", []byte(v)); r.StatusCode != 201 {
				t.Fatalf("upload %s = %d %s", v, r.StatusCode, body)
			}
		}
		del := func(v string) {
			t.Helper()
			if r, body := a.do(t, http.MethodDelete, octopusapi.PackagePath("Spaces-1", "packages-Del."+v), nil, nil); r.StatusCode != 200 {
				t.Fatalf("delete %s = %d %s", v, r.StatusCode, body)
			}
		}
		del("1.0.0")
		if files := packageFiles(t, a); !slices.Equal(files, []string{"Spaces-1/feeds-builtin/Del/Del.2.0.0.zip"}) {
			t.Fatalf("after deleting 1.0.0: %v", files)
		}
		del("2.0.0")
		assertNoPackages(t, a)
		if dirExists(t, a, "Spaces-1/feeds-builtin/Del") {
			t.Fatal("deleting the last version left the package's folder")
		}
		if r, _ := a.do(t, http.MethodDelete, octopusapi.PackagePath("Spaces-1", "packages-Del.2.0.0"), nil, nil); r.StatusCode != 404 {
			t.Fatalf("second delete = %d, want 404", r.StatusCode)
		}
	})
}

// nodePair returns two nodes sharing one database and one Packages store.
type nodePair func(t *testing.T) (a, b *testNode)

// sqlitePair: an SQLite file and a local directory.
func sqlitePair(t *testing.T) (a, b *testNode) {
	a = newTestNode(t, nil)
	return a, newTestNode(t, a)
}

// The same on PostgreSQL (the lock is an advisory lock there) and a Samba
// share (case-insensitive, as the issue's reproduction was).
func TestPackageStoreOnPostgresSamba(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping PostgreSQL and Samba")
	}
	if _, err := postgres.Available(); err != nil {
		t.Skipf("PostgreSQL not installed (make deps installs it): %v", err)
	}
	if _, err := samba.Available(); err != nil {
		t.Skipf("Samba not usable here (make deps installs it; smbd needs root): %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pg, err := postgres.Start(ctx, postgres.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatalf("start PostgreSQL: %v", err)
	}
	t.Cleanup(func() { pg.Close(context.Background()) })
	smb, err := samba.Start(ctx, samba.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatalf("start Samba: %v", err)
	}
	t.Cleanup(func() { smb.Close(context.Background()) })
	seq := 0
	pair := func(t *testing.T) (a, b *testNode) {
		t.Helper()
		seq++
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		admin, err := sql.Open("pgx", pg.DSN())
		if err != nil {
			t.Fatal(err)
		}
		defer admin.Close()
		schema := fmt.Sprintf("s%d", seq)
		if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
			t.Fatal(err)
		}
		var nodes [2]*testNode
		for i := range nodes {
			db, err := store.Open(ctx, pg.DSN()+"&search_path="+schema)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			pkgs, err := blob.Open(ctx, smb.URL(fmt.Sprintf("Packages%d", seq)))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { pkgs.Close() })
			var share *testNode
			if i == 1 {
				share = nodes[0]
			}
			nodes[i] = newTestNode(t, share, func(c *Config) { c.DB, c.Packages = db, pkgs })
		}
		return nodes[0], nodes[1]
	}
	t.Run("ConcurrentOverwritesAgree", func(t *testing.T) { testConcurrentOverwritesAgree(t, pair) })
	t.Run("PackageIDsCaseInsensitive", func(t *testing.T) { testPackageIDsCaseInsensitive(t, pair) })
	t.Run("NoOrphanPackageFiles", func(t *testing.T) { testNoOrphanPackageFiles(t, pair) })
}

// A download's headers describe the bytes it sends even while the version
// is being overwritten (the other half of item 7's "the download agrees").
func TestDownloadDuringOverwrites(t *testing.T) {
	a := newTestNode(t, nil)
	b := newTestNode(t, a)
	contents := [][]byte{bytes.Repeat([]byte("a"), 300_000), bytes.Repeat([]byte("bb"), 200_000)}
	if r, body := a.upload(t, "", "Flip.1.0.0.zip", contents[0]); r.StatusCode != 201 {
		t.Fatalf("seed = %d %s", r.StatusCode, body)
	}
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		defer close(done)
		for i := 1; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			r := <-b.goUpload(t, "?overwriteMode=OverwriteExisting", "Flip.1.0.0.zip", contents[i%2])
			if r.err != nil || r.status != 201 {
				done <- fmt.Errorf("overwrite %d = %d %s %v", i, r.status, r.body, r.err)
				return
			}
		}
	}()
	for range 40 {
		resp, body := a.do(t, http.MethodGet, octopusapi.PackageRawPath("Spaces-1", "packages-Flip.1.0.0"), nil, nil)
		if resp.StatusCode != 200 || sha1hex(body) != resp.Header.Get(headerHash) {
			close(stop)
			t.Fatalf("download = %d: body hash %s, X-Octoha-Hash %s", resp.StatusCode, sha1hex(body), resp.Header.Get(headerHash))
		}
	}
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	assertConsistent(t, "Flip", "1.0.0", a, b)
}

// headerHash is the header a download carries its row's hash in.
const headerHash = "X-Octoha-Hash"

// Versions are stored normalised as NuGet and Octopus do: 1.0.0+meta,
// 01.0.0, 1.0 and 1.0.0.0 are all 1.0.0, so a second upload of any of them
// is a 409 under FailIfExists and a replacement under OverwriteExisting,
// and a pre-release label matches in any case. Before, each spelling was
// stored as a package of its own.
func TestVersionsNormalised(t *testing.T) {
	a := newTestNode(t, nil)
	first := []byte("first")
	if resp, body := a.upload(t, "", "Acme.1.0.0.zip", first); resp.StatusCode != http.StatusCreated {
		t.Fatalf("Acme.1.0.0 = %d %s", resp.StatusCode, body)
	}
	for _, v := range []string{"1.0.0+meta", "01.0.0", "1.0", "1", "1.0.0.0", "1.00.000+build.7"} {
		resp, body := a.upload(t, "?overwriteMode=FailIfExists", "Acme."+v+".zip", []byte("again "+v))
		if resp.StatusCode != http.StatusConflict {
			t.Errorf("Acme.%s after Acme.1.0.0 = %d %s, want 409", v, resp.StatusCode, body)
		}
	}
	if resp, body := a.upload(t, "", "Acme.1.0.0.1.zip", []byte("four parts")); resp.StatusCode != http.StatusCreated {
		t.Errorf("Acme.1.0.0.1 = %d %s, want 201 (another version)", resp.StatusCode, body)
	}
	if resp, body := a.upload(t, "", "Acme.1.0.0-Beta.zip", []byte("beta")); resp.StatusCode != http.StatusCreated {
		t.Fatalf("Acme.1.0.0-Beta = %d %s", resp.StatusCode, body)
	}
	if resp, body := a.upload(t, "", "Acme.1.0.0-beta.zip", []byte("beta again")); resp.StatusCode != http.StatusConflict {
		t.Errorf("Acme.1.0.0-beta after -Beta = %d %s, want 409", resp.StatusCode, body)
	}

	// OverwriteExisting under another spelling replaces 1.0.0.
	second := []byte("second, replacing")
	resp, body := a.upload(t, "?overwriteMode=OverwriteExisting", "Acme.01.0.0+ci.zip", second)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("overwrite as Acme.01.0.0+ci = %d %s", resp.StatusCode, body)
	}
	var res octopusapi.Package
	if err := json.Unmarshal(body, &res); err != nil || res.Version != "1.0.0" {
		t.Fatalf("overwrite answered %s (%v), want version 1.0.0", body, err)
	}
	if row := assertConsistent(t, "Acme", "1.0.0", a); row.Hash != sha1hex(second) {
		t.Fatalf("1.0.0 has hash %s, want the replacement's %s", row.Hash, sha1hex(second))
	}
	resp, body = a.upload(t, "?overwriteMode=OverwriteExisting", "Acme.1.0.0-BETA.zip", []byte("beta replaced"))
	if resp.StatusCode != http.StatusCreated || json.Unmarshal(body, &res) != nil || res.Version != "1.0.0-Beta" {
		t.Fatalf("overwrite as 1.0.0-BETA = %d %s, want 201 keeping the first spelling 1.0.0-Beta", resp.StatusCode, body)
	}
	want := []string{
		"Spaces-1/feeds-builtin/Acme/Acme.1.0.0-Beta.zip",
		"Spaces-1/feeds-builtin/Acme/Acme.1.0.0.1.zip",
		"Spaces-1/feeds-builtin/Acme/Acme.1.0.0.zip",
	}
	if got := packageFiles(t, a); !slices.Equal(got, want) {
		t.Fatalf("files %q, want %q", got, want)
	}

	// Read and downloaded by the version as written or normalised.
	for _, v := range []string{"1.0.0", "01.0.0", "1.0", "1.0.0+meta"} {
		resp, body := a.do(t, http.MethodGet, octopusapi.PackageRawPath("Spaces-1", octopusapi.PackageResourceID("Acme", v)), nil, nil)
		if resp.StatusCode != http.StatusOK || !bytes.Equal(body, second) {
			t.Errorf("download of Acme %s = %d %q, want 200 and 1.0.0's bytes", v, resp.StatusCode, body)
		}
	}
	// Deleted by another spelling, it is gone under every one.
	if resp, body := a.do(t, http.MethodDelete, octopusapi.PackagePath("Spaces-1", octopusapi.PackageResourceID("Acme", "1.0")), nil, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("delete Acme 1.0 = %d %s", resp.StatusCode, body)
	}
	if resp, _ := a.do(t, http.MethodGet, octopusapi.PackagePath("Spaces-1", octopusapi.PackageResourceID("Acme", "1.0.0")), nil, nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("Acme 1.0.0 after deleting 1.0 = %d, want 404", resp.StatusCode)
	}
}
