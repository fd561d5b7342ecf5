package cluster

import (
	"strings"
	"testing"
	"time"
)

func TestSpecLBKindLimits(t *testing.T) {
	spec := func(f func(*Spec)) Spec {
		s := Defaults()
		f(&s)
		return s
	}
	for _, c := range []struct {
		name string
		s    Spec
		want string // "" = valid
	}{
		{"caddy", spec(func(s *Spec) { s.LB.Kind = "caddy" }), ""},
		{"caddy-timeout with a limit", spec(func(s *Spec) { s.LB.Kind = "caddy-timeout"; s.LB.RequestTimeout = 8 * time.Second }), ""},
		{"embedded with a limit", spec(func(s *Spec) { s.LB.Kind = "embedded"; s.LB.RequestTimeout = 8 * time.Second }), ""},
		{"haproxy with a limit", spec(func(s *Spec) { s.LB.RequestTimeout = 8 * time.Second }), "only caddy-timeout and embedded"},
		{"tuned caddy with a limit", spec(func(s *Spec) { s.LB.Kind = "caddy"; s.LB.RequestTimeout = time.Second }), "only caddy-timeout and embedded"},
		{"caddy sticky", spec(func(s *Spec) { s.LB.Kind = "caddy"; s.LB.Sticky = true }), "lb.sticky"},
		{"caddy nolb", spec(func(s *Spec) { s.LB.Kind = "caddy-timeout"; s.LB.Drain = "nolb" }), "no drain state"},
		{"unknown kind", spec(func(s *Spec) { s.LB.Kind = "traefik" }), "caddy-timeout"},
	} {
		_, err := c.s.Normalize()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: error %v, want it to contain %q", c.name, err, c.want)
		}
	}
}
