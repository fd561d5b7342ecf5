package node

import (
	"bytes"
	"context"
	"crypto/sha1" //nolint:gosec
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/octoha/octoha/fakes/blob"
	"github.com/octoha/octoha/fakes/store"
	"github.com/octoha/octoha/octopusapi"
)

const testKey = "API-TESTKEY0000000000000000000001"

type testNode struct {
	*Node
	srv  *httptest.Server
	db   *store.DB
	pkgs blob.Store
	dir  string
}

type nodeOpt func(*Config)

// newTestNode starts a node on an SQLite file and a local directory in a
// temp dir; a second node can share them through shareWith.
func newTestNode(t testing.TB, shareWith *testNode, opts ...nodeOpt) *testNode {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	if shareWith != nil {
		dir = shareWith.dir
	}
	db, err := store.Open(ctx, "sqlite:"+filepath.Join(dir, "octopus.db"))
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	pkgs, err := blob.Open(ctx, filepath.Join(dir, "Packages"))
	if err != nil {
		t.Fatalf("open blob: %v", err)
	}
	t.Cleanup(func() { pkgs.Close() })
	id, name := "OctopusServerNodes-1", "Node1"
	if shareWith != nil {
		id, name = "OctopusServerNodes-2", "Node2"
	}
	cfg := Config{
		ID: id, Name: name, DB: db, Packages: pkgs, APIKeys: []string{testKey},
		Heartbeat: 100 * time.Millisecond, UnhealthyAfter: 300 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	for _, o := range opts {
		o(&cfg)
	}
	db, pkgs = cfg.DB, cfg.Packages // an option may have replaced them
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	n.heartbeat(ctx)
	srv := httptest.NewServer(n)
	t.Cleanup(srv.Close)
	return &testNode{Node: n, srv: srv, db: db, pkgs: pkgs, dir: dir}
}

func (tn *testNode) do(t *testing.T, method, path string, body io.Reader, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, tn.srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(octopusapi.HeaderAPIKey, testKey)
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// multipartBody builds an upload body with one file part.
func multipartBody(t *testing.T, field, filename string, content []byte) (io.Reader, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	h := make(map[string][]string)
	h["Content-Disposition"] = []string{fmt.Sprintf(`form-data; name=%q; filename=%q`, field, filename)}
	h["Content-Type"] = []string{"application/octet-stream"}
	pw, err := mw.CreatePart(h)
	if err != nil {
		t.Fatal(err)
	}
	pw.Write(content)
	mw.Close()
	return &buf, mw.FormDataContentType()
}

func (tn *testNode) upload(t *testing.T, query, filename string, content []byte) (*http.Response, []byte) {
	t.Helper()
	body, ct := multipartBody(t, "file", filename, content)
	return tn.do(t, http.MethodPost, "/api/Spaces-1/packages/raw"+query, body, map[string]string{"Content-Type": ct})
}

func sha1hex(b []byte) string {
	s := sha1.Sum(b) //nolint:gosec
	return hex.EncodeToString(s[:])
}

func TestPingFollowsDrainAndDatabase(t *testing.T) {
	a := newTestNode(t, nil)
	b := newTestNode(t, a)
	resp, body := a.do(t, http.MethodGet, octopusapi.PingPath, nil, map[string]string{octopusapi.HeaderAPIKey: ""})
	if resp.StatusCode != 200 {
		t.Fatalf("ping = %d %s, want 200", resp.StatusCode, body)
	}
	if resp.Header.Get(octopusapi.HeaderNode) != "Node1" {
		t.Fatalf("node header = %q", resp.Header.Get(octopusapi.HeaderNode))
	}
	var pn octopusapi.Node
	if err := json.Unmarshal(body, &pn); err != nil || pn.Id != "OctopusServerNodes-1" || pn.IsInMaintenanceMode {
		t.Fatalf("ping body = %s (%v)", body, err)
	}

	// Drain node B through node A.
	drain := true
	ub, _ := json.Marshal(octopusapi.NodeUpdate{Id: "OctopusServerNodes-2", IsInMaintenanceMode: &drain})
	resp, body = a.do(t, http.MethodPut, octopusapi.NodePath("OctopusServerNodes-2"), bytes.NewReader(ub), nil)
	if resp.StatusCode != 200 {
		t.Fatalf("PUT = %d %s", resp.StatusCode, body)
	}
	b.heartbeat(context.Background()) // "within one heartbeat"
	resp, _ = b.do(t, http.MethodGet, octopusapi.PingPath, nil, nil)
	if resp.StatusCode != http.StatusTeapot {
		t.Fatalf("drained node B ping = %d, want 418", resp.StatusCode)
	}
	resp, _ = a.do(t, http.MethodGet, octopusapi.PingPath, nil, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("node A ping = %d after draining B", resp.StatusCode)
	}

	// Nodes list shows both, B in maintenance.
	resp, body = a.do(t, http.MethodGet, octopusapi.NodesPath, nil, nil)
	var page octopusapi.Page[octopusapi.Node]
	if err := json.Unmarshal(body, &page); err != nil || resp.StatusCode != 200 {
		t.Fatalf("nodes = %d %s", resp.StatusCode, body)
	}
	if page.TotalResults != 2 || !page.Items[1].IsInMaintenanceMode || page.Items[0].IsInMaintenanceMode {
		t.Fatalf("nodes page = %+v", page)
	}

	// Without its database, after the grace, ping answers 503.
	a.db.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		a.heartbeat(context.Background())
		resp, _ = a.do(t, http.MethodGet, octopusapi.PingPath, nil, nil)
		if resp.StatusCode == http.StatusServiceUnavailable {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ping still %d after the database went away", resp.StatusCode)
		}
		time.Sleep(50 * time.Millisecond) // polling a condition with a deadline
	}
}

func TestAuth(t *testing.T) {
	a := newTestNode(t, nil)
	resp, _ := a.do(t, http.MethodGet, "/api/", nil, map[string]string{octopusapi.HeaderAPIKey: ""})
	if resp.StatusCode != 200 {
		t.Fatalf("root without key = %d, want 200 (anonymous)", resp.StatusCode)
	}
	for _, tc := range []struct{ key, want string }{{"", "logged in"}, {"API-WRONG", "not valid"}} {
		resp, body := a.do(t, http.MethodGet, octopusapi.NodesPath, nil, map[string]string{octopusapi.HeaderAPIKey: tc.key})
		if resp.StatusCode != 401 || !strings.Contains(string(body), tc.want) {
			t.Fatalf("key %q: %d %s", tc.key, resp.StatusCode, body)
		}
		var e octopusapi.Error
		if json.Unmarshal(body, &e) != nil || e.ErrorMessage == "" {
			t.Fatalf("401 body is not an Octopus error: %s", body)
		}
	}
	resp, _ = a.do(t, http.MethodGet, octopusapi.NodesPath, nil, map[string]string{octopusapi.HeaderAPIKey: "", "Authorization": "Bearer " + testKey})
	if resp.StatusCode != 200 {
		t.Fatalf("bearer = %d", resp.StatusCode)
	}
}

func TestRootAndSpaces(t *testing.T) {
	a := newTestNode(t, nil)
	for _, p := range []string{"/api", "/api/", "/api/spaces", "/api/spaces/all", "/api/Spaces-1", "/api/spaces/Spaces-1", "/api/users/me", "/api/tasks"} {
		resp, body := a.do(t, http.MethodGet, p, nil, nil)
		if resp.StatusCode != 200 || !json.Valid(body) {
			t.Fatalf("GET %s = %d %s", p, resp.StatusCode, body)
		}
	}
	_, body := a.do(t, http.MethodGet, "/api/", nil, nil)
	var root octopusapi.Root
	json.Unmarshal(body, &root)
	if root.Links["Spaces"] == "" || root.ApiVersion != "3.0.0" {
		t.Fatalf("root = %s", body)
	}
	_, body = a.do(t, http.MethodGet, "/api/spaces/all", nil, nil)
	var spaces []octopusapi.Space
	json.Unmarshal(body, &spaces)
	if len(spaces) != 1 || spaces[0].Id != "Spaces-1" || spaces[0].Name != "Default" {
		t.Fatalf("spaces = %s", body)
	}
	resp, _ := a.do(t, http.MethodGet, "/api/Spaces-9", nil, nil)
	if resp.StatusCode != 404 {
		t.Fatalf("unknown space = %d", resp.StatusCode)
	}
	resp, _ = a.do(t, http.MethodGet, "/api/Spaces-1/packages/Foo/1.0.0/delta-signature", nil, nil)
	if resp.StatusCode != 404 {
		t.Fatalf("delta signature = %d, want 404", resp.StatusCode)
	}
}

func TestUploadOverwriteModes(t *testing.T) {
	a := newTestNode(t, nil)
	b := newTestNode(t, a)
	v1 := []byte("first content of the package")
	v2 := []byte("second, different content")

	resp, body := a.upload(t, "?overwriteMode=FailIfExists", "Acme.Web.1.0.0.zip", v1)
	if resp.StatusCode != 201 {
		t.Fatalf("new upload = %d %s", resp.StatusCode, body)
	}
	var p octopusapi.Package
	json.Unmarshal(body, &p)
	if p.Hash != sha1hex(v1) || p.PackageSizeBytes != int64(len(v1)) || p.PackageId != "Acme.Web" || p.Version != "1.0.0" || p.Id != "packages-Acme.Web.1.0.0" {
		t.Fatalf("package = %+v", p)
	}
	// On disk where Octopus keeps it.
	onDisk, err := os.ReadFile(filepath.Join(a.dir, "Packages", "Spaces-1", "feeds-builtin", "Acme.Web", "Acme.Web.1.0.0.zip"))
	if err != nil || !bytes.Equal(onDisk, v1) {
		t.Fatalf("file on disk: %v", err)
	}

	resp, body = b.upload(t, "?overwriteMode=FailIfExists", "Acme.Web.1.0.0.zip", v2)
	var e octopusapi.Error
	if resp.StatusCode != 409 || json.Unmarshal(body, &e) != nil || !strings.Contains(e.ErrorMessage, "already exists") {
		t.Fatalf("duplicate = %d %s", resp.StatusCode, body)
	}
	resp, body = b.upload(t, "", "Acme.Web.1.0.0.zip", v2) // default is FailIfExists
	if resp.StatusCode != 409 {
		t.Fatalf("duplicate without mode = %d %s", resp.StatusCode, body)
	}
	resp, body = b.upload(t, "?overwriteMode=IgnoreIfExists", "Acme.Web.1.0.0.zip", v2)
	json.Unmarshal(body, &p)
	if resp.StatusCode != 200 || p.Hash != sha1hex(v1) {
		t.Fatalf("ignore = %d %s", resp.StatusCode, body)
	}
	resp, body = b.upload(t, "?overwriteMode=overwriteexisting", "Acme.Web.1.0.0.zip", v2)
	json.Unmarshal(body, &p)
	if resp.StatusCode != 201 || p.Hash != sha1hex(v2) {
		t.Fatalf("overwrite = %d %s", resp.StatusCode, body)
	}
	resp, body = a.upload(t, "?replace=true", "Acme.Web.1.0.0.zip", v1)
	json.Unmarshal(body, &p)
	if resp.StatusCode != 201 || p.Hash != sha1hex(v1) {
		t.Fatalf("legacy replace = %d %s", resp.StatusCode, body)
	}
	resp, _ = a.upload(t, "?replace=false", "Acme.Web.1.0.0.zip", v2)
	if resp.StatusCode != 409 {
		t.Fatalf("replace=false duplicate = %d", resp.StatusCode)
	}
	resp, _ = a.upload(t, "?overwriteMode=Sometimes", "Acme.Web.2.0.0.zip", v2)
	if resp.StatusCode != 400 {
		t.Fatalf("bad mode = %d", resp.StatusCode)
	}

	// Read back through node B: metadata, bytes, list.
	resp, body = b.do(t, http.MethodGet, octopusapi.PackageRawPath("Spaces-1", "packages-Acme.Web.1.0.0"), nil, nil)
	if resp.StatusCode != 200 || !bytes.Equal(body, v1) || resp.Header.Get(octopusapi.HeaderNode) != "Node2" {
		t.Fatalf("download via B = %d %q", resp.StatusCode, body)
	}
	resp, body = b.do(t, http.MethodGet, octopusapi.PackagesPath("Spaces-1")+"?filter=acme", nil, nil)
	var page octopusapi.Page[octopusapi.Package]
	json.Unmarshal(body, &page)
	if resp.StatusCode != 200 || page.TotalResults != 1 || page.Items[0].Hash != sha1hex(v1) {
		t.Fatalf("list = %d %s", resp.StatusCode, body)
	}
	assertNoTempFiles(t, a)
}

func TestUploadAnyFieldNameAndChunked(t *testing.T) {
	a := newTestNode(t, nil)
	content := bytes.Repeat([]byte("octopus "), 100000)
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		mw.WriteField("note", "ignored")
		fw, _ := mw.CreateFormFile("data", "Chunky.2.1.0-beta.1.tar.gz")
		fw.Write(content)
		mw.Close()
		pw.Close()
	}()
	// An io.Pipe body has no known length: sent chunked, as the CLI does.
	resp, body := a.do(t, http.MethodPost, "/api/spaces/Spaces-1/packages/raw?overwriteMode=FailIfExists", pr, map[string]string{"Content-Type": mw.FormDataContentType()})
	var p octopusapi.Package
	json.Unmarshal(body, &p)
	if resp.StatusCode != 201 || p.Hash != sha1hex(content) || p.FileExtension != ".tar.gz" || p.Version != "2.1.0-beta.1" {
		t.Fatalf("chunked upload = %d %s", resp.StatusCode, body)
	}
}

