package nemesis

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/octoha/octoha/harness/apiclient"
	"github.com/octoha/octoha/octopusapi"
)

// Issue 11 item 3: the drain PUT followed a 307 to a host that is not in
// the cluster, with the API key.
func TestDrainSendsTheKeyOnlyToTheCluster(t *testing.T) {
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
		_, _ = w.Write([]byte("{}"))
	}))
	defer other.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+r.URL.RequestURI(), http.StatusTemporaryRedirect)
	}))
	defer srv.Close()
	err := SetMaintenance(context.Background(), Env{Cluster: &fakeCluster{url: srv.URL}}, "Node2", true)
	otherOrigin, oerr := apiclient.Origin(other.URL)
	if oerr != nil {
		t.Fatal(oerr)
	}
	if err == nil || !strings.Contains(err.Error(), otherOrigin) {
		t.Errorf("the drain should fail, naming %s: %v", otherOrigin, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if hits > 0 || len(keys) > 0 {
		t.Fatalf("the other origin got %d requests, with keys %q", hits, keys)
	}
}
