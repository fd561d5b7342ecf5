package external

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/octoha/octoha/harness/apiclient"
	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/octopusapi"
)

// Issue 11 item 3: the probe followed a 302 from the load balancer to a
// host that is not in the spec, with the API key.
func TestConnectSendsTheKeyOnlyToConfiguredOrigins(t *testing.T) {
	const key = "API-EXTERNALPROBETEST1"
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
		_, _ = io.WriteString(w, `{"Items":[]}`)
	}))
	t.Cleanup(other.Close)
	lbSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+r.URL.RequestURI(), http.StatusFound)
	}))
	t.Cleanup(lbSrv.Close)
	node := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(octopusapi.Node{Id: "OctopusServerNodes-1", Name: "Node1"})
	}))
	t.Cleanup(node.Close)

	t.Setenv("OCTOHA_EXT_PROBE_TEST_KEY", key)
	spec := cluster.Spec{Provider: cluster.ProviderExternal, External: &cluster.ExternalSpec{
		LBURL:     lbSrv.URL,
		APIKeyEnv: "OCTOHA_EXT_PROBE_TEST_KEY",
		Nodes:     []cluster.ExternalNode{{Name: "Node1", URL: node.URL}},
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := Connect(ctx, spec, Options{Logger: slog.New(slog.DiscardHandler)})
	otherOrigin, oerr := apiclient.Origin(other.URL)
	if oerr != nil {
		t.Fatal(oerr)
	}
	if err == nil || !strings.Contains(err.Error(), otherOrigin) {
		t.Errorf("Connect should refuse the redirect to %s, naming it: %v", otherOrigin, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if hits > 0 || len(keys) > 0 {
		t.Fatalf("the other origin got %d requests, with keys %q", hits, keys)
	}
}