func TestUploadBadInput(t *testing.T) {
	a := newTestNode(t, nil)
	for _, name := range []string{"../../etc/passwd.1.0.0.zip", "/abs/Foo.1.0.0.zip", `..\Foo.1.0.0.zip`, "Foo.zip", "Foo.1.0.0.exe", "Foo..1.0.0.zip", ".1.0.0.zip", strings.Repeat("A", 300) + ".1.0.0.zip"} {
		resp, body := a.upload(t, "", name, []byte("x"))
		var e octopusapi.Error
		if resp.StatusCode != 400 || json.Unmarshal(body, &e) != nil || e.ErrorMessage == "" {
			t.Errorf("file name %q: %d %s, want 400 with an Octopus error", name, resp.StatusCode, body)
		}
	}
	resp, body := a.upload(t, "", "Empty.1.0.0.zip", nil)
	if resp.StatusCode != 400 || !strings.Contains(string(body), octopusapi.IssueEmptyFile) {
		t.Errorf("empty file: %d %s", resp.StatusCode, body)
	}
	resp, _ = a.do(t, http.MethodPost, "/api/Spaces-1/packages/raw", strings.NewReader("not multipart"), map[string]string{"Content-Type": "application/zip"})
	if resp.StatusCode != 400 {
		t.Errorf("not multipart: %d", resp.StatusCode)
	}
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.WriteField("file", "no file part")
	mw.Close()
	resp, _ = a.do(t, http.MethodPost, "/api/Spaces-1/packages/raw", &buf, map[string]string{"Content-Type": mw.FormDataContentType()})
	if resp.StatusCode != 400 {
		t.Errorf("no file part: %d", resp.StatusCode)
	}
	body2, ct := multipartBody(t, "file", "Foo.1.0.0.zip", []byte("x"))
	resp, _ = a.do(t, http.MethodPost, "/api/Spaces-1/packages/raw", body2, map[string]string{"Content-Type": ct, octopusapi.HeaderAPIKey: ""})
	if resp.StatusCode != 401 {
		t.Errorf("upload without key: %d", resp.StatusCode)
	}
	assertNoTempFiles(t, a)
	assertNoPackages(t, a)
}

