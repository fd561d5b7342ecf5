package lb

import (
	"strings"
	"testing"
)

// Every kind has a row, and the rows say what the drivers do: nginx OSS
// shows no server state (so no provider may claim the balancer's view),
// only caddy-timeout and the embedded proxy have a total request limit,
// and HAProxy and the embedded proxy both stick and drain with NOLB.
func TestFeatureTable(t *testing.T) {
	for _, k := range Kinds() {
		if _, ok := lacks[k]; !ok {
			t.Errorf("kind %s has no row in the feature table", k)
		}
	}
	for _, c := range []struct {
		kind Kind
		f    Feature
		ok   bool
	}{
		{Nginx, FeatStateView, false}, {NginxDefaults, FeatStateView, false}, {HAProxy, FeatStateView, true},
		{Caddy, FeatStateView, true}, {AzureLB, FeatStateView, true}, {Embedded, FeatStateView, true},
		{CaddyTimeout, FeatRequestTimeout, true}, {Embedded, FeatRequestTimeout, true},
		{Caddy, FeatRequestTimeout, false}, {HAProxy, FeatRequestTimeout, false}, {AzureAppGW, FeatRequestTimeout, false},
		{HAProxy, FeatSticky, true}, {Embedded, FeatNOLB, true}, {Caddy, FeatNOLB, false}, {AzureLB, FeatSticky, false},
	} {
		err := Supports(c.kind, c.f)
		if (err == nil) != c.ok {
			t.Errorf("Supports(%s, %s) = %v, want supported %v", c.kind, c.f, err, c.ok)
		}
		if err != nil && !strings.Contains(err.Error(), string(c.kind)) {
			t.Errorf("Supports(%s, %s): %v does not name the kind", c.kind, c.f, err)
		}
	}
	errs := Unsupported(Nginx, Wanted{"lb.sticky", FeatSticky, true}, Wanted{"lb.drain nolb", FeatNOLB, false})
	if len(errs) != 1 || !strings.HasPrefix(errs[0].Error(), "lb.sticky: nginx cannot:") {
		t.Errorf("Unsupported = %v, want one error naming lb.sticky", errs)
	}
}
