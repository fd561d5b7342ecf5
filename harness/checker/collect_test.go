package checker

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/octoha/octoha/harness/checker/checkertest"
	"github.com/octoha/octoha/harness/history"
	"github.com/octoha/octoha/octopusapi"
)

const testKey = "API-CHECKERTESTKEY1"

func pkgData(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7)
	}
	return b
}

var (
	pkgA = checkertest.Package{ID: "Acme.Web", Version: "1.0.0", Ext: ".zip", Data: pkgData(100, 1)}
	pkgB = checkertest.Package{ID: "Acme.Big", Version: "2.0.0", Ext: ".tar.gz", Data: pkgData(5000, 2)}
	pkgC = checkertest.Package{ID: "Acme.Api", Version: "3.0.0-beta.1", Ext: ".nupkg", Data: pkgData(300, 3)}
	pkgE = checkertest.Package{ID: "Zeta", Version: "1.0.0", Ext: ".zip", Data: pkgData(10, 4)} // not in the history
)

func ack(b *builder, p checkertest.Package, start float64) history.Op {
	return b.upload(p.ID, p.Version, p.Data, start, start+0.5, history.OK, 201)
}

// newCluster starts Node1..Node3 behind an LB; Node3 is then stopped and
// reported not live, so Collect must not touch it.
func newCluster(t *testing.T, opts checkertest.Options) (*checkertest.Cluster, Target) {
	t.Helper()
	opts.Nodes = []string{"Node1", "Node2", "Node3"}
	if opts.APIKey == "" {
		opts.APIKey = testKey
	}
	c := checkertest.New(opts)
	t.Cleanup(c.Close)
	c.Stop("Node3")
	tg := Target{LBURL: c.LB.URL, APIKey: testKey, Client: c.LB.Client()}
	for _, n := range []string{"Node1", "Node2", "Node3"} {
		tg.Nodes = append(tg.Nodes, Endpoint{Name: n, URL: c.Nodes[n].URL, Live: n != "Node3"})
	}
	return c, tg
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestCollectReadsEveryViewOverHTTP(t *testing.T) {
	for _, next := range []bool{false, true} {
		t.Run(map[bool]string{false: "skip-take", true: "page-next"}[next], func(t *testing.T) {
			c, tg := newCluster(t, checkertest.Options{MaxTake: 2, NextLinks: next})
			for _, p := range []checkertest.Package{pkgA, pkgB, pkgC, pkgE} {
				c.Put(p)
			}
			bad := bytes.Clone(pkgC.Data)
			bad[len(bad)/2] ^= 0xff
			c.Corrupt("Node2", pkgC.ID, pkgC.Version, bad)

			var b builder
			ack(&b, pkgA, 0)
			ack(&b, pkgB, 1)
			ack(&b, pkgC, 2)
			b.upload("Maybe", "1.0.0", []byte("x"), 3, 4, history.Unknown, 0)

			s, err := Collect(ctxT(t), tg, &b.h, CollectOptions{DeepLimit: 1000})
			if err != nil {
				t.Fatal(err)
			}
			if len(s.Packages) != 4 {
				t.Fatalf("packages = %d, want 4", len(s.Packages))
			}
			get := func(p checkertest.Package) *PackageState {
				st, ok := s.Package(PackageKey{p.ID, p.Version})
				if !ok {
					t.Fatalf("%s not collected", p.ID)
				}
				if len(st.Views) != 3 || st.Views[0].Via != ViaLB || st.Views[1].Via != "Node1" || st.Views[2].Via != "Node2" {
					t.Fatalf("%s views = %+v", p.ID, st.Views)
				}
				for _, v := range st.Views {
					if v.Error != "" {
						t.Fatalf("%s via %s: %s", p.ID, v.Via, v.Error)
					}
				}
				return st
			}
			for _, v := range get(pkgA).Views {
				if !v.Present || !v.Downloaded || v.BodyHash != pkgA.Hash() || v.Hash != pkgA.Hash() || v.BodySize != 100 || v.MetaNode == "" {
					t.Fatalf("A via %s: %+v", v.Via, v)
				}
			}
			big := get(pkgB).Views
			if !big[0].Downloaded || big[0].BodyHash != pkgB.Hash() {
				t.Fatalf("big package must be downloaded through the LB: %+v", big[0])
			}
			if big[1].Downloaded || big[2].Downloaded || !big[1].Present || big[2].Hash != pkgB.Hash() {
				t.Fatalf("big package must be checked by metadata only on nodes: %+v", big[1:])
			}
			cv := get(pkgC).Views
			if cv[2].BodyHash == cv[2].Hash || cv[2].BodyNode != "Node2" || cv[1].BodyHash != pkgC.Hash() {
				t.Fatalf("corrupt copy on Node2 not seen: %+v", cv)
			}
			maybe, _ := s.Package(PackageKey{"Maybe", "1.0.0"})
			for _, v := range maybe.Views {
				if v.Present || v.Error != "" {
					t.Fatalf("Maybe via %s: %+v", v.Via, v)
				}
			}
			if len(s.Rows) != 4 || s.RowsError != "" {
				t.Fatalf("rows = %d (%s)", len(s.Rows), s.RowsError)
			}
			if c.Hits("Node3", "meta")+c.Hits("Node3", "list") != 0 {
				t.Fatal("a node that is not live was read")
			}
			if s.BytesRead != int64(len(pkgA.Data)*3+len(pkgB.Data)+len(pkgC.Data)*3) {
				t.Fatalf("bytes read = %d", s.BytesRead)
			}

			r := Durability(&b.h, s)
			wantStatus(t, r, Fail)
			wantFigure(t, r, "corrupt", 1)
			wantFigure(t, r, "verified", 2)
			wantFigure(t, r, "unknown-absent", 1)
			wantEvidence(t, r, "Acme.Api@3.0.0-beta.1 via Node2: metadata says", "bytes[Node2]")

			js, _ := json.Marshal(s)
			if bytes.Contains(js, []byte(testKey)) {
				t.Fatal("the API key leaked into the snapshot")
			}
		})
	}
}

func TestCollectDeepNodesDownloadsEverything(t *testing.T) {
	c, tg := newCluster(t, checkertest.Options{})
	c.Put(pkgB)
	var b builder
	ack(&b, pkgB, 0)
	s, err := Collect(ctxT(t), tg, &b.h, CollectOptions{DeepLimit: 1000, DeepNodes: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range s.Packages[0].Views {
		if !v.Downloaded || v.BodyHash != pkgB.Hash() {
			t.Fatalf("via %s: %+v", v.Via, v)
		}
	}
	wantStatus(t, Durability(&b.h, s), Pass)
}

func TestCollectWithWrongKeyReportsUnreadable(t *testing.T) {
	c, tg := newCluster(t, checkertest.Options{})
	c.Put(pkgA)
	var b builder
	ack(&b, pkgA, 0)
	tg.APIKey = "API-WRONGKEY"
	s, err := Collect(ctxT(t), tg, &b.h, CollectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(s.RowsError, "HTTP 401") {
		t.Fatalf("rows error = %q", s.RowsError)
	}
	r := Durability(&b.h, s)
	wantStatus(t, r, Fail)
	wantFigure(t, r, "unreadable", 1)
	wantEvidence(t, r, "HTTP 401: You must be logged in")
	if strings.Contains(strings.Join(r.Evidence, " "), "API-WRONGKEY") {
		t.Fatal("the API key leaked into evidence")
	}
}

func TestCollectFromUnreachableLB(t *testing.T) {
	_, tg := newCluster(t, checkertest.Options{})
	dead := httptest.NewServer(http.NotFoundHandler())
	tg.LBURL = dead.URL
	dead.Close()
	var b builder
	ack(&b, pkgA, 0)
	s, err := Collect(ctxT(t), tg, &b.h, CollectOptions{})
	if err != nil {
		t.Fatalf("an unreachable LB is a verdict, not an error: %v", err)
	}
	if s.Packages[0].Views[0].Error == "" || s.RowsError == "" {
		t.Fatalf("views = %+v, rows error %q", s.Packages[0].Views, s.RowsError)
	}
	wantStatus(t, Durability(&b.h, s), Fail)
}

func TestCollectRefusesBadTargets(t *testing.T) {
	var b builder
	for name, tg := range map[string]Target{
		"no url":     {},
		"ftp":        {LBURL: "ftp://127.0.0.1/"},
		"no host":    {LBURL: "http://"},
		"dup nodes":  {LBURL: "http://127.0.0.1:1", Nodes: []Endpoint{{Name: "A", URL: "http://127.0.0.1:2"}, {Name: "A", URL: "http://127.0.0.1:3"}}},
		"lb name":    {LBURL: "http://127.0.0.1:1", Nodes: []Endpoint{{Name: "lb", URL: "http://127.0.0.1:2"}}},
		"bad node":   {LBURL: "http://127.0.0.1:1", Nodes: []Endpoint{{Name: "A", URL: "::"}}},
		"empty name": {LBURL: "http://127.0.0.1:1", Nodes: []Endpoint{{URL: "http://127.0.0.1:2"}}},
	} {
		if _, err := Collect(ctxT(t), tg, &b.h, CollectOptions{}); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ack(&b, pkgA, 0)
	if _, err := Collect(ctx, Target{LBURL: "http://127.0.0.1:1"}, &b.h, CollectOptions{}); err == nil {
		t.Error("a cancelled collection must return an error")
	}
}

func TestCollectStopsOnServerIgnoringPaging(t *testing.T) {
	var calls int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != octopusapi.PackagesPath("Spaces-1") {
			http.NotFound(w, r)
			return
		}
		calls++
		items := []octopusapi.Package{{Id: "packages-A.1.0.0", PackageId: "A", Version: "1.0.0"}, {Id: "packages-B.1.0.0", PackageId: "B", Version: "1.0.0"}}
		_ = json.NewEncoder(w).Encode(octopusapi.Page[octopusapi.Package]{TotalResults: 10, ItemsPerPage: 2, Items: items})
	}))
	t.Cleanup(srv.Close)
	var b builder
	s, err := Collect(ctxT(t), Target{LBURL: srv.URL}, &b.h, CollectOptions{PageSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Rows) != 2 || calls != 2 {
		t.Fatalf("rows = %d after %d calls", len(s.Rows), calls)
	}
}

func TestRunEndToEnd(t *testing.T) {
	c, tg := newCluster(t, checkertest.Options{NextLinks: true, MaxTake: 1})
	root := t.TempDir()
	var b builder
	for i, p := range []checkertest.Package{pkgA, pkgC} {
		c.Put(p)
		ack(&b, p, float64(i))
		path := filepath.Join(root, filepath.FromSlash(p.StorePath("Spaces-1")))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, p.Data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for s := 0.0; s < 10; s += 0.25 {
		b.served("Node1", s)
		if s < 5 || s >= 7 {
			b.served("Node2", s)
		}
	}
	b.fault("pause-1", "pause", "Node2", 5, 6.5)
	b.lb("Node2", "UP", 0)
	b.lb("Node2", "DOWN", 5.5)
	b.lb("Node2", "UP", 6.9)

	opts := func() Options {
		files, err := ListDir(root)
		if err != nil {
			t.Fatal(err)
		}
		return Options{
			Collect:     CollectOptions{Files: files},
			Convergence: ConvergenceOptions{EjectWithin: 2 * time.Second, RejoinWithin: 2 * time.Second},
			MinOps:      []MinOpsRule{{Kind: history.KindUpload, N: 2}, {N: 20}},
		}
	}
	rep, err := Run(ctxT(t), &b.h, tg, opts())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rep.Results {
		if r.Status != Pass {
			t.Fatalf("%s: %s %s\n  %s", r.Name, r.Status, r.Summary, strings.Join(r.Evidence, "\n  "))
		}
	}
	if len(rep.Results) != 9 { // with upload-path
		t.Fatalf("results = %d", len(rep.Results))
	}

	// A partial upload left behind must fail the run.
	if err := os.MkdirAll(filepath.Join(root, TempDir), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, TempDir, "upload-1"), []byte("half"), 0o644); err != nil {
		t.Fatal(err)
	}
	rep, err = Run(ctxT(t), &b.h, tg, opts())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Passed() || len(rep.Failed()) != 1 || rep.Failed()[0].Name != "no-leftovers" {
		t.Fatalf("failed = %+v", rep.Failed())
	}
}

func TestCollectAbandonsStalledReads(t *testing.T) {
	release := make(chan struct{})
	meta := resourceJSON(pkgA)
	// "hang-meta" never answers; "hang-body" answers and stops mid-body.
	handler := func(mode string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set(octopusapi.HeaderNode, mode)
			wait := func() {
				select {
				case <-r.Context().Done():
				case <-release:
				}
			}
			if strings.HasSuffix(r.URL.Path, "/raw") {
				w.Header().Set("Content-Length", "100")
				_, _ = w.Write(pkgA.Data[:50])
				w.(http.Flusher).Flush()
				if mode == "hang-body" {
					wait()
				}
				_, _ = w.Write(pkgA.Data[50:])
				return
			}
			if strings.Contains(r.URL.Path, "/packages/") {
				if mode == "hang-meta" {
					wait()
					return
				}
				_, _ = w.Write(meta)
				return
			}
			_, _ = w.Write([]byte(`{"Items":[]}`))
		})
	}
	var servers []*httptest.Server
	for _, m := range []string{"ok", "hang-meta", "hang-body"} {
		srv := httptest.NewServer(handler(m))
		t.Cleanup(srv.Close)
		servers = append(servers, srv)
	}
	t.Cleanup(func() { close(release) })

	var b builder
	ack(&b, pkgA, 0)
	tg := Target{LBURL: servers[0].URL, Nodes: []Endpoint{
		{Name: "hang-meta", URL: servers[1].URL, Live: true},
		{Name: "hang-body", URL: servers[2].URL, Live: true},
	}}
	began := time.Now()
	s, err := Collect(ctxT(t), tg, &b.h, CollectOptions{StallTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(began); took > 5*time.Second {
		t.Fatalf("stalled reads held the collection for %s", took)
	}
	views := s.Packages[0].Views
	if views[0].Error != "" || !views[0].Downloaded {
		t.Fatalf("lb view: %+v", views[0])
	}
	for _, v := range views[1:] {
		if !strings.Contains(v.Error, "no progress for 300ms") {
			t.Fatalf("view %s: %+v", v.Via, v)
		}
	}
	if !strings.HasPrefix(views[2].Error, "download: after 50 bytes") {
		t.Fatalf("hang-body: %q", views[2].Error)
	}
	r := Durability(&b.h, s)
	wantStatus(t, r, Fail)
	wantFigure(t, r, "unreadable", 1)
}

func resourceJSON(p checkertest.Package) []byte {
	b, _ := json.Marshal(octopusapi.Package{Id: octopusapi.PackageResourceID(p.ID, p.Version), PackageId: p.ID, Version: p.Version,
		Hash: p.Hash(), PackageSizeBytes: int64(len(p.Data)), FileExtension: p.Ext})
	return b
}
