package checker

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/octoha/octoha/harness/apiclient"
	"github.com/octoha/octoha/octopusapi"
)

// keyCatcher is a server outside the cluster's configuration that records
// every API key it is sent.
type keyCatcher struct {
	*httptest.Server
	mu   sync.Mutex
	keys []string
	hits int
}

func newKeyCatcher(t *testing.T) *keyCatcher {
	k := &keyCatcher{}
	k.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k.mu.Lock()
		k.hits++
		if key := r.Header.Get(octopusapi.HeaderAPIKey); key != "" {
			k.keys = append(k.keys, key)
		}
		k.mu.Unlock()
		_ = json.NewEncoder(w).Encode(octopusapi.Page[octopusapi.Package]{})
	}))
	t.Cleanup(k.Close)
	return k
}

func (k *keyCatcher) seen() (hits int, keys []string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.hits, append([]string(nil), k.keys...)
}

// Issue 11 item 3: the key followed a 302 and an absolute Links.Page.Next
// to a host that is not in the configuration.
func TestCollectSendsTheKeyOnlyToConfiguredOrigins(t *testing.T) {
	other := newKeyCatcher(t)
	otherOrigin, err := apiclient.Origin(other.URL)
	if err != nil {
		t.Fatal(err)
	}
	lb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == octopusapi.PackagesPath("Spaces-1") {
			// The first page is real; its next link points elsewhere.
			p := octopusapi.Page[octopusapi.Package]{TotalResults: 2, ItemsPerPage: 1,
				Items: []octopusapi.Package{{Id: "packages-A.1.0.0", PackageId: "A", Version: "1.0.0"}},
				Links: map[string]string{"Page.Next": other.URL + octopusapi.PackagesPath("Spaces-1") + "?skip=1&take=1"}}
			_ = json.NewEncoder(w).Encode(p)
			return
		}
		// Package metadata and downloads are redirected elsewhere.
		http.Redirect(w, r, other.URL+r.URL.RequestURI(), http.StatusFound)
	}))
	t.Cleanup(lb.Close)

	var b builder
	ack(&b, pkgA, 0)
	s, err := Collect(ctxT(t), Target{LBURL: lb.URL, APIKey: testKey}, &b.h, CollectOptions{PageSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	if hits, keys := other.seen(); len(keys) > 0 || hits > 0 {
		t.Fatalf("the other origin got %d requests, with keys %q", hits, keys)
	}
	if !strings.Contains(s.RowsError, otherOrigin) {
		t.Errorf("the Page.Next refusal should name %s: rows error %q", otherOrigin, s.RowsError)
	}
	if len(s.Rows) != 1 {
		t.Errorf("rows = %d, want the first page's 1", len(s.Rows))
	}
	v := s.Packages[0].Views[0]
	if !strings.Contains(v.Error, otherOrigin) || !strings.Contains(v.Error, "redirect") {
		t.Errorf("the redirect refusal should name %s: view error %q", otherOrigin, v.Error)
	}
}
