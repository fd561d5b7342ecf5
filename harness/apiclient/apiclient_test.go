package apiclient

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/octoha/octoha/octopusapi"
)

const key = "API-APICLIENTTEST123"

// recorder is a server that remembers the keys it was sent.
type recorder struct {
	*httptest.Server
	mu   sync.Mutex
	hits int
	keys []string
}

func newRecorder(t *testing.T, h http.HandlerFunc) *recorder {
	r := &recorder{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.hits++
		r.keys = append(r.keys, req.Header.Get(octopusapi.HeaderAPIKey))
		r.mu.Unlock()
		if h != nil {
			h(w, req)
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *recorder) seen() (int, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.hits, append([]string(nil), r.keys...)
}

func mustOrigin(t *testing.T, raw string) string {
	t.Helper()
	o, err := Origin(raw)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func TestRedirectToAnotherOriginIsRefused(t *testing.T) {
	other := newRecorder(t, nil)
	lb := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/elsewhere", http.StatusFound)
	})
	c, err := New(Options{APIKey: key, Origins: []string{lb.URL + "/prefix"}})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Get(lb.URL + "/api")
	if err == nil {
		resp.Body.Close()
		t.Fatal("the redirect was followed")
	}
	if !errors.Is(err, ErrForeignOrigin) || !strings.Contains(err.Error(), mustOrigin(t, other.URL)) {
		t.Errorf("error should name %s: %v", mustOrigin(t, other.URL), err)
	}
	if hits, _ := other.seen(); hits != 0 {
		t.Errorf("the other origin got %d requests", hits)
	}
	if _, keys := lb.seen(); len(keys) != 1 || keys[0] != key {
		t.Errorf("the load balancer got keys %q, want the key once", keys)
	}
}

func TestRequestToAnotherOriginIsRefused(t *testing.T) {
	other := newRecorder(t, nil)
	lb := newRecorder(t, nil)
	c, err := New(Options{APIKey: key, Origins: []string{lb.URL}})
	if err != nil {
		t.Fatal(err)
	}
	// An absolute link from a response (e.g. Links["Page.Next"]).
	req, _ := http.NewRequest(http.MethodGet, other.URL+"/api/Spaces-1/packages?skip=1", nil)
	req.Header.Set(octopusapi.HeaderAPIKey, key)
	resp, err := c.Do(req)
	if err == nil {
		resp.Body.Close()
		t.Fatal("a request to another origin was sent")
	}
	if !strings.Contains(err.Error(), mustOrigin(t, other.URL)) {
		t.Errorf("error should name %s: %v", mustOrigin(t, other.URL), err)
	}
	if hits, _ := other.seen(); hits != 0 {
		t.Errorf("the other origin got %d requests", hits)
	}
}

func TestRedirectBetweenAllowedOriginsIsFollowed(t *testing.T) {
	node := newRecorder(t, nil)
	lb := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, node.URL+"/api", http.StatusFound)
	})
	c, err := New(Options{APIKey: key, Origins: []string{lb.URL, node.URL}})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Get(lb.URL + "/api")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if _, keys := node.seen(); len(keys) != 1 || keys[0] != key {
		t.Errorf("the node got keys %q, want the key once", keys)
	}
}

func TestNoRedirectsReturnsTheRedirect(t *testing.T) {
	other := newRecorder(t, nil)
	lb := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL, http.StatusFound)
	})
	c, err := New(Options{APIKey: key, Origins: []string{lb.URL}, NoRedirects: true})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Get(lb.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Errorf("status %d, want the 302 itself", resp.StatusCode)
	}
	if hits, _ := other.seen(); hits != 0 {
		t.Errorf("the other origin got %d requests", hits)
	}
}

func TestOrigin(t *testing.T) {
	for in, want := range map[string]string{
		"http://LB:80/api":          "http://lb:80",
		"http://lb":                 "http://lb:80",
		"https://lb/":               "https://lb:443",
		"HTTPS://u:p@lb:8443/x?y=z": "https://lb:8443",
		"http://[::1]:8080":         "http://[::1]:8080",
	} {
		if got := mustOrigin(t, in); got != want {
			t.Errorf("Origin(%q) = %q, want %q", in, got, want)
		}
	}
	for _, bad := range []string{"", "ftp://h/", "/relative", "http://"} {
		if _, err := Origin(bad); err == nil {
			t.Errorf("Origin(%q) accepted", bad)
		}
	}
	if _, err := New(Options{}); err == nil {
		t.Error("New without origins accepted")
	}
	_, err := New(Options{Origins: []string{"http://u:s3cretpw@h:bad/"}})
	if err == nil || strings.Contains(err.Error(), "s3cretpw") {
		t.Errorf("a bad origin: %v", err)
	}
}
