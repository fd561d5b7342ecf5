package tentacle

import (
	"testing"

	"github.com/octoha/octoha/harness/history"
	"github.com/octoha/octoha/internal/selfsigned"
	"github.com/octoha/octoha/octopusapi"
)

// A Tentacle trusts the cluster's thumbprint only: given one, another
// server certificate is refused; without one, the first seen is pinned.
func TestTrustIsByThumbprint(t *testing.T) {
	a, _ := selfsigned.New("a")
	b, _ := selfsigned.New("b")
	raw := func(c selfsigned.Cert) [][]byte { return c.TLS.Certificate }
	f := &Fleet{seen: octopusapi.Thumbprint(a.TLS.Certificate[0])}
	if err := f.trust(raw(a)); err != nil {
		t.Fatalf("the cluster's own certificate refused: %v", err)
	}
	if err := f.trust(raw(b)); err == nil {
		t.Fatal("another certificate trusted")
	}
	f = &Fleet{}
	if err := f.trust(raw(b)); err != nil || f.trust(raw(a)) == nil {
		t.Fatal("trust on first use did not pin the first certificate")
	}
	if _, err := Register(t.Context(), Options{Count: 1, Recorder: history.NewRecorder(nil)}); err == nil {
		t.Fatal("Register without endpoints or an API")
	}
}
