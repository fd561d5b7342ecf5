package runner

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/octoha/octoha/harness/apiclient"
	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/history"
	"github.com/octoha/octoha/octopusapi"
	"github.com/octoha/octoha/reports"
)

// redirectingCluster is a fake whose load balancer and nodes all answer
// with a redirect to url + the same path.
type redirectingCluster struct {
	*fakeCluster
	url string
}

func (c *redirectingCluster) URL() string { return c.url }
func (c *redirectingCluster) Nodes() []cluster.Node {
	out := c.fakeCluster.Nodes()
	for i := range out {
		out[i].URL = c.url
	}
	return out
}

// Issue 11 item 3: the scenario cleanup (DELETE of uploaded packages) and
// the active-upload probe followed redirects to a host outside the
// cluster, with the API key.
func TestRunnerSendsTheKeyOnlyToTheCluster(t *testing.T) {
	var (
		mu   sync.Mutex
		hits int
		keys []string
	)
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits++
		if k := r.Header.Get(octopusapi.HeaderAPIKey); k != "" {
			keys = append(keys, k)
		}
		mu.Unlock()
		_, _ = io.WriteString(w, `{"ActiveUploads":1}`)
	}))
	defer other.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+r.URL.RequestURI(), http.StatusTemporaryRedirect)
	}))
	defer srv.Close()
	otherOrigin, err := apiclient.Origin(other.URL)
	if err != nil {
		t.Fatal(err)
	}

	spec := cluster.Defaults()
	spec.Nodes = 1
	c := &redirectingCluster{fakeCluster: newFake(spec), url: srv.URL}
	dir := t.TempDir()
	rec, err := history.Create(filepath.Join(dir, reports.HistoryFile))
	if err != nil {
		t.Fatal(err)
	}
	rec.Op(history.Op{ID: "u1", Kind: history.KindUpload, Outcome: history.OK, PackageID: "Acme", Version: "1.0.0"})
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	r := &run{c: c, res: &Result{Dir: dir}, log: slog.New(slog.DiscardHandler), opts: Options{Console: io.Discard}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	err = r.deleteUploadedPackages(ctx)
	if err == nil || !strings.Contains(err.Error(), otherOrigin) {
		t.Errorf("the cleanup should refuse the redirect, naming %s: %v", otherOrigin, err)
	}
	if node, err := r.NodeWithActiveUpload(ctx, 200*time.Millisecond); err != nil || node != "" {
		t.Errorf("NodeWithActiveUpload = %q, %v: the answer came from outside the cluster", node, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if hits > 0 || len(keys) > 0 {
		t.Fatalf("the other origin got %d requests, with keys %q", hits, keys)
	}
}