// A client that hangs up mid-upload leaves no file, no temporary file and no row.
func TestUploadClientDisconnect(t *testing.T) {
	a := newTestNode(t, nil)
	conn, err := net.Dial("tcp", strings.TrimPrefix(a.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	boundary := "xyzBOUNDARYxyz"
	fmt.Fprintf(conn, "POST /api/Spaces-1/packages/raw HTTP/1.1\r\nHost: x\r\n%s: %s\r\nContent-Type: multipart/form-data; boundary=%s\r\nTransfer-Encoding: chunked\r\n\r\n", octopusapi.HeaderAPIKey, testKey, boundary)
	part := fmt.Sprintf("--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"Gone.1.0.0.zip\"\r\nContent-Type: application/octet-stream\r\n\r\n", boundary) + strings.Repeat("z", 3<<20)
	fmt.Fprintf(conn, "%x\r\n%s\r\n", len(part), part)
	// Wait until the node is writing the temporary file, then hang up.
	waitFor(t, 5*time.Second, "temporary file appears", func() bool { return len(tempFiles(t, a)) == 1 })
	conn.Close()
	waitFor(t, 5*time.Second, "temporary file removed", func() bool { return len(tempFiles(t, a)) == 0 })
	assertNoPackages(t, a)
}

func TestJanitorSweepsAbandonedTempFiles(t *testing.T) {
	a := newTestNode(t, nil)
	ctx := context.Background()
	write := func(name string) {
		w, err := a.pkgs.Create(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte("partial"))
		w.Close()
	}
	own := TempDir + "/OctopusServerNodes-1_aaaa.tmp"
	dead := TempDir + "/OctopusServerNodes-9_bbbb.tmp"
	live := TempDir + "/OctopusServerNodes-2_cccc.tmp"
	active := TempDir + "/OctopusServerNodes-1_dddd.tmp"
	for _, n := range []string{own, dead, live, active} {
		write(n)
	}
	// Node 2 is alive (fresh heartbeat); node 9 never registered.
	if err := a.db.Heartbeat(ctx, store.Node{ID: "OctopusServerNodes-2", Name: "Node2", LastSeen: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
	a.uploads.add(active)
	a.sweep(ctx)
	left := map[string]bool{}
	for _, f := range tempFiles(t, a) {
		left[f] = true
	}
	if left[own] || left[dead] || !left[live] || !left[active] || len(left) != 2 {
		t.Fatalf("after sweep: %v", left)
	}
}

func TestUnsafeAckBeforeStore(t *testing.T) {
	// The store delay must outlast the upload's answer and the GET below
	// on a loaded machine (with 300ms the GET could come after the store).
	a := newTestNode(t, nil, func(c *Config) { c.UnsafeAckBeforeStore = true; c.UnsafeStoreDelay = 2 * time.Second })
	resp, _ := a.upload(t, "", "Early.1.0.0.zip", []byte("acked too soon"))
	if resp.StatusCode != 201 {
		t.Fatalf("unsafe upload = %d", resp.StatusCode)
	}
	// Acknowledged, but not stored yet: exactly the bug the checker must catch.
	resp, _ = a.do(t, http.MethodGet, octopusapi.PackagePath("Spaces-1", "packages-Early.1.0.0"), nil, nil)
	if resp.StatusCode != 404 {
		t.Fatalf("package visible right after the early ack: %d", resp.StatusCode)
	}
	waitFor(t, 10*time.Second, "late publish", func() bool {
		resp, _ := a.do(t, http.MethodGet, octopusapi.PackagePath("Spaces-1", "packages-Early.1.0.0"), nil, nil)
		return resp.StatusCode == 200
	})
}

func TestNodeResourceEndpoints(t *testing.T) {
	a := newTestNode(t, nil)
	resp, body := a.do(t, http.MethodGet, octopusapi.NodePath("OctopusServerNodes-1"), nil, nil)
	var n octopusapi.Node
	if resp.StatusCode != 200 || json.Unmarshal(body, &n) != nil || n.MaxConcurrentTasks != 20 || n.LastSeen == nil || n.IsOffline {
		t.Fatalf("node = %d %s", resp.StatusCode, body)
	}
	cap5 := 5
	ub, _ := json.Marshal(octopusapi.NodeUpdate{Id: "OctopusServerNodes-1", MaxConcurrentTasks: &cap5})
	resp, body = a.do(t, http.MethodPut, octopusapi.NodePath("OctopusServerNodes-1"), bytes.NewReader(ub), nil)
	json.Unmarshal(body, &n)
	if resp.StatusCode != 200 || n.MaxConcurrentTasks != 5 {
		t.Fatalf("put cap = %d %s", resp.StatusCode, body)
	}
	a.heartbeat(context.Background())
	_, body = a.do(t, http.MethodGet, octopusapi.NodesPath+"/all", nil, nil)
	var all []octopusapi.Node
	json.Unmarshal(body, &all)
	if len(all) != 1 || all[0].MaxConcurrentTasks != 5 {
		t.Fatalf("heartbeat reset the cap: %s", body)
	}
	for _, p := range []string{octopusapi.NodesSummaryPath, octopusapi.NodePath("OctopusServerNodes-1") + "/details"} {
		if resp, body := a.do(t, http.MethodGet, p, nil, nil); resp.StatusCode != 200 {
			t.Fatalf("GET %s = %d %s", p, resp.StatusCode, body)
		}
	}
	resp, _ = a.do(t, http.MethodGet, octopusapi.NodePath("OctopusServerNodes-77"), nil, nil)
	if resp.StatusCode != 404 {
		t.Fatalf("missing node = %d", resp.StatusCode)
	}
	resp, _ = a.do(t, http.MethodPut, octopusapi.NodePath("OctopusServerNodes-1"), strings.NewReader("{not json"), nil)
	if resp.StatusCode != 400 {
		t.Fatalf("bad PUT = %d", resp.StatusCode)
	}
}

func tempFiles(t *testing.T, tn *testNode) []string {
	t.Helper()
	files, err := tn.pkgs.Walk(context.Background(), TempDir)
	if err != nil && !strings.Contains(err.Error(), "not exist") {
		t.Fatalf("walk temp: %v", err)
	}
	var out []string
	for _, f := range files {
		out = append(out, f.Name)
	}
	return out
}

func assertNoTempFiles(t *testing.T, tn *testNode) {
	t.Helper()
	if left := tempFiles(t, tn); len(left) > 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}

func assertNoPackages(t *testing.T, tn *testNode) {
	t.Helper()
	rows, total, err := tn.db.ListPackages(context.Background(), store.PackageQuery{SpaceID: "Spaces-1"})
	if err != nil || total != 0 {
		t.Fatalf("rows = %v (%d), err %v", rows, total, err)
	}
	files, _ := tn.pkgs.Walk(context.Background(), "Spaces-1")
	if len(files) > 0 {
		t.Fatalf("files left: %v", files)
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
