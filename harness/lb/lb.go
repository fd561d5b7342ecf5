package lb

import (
	"context"
	"fmt"
	"strings"
)

// Kind names a load-balancer driver.
type Kind string

const (
	// HAProxy is a real HAProxy with active health checks (the default).
	HAProxy Kind = "haproxy"
	// Nginx is nginx OSS tuned for Octopus uploads (lb.md §2 "Tuned config").
	Nginx Kind = "nginx"
	// NginxDefaults is nginx as commonly deployed: 1 MB body limit, request
	// bodies spooled to disk, passive failure detection only.
	NginxDefaults Kind = "nginx-defaults"
	// Caddy is a real Caddy tuned for Octopus: no body limit, streamed
	// bodies, no total read timeout, active checks on the ping.
	Caddy Kind = "caddy"
	// CaddyTimeout is Caddy with a total request read limit (servers
	// timeouts read_body, Options.RequestTimeout): what a slow upload meets
	// behind a Go-based proxy configured with a read timeout.
	CaddyTimeout Kind = "caddy-timeout"
	// Embedded is the in-process Go reverse proxy, the fallback when no
	// load-balancer binary is installed.
	Embedded Kind = "embedded"
)

// Kinds lists every driver, default first.
func Kinds() []Kind {
	return []Kind{HAProxy, Nginx, NginxDefaults, Caddy, CaddyTimeout, Embedded, AzureLB, AzureAppGW}
}

// ParseKind parses a driver name, case-insensitively; "" means HAProxy.
func ParseKind(s string) (Kind, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" {
		return HAProxy, nil
	}
	for _, k := range Kinds() {
		if s == string(k) {
			return k, nil
		}
	}
	names := make([]string, 0, len(Kinds()))
	for _, k := range Kinds() {
		names = append(names, string(k))
	}
	return "", fmt.Errorf("lb: unknown load balancer kind %q (want one of %s)", s, strings.Join(names, ", "))
}

// State is a load balancer's view of one backend server. The names are
// HAProxy's.
type State string

const (
	// StateUp: the server takes new sessions.
	StateUp State = "UP"
	// StateDown: health checks failed; no traffic, sticky sessions move.
	StateDown State = "DOWN"
	// StateDrain: drained by an operator; only sticky sessions are served.
	StateDrain State = "DRAIN"
	// StateNOLB: the health check reported draining (418 with DrainNOLB);
	// only sticky sessions are served.
	StateNOLB State = "NOLB"
	// StateMaint: in maintenance by an operator; no traffic at all.
	StateMaint State = "MAINT"
	// StateUnknown: the load balancer cannot tell (nginx OSS).
	StateUnknown State = "UNKNOWN"
)

// Serving reports whether a state, as a balancer or a history spells it,
// means the server takes new requests: HAProxy's "UP" and "UP 1/3" (up,
// failing checks) and "no check"; everything else ("DOWN", "DOWN 1/2",
// "NOLB", "DRAIN", "MAINT", "UNKNOWN") does not.
func Serving(state string) bool {
	s := strings.ToUpper(strings.TrimSpace(state))
	return strings.HasPrefix(s, "UP") || s == "NO CHECK"
}

// ServerState is one backend server as the load balancer sees it.
type ServerState struct {
	Name   string // backend name, e.g. Node1
	State  State
	Check  string // last health check, e.g. "L7STS/418", "L7OK/200", "L4CON"
	Detail string // free text from the load balancer
}

// Balancer is a running (or startable) load balancer.
type Balancer interface {
	Kind() Kind
	// URL is the base URL clients use, e.g. http://127.0.0.10:8080.
	URL() string
	// Start starts the load balancer and returns once it accepts
	// connections. A stopped Balancer can be started again.
	Start(ctx context.Context) error
	// States returns each backend's state, in Options.Backends order.
	States(ctx context.Context) ([]ServerState, error)
	// Stop stops the load balancer; it is a no-op when not running.
	Stop(ctx context.Context) error
	// Describe says what this is, for logs and reports, e.g.
	// "HAProxy 2.6.12 (real, /usr/sbin/haproxy)".
	Describe() string
	// PID is the load balancer's process ID while running, else 0 (always 0
	// for Embedded).
	PID() int
}

// Controller is implemented by balancers whose servers an operator can take
// out of and put back into rotation at run time. Find it by type assertion.
type Controller interface {
	// SetServerState sets a backend's administrative state. StateUp returns
	// it to rotation; what else is accepted depends on the driver (HAProxy:
	// DRAIN, MAINT and DOWN (= MAINT); nginx: DOWN and MAINT, by rewriting
	// the config and reloading).
	SetServerState(ctx context.Context, name string, state State) error
}

// CookieName is the stickiness cookie, as HAProxy's `cookie SRV insert`
// and the embedded proxy set it; its value is the backend name.
const CookieName = "SRV"

// New validates opts, fills in defaults and returns a stopped Balancer of
// opts.Kind. It fails if the kind's binary is not installed.
func New(opts Options) (Balancer, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	switch o.Kind {
	case HAProxy:
		return newHAProxy(o)
	case Nginx, NginxDefaults:
		return newNginx(o)
	case Caddy, CaddyTimeout:
		return newCaddy(o)
	case Embedded:
		return newEmbedded(o), nil
	case AzureLB, AzureAppGW:
		return newAzure(o)
	}
	return nil, fmt.Errorf("lb: unknown load balancer kind %q", o.Kind)
}

// Available reports whether kind k can run on this machine; the error says
// how to install what is missing.
func Available(k Kind) error {
	switch k {
	case HAProxy, AzureLB, AzureAppGW:
		_, err := findBinary("haproxy", "apt-get install haproxy")
		return err
	case Nginx, NginxDefaults:
		_, err := findBinary("nginx", "apt-get install nginx-light")
		return err
	case Caddy, CaddyTimeout:
		_, err := findBinary("caddy", "apt-get install caddy")
		return err
	case Embedded:
		return nil
	}
	return fmt.Errorf("lb: unknown load balancer kind %q", k)
}

// Best returns the most faithful kind installed: HAProxy, else tuned nginx,
// else tuned Caddy, else Embedded. Callers should log loudly when it returns Embedded, since
// results then say nothing about a real load balancer.
func Best() Kind {
	for _, k := range []Kind{HAProxy, Nginx, Caddy} {
		if Available(k) == nil {
			return k
		}
	}
	return Embedded
}
