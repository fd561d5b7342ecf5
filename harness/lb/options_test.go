package lb

import (
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/octoha/octoha/octopusapi"
)

func TestParseKind(t *testing.T) {
	for in, want := range map[string]Kind{
		"": HAProxy, "haproxy": HAProxy, " HAProxy ": HAProxy, "nginx": Nginx,
		"NGINX-DEFAULTS": NginxDefaults, "embedded": Embedded, "caddy": Caddy, "Caddy-Timeout": CaddyTimeout,
	} {
		got, err := ParseKind(in)
		if err != nil || got != want {
			t.Errorf("ParseKind(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	_, err := ParseKind("traefik")
	if err == nil || !strings.Contains(err.Error(), "nginx-defaults") || !strings.Contains(err.Error(), "caddy-timeout") {
		t.Errorf("ParseKind(traefik) error %v should list the valid kinds", err)
	}
}

func TestOptionsDefaults(t *testing.T) {
	o, err := Options{Kind: Embedded, Backends: []Backend{{"Node1", "127.0.0.11:8080"}}}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if o.Listen != DefaultListen || o.HealthPath != octopusapi.PingPath || o.Interval != 500*time.Millisecond ||
		o.Fall != 2 || o.Rise != 2 || o.Drain != DrainDown || o.ConnectTimeout != 5*time.Second ||
		o.ClientTimeout != 10*time.Minute || o.ServerTimeout != 15*time.Minute || o.HeaderTimeout != 30*time.Second {
		t.Errorf("defaults not applied: %+v", o)
	}
	o, err = Options{Kind: Embedded, Listen: "127.0.0.1:0", Backends: []Backend{{"Node1", "127.0.0.11:8080"}}}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if _, port, _ := net.SplitHostPort(o.Listen); port == "0" {
		t.Errorf("port 0 not resolved: %s", o.Listen)
	}
	o, err = Options{Kind: CaddyTimeout, Dir: "/tmp/x", Backends: []Backend{{"Node1", "127.0.0.11:8080"}}}.withDefaults()
	if err != nil || o.RequestTimeout != DefaultCaddyReadBody {
		t.Errorf("caddy-timeout without RequestTimeout: %v, %v; want the %v default", o.RequestTimeout, err, DefaultCaddyReadBody)
	}
	if o2, _ := (Options{}).withDefaults(); o2.Kind != HAProxy {
		t.Errorf("zero Kind = %q, want haproxy", o2.Kind)
	}
}

func TestOptionsValidate(t *testing.T) {
	one := []Backend{{"Node1", "127.0.0.11:8080"}}
	long := "/tmp/" + strings.Repeat("d", 110)
	cases := []struct {
		name string
		o    Options
		want string // substring of the error
	}{
		{"no backends", Options{Kind: Embedded}, "no Backends"},
		{"bad kind", Options{Kind: "traefik", Backends: one}, "unknown load balancer kind"},
		{"listen no host", Options{Kind: Embedded, Listen: ":8080", Backends: one}, "has no host"},
		{"listen garbage", Options{Kind: Embedded, Listen: "localhost", Backends: one}, "not host:port"},
		{"bad name", Options{Kind: Embedded, Backends: []Backend{{"Node 1", "127.0.0.11:8080"}}}, "name \"Node 1\""},
		{"dup name", Options{Kind: Embedded, Backends: []Backend{{"N", "127.0.0.11:8080"}, {"N", "127.0.0.12:8080"}}}, "duplicate name"},
		{"dup addr", Options{Kind: Embedded, Backends: []Backend{{"A", "127.0.0.11:8080"}, {"B", "127.0.0.11:8080"}}}, "used by another backend"},
		{"bad addr", Options{Kind: Embedded, Backends: []Backend{{"A", "127.0.0.11"}}}, "not host:port"},
		{"port 0 backend", Options{Kind: Embedded, Backends: []Backend{{"A", "127.0.0.11:0"}}}, "bad port"},
		{"health path", Options{Kind: Embedded, Backends: one, HealthPath: "ping"}, "HealthPath"},
		{"interval", Options{Kind: Embedded, Backends: one, Interval: time.Millisecond}, "Interval"},
		{"fall", Options{Kind: Embedded, Backends: one, Fall: -1}, "Fall"},
		{"timeout", Options{Kind: Embedded, Backends: one, ServerTimeout: -time.Second}, "ServerTimeout"},
		{"drain", Options{Kind: Embedded, Backends: one, Drain: "soft"}, "Drain \"soft\""},
		{"request timeout", Options{Kind: Embedded, Backends: one, RequestTimeout: -time.Second}, "RequestTimeout"},
		{"haproxy request timeout", Options{Kind: HAProxy, Backends: one, Dir: "/tmp/x", RequestTimeout: time.Second}, "no total request timeout"},
		{"haproxy dir", Options{Kind: HAProxy, Backends: one}, "needs Options.Dir"},
		{"socket length", Options{Kind: HAProxy, Backends: one, Dir: long}, "use a shorter Dir"},
		{"nginx sticky", Options{Kind: Nginx, Backends: one, Dir: "/tmp/x", Sticky: true}, "nginx OSS has no `sticky` directive"},
		{"caddy request timeout", Options{Kind: Caddy, Backends: one, Dir: "/tmp/x", RequestTimeout: time.Second}, "use caddy-timeout"},
		{"caddy sticky", Options{Kind: Caddy, Backends: one, Dir: "/tmp/x", Sticky: true}, "pins to a hash of the address"},
		{"caddy nolb", Options{Kind: CaddyTimeout, Backends: one, Dir: "/tmp/x", Drain: DrainNOLB}, "Caddy has no drain state"},
		{"caddy dir", Options{Kind: CaddyTimeout, Backends: one}, "needs Options.Dir"},
		{"caddy socket length", Options{Kind: Caddy, Backends: one, Dir: long}, "use a shorter Dir"},
		{"nginx nolb", Options{Kind: NginxDefaults, Backends: one, Dir: "/tmp/x", Drain: DrainNOLB}, "needs active health checks"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := c.o.withDefaults()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v; want it to contain %q", err, c.want)
			}
		})
	}
	// Every problem is reported at once.
	_, err := Options{Kind: HAProxy, Listen: ":1", Interval: time.Microsecond}.withDefaults()
	for _, want := range []string{"has no host", "no Backends", "Interval", "needs Options.Dir"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("joined error %v lacks %q", err, want)
		}
	}
}

func TestAvailableBest(t *testing.T) {
	if err := Available(Embedded); err != nil {
		t.Errorf("Available(embedded) = %v", err)
	}
	if err := Available("traefik"); err == nil {
		t.Error("Available(traefik) = nil")
	}
	want := Embedded
	if Available(HAProxy) == nil {
		want = HAProxy
	} else if Available(Nginx) == nil {
		want = Nginx
	} else if Available(Caddy) == nil {
		want = Caddy
	}
	if got := Best(); got != want {
		t.Errorf("Best() = %s, want %s", got, want)
	}
	if err := Available(HAProxy); err != nil && !strings.Contains(err.Error(), "apt-get install haproxy") {
		t.Errorf("Available(haproxy) error should say how to install: %v", err)
	}
}

func TestCfgDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		500 * time.Millisecond: "500ms", 2 * time.Second: "2s", 15 * time.Minute: "900s",
		1500 * time.Microsecond: "2ms",
	} {
		if got := cfgDuration(d); got != want {
			t.Errorf("cfgDuration(%v) = %s, want %s", d, got, want)
		}
	}
}

func TestParseShowStat(t *testing.T) {
	b, err := os.ReadFile("testdata/show_stat.csv")
	if err != nil {
		t.Fatal(err)
	}
	got, err := parseShowStat(string(b), "octo")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		state State
		check string
	}{
		"Node1": {StateUp, "L7STS/418"}, // failing, not yet down
		"Node2": {StateNOLB, "L7OKC/418"},
		"Node3": {StateMaint, "L4CON"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d servers %+v, want %d", len(got), got, len(want))
	}
	for name, w := range want {
		s := got[name]
		if s.State != w.state || s.Check != w.check {
			t.Errorf("%s = %+v, want %s %s", name, s, w.state, w.check)
		}
	}
	if !strings.Contains(got["Node1"].Detail, "UP 1/2") || !strings.Contains(got["Node1"].Detail, "health ") {
		t.Errorf("Node1 detail %q should keep HAProxy's status", got["Node1"].Detail)
	}
	if _, err := parseShowStat("Unknown command\n", "octo"); err == nil {
		t.Error("parseShowStat accepted a reply without a header")
	}
}

func TestHAProxyState(t *testing.T) {
	for in, want := range map[string]State{
		"UP": StateUp, "UP 1/2": StateUp, "DOWN": StateDown, "DOWN 1/2": StateDown, "NOLB": StateNOLB,
		"NOLB 1/2": StateNOLB, "DRAIN": StateDrain, "MAINT": StateMaint, "MAINT (resolution)": StateMaint,
		"no check": StateUp, "weird": StateUnknown,
	} {
		if got := haproxyState(in); got != want {
			t.Errorf("haproxyState(%q) = %s, want %s", in, got, want)
		}
	}
}
