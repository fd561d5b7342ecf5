package lb

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/octoha/octoha/octopusapi"
)

// Backend is one node behind the load balancer.
type Backend struct {
	Name string // node name, e.g. Node1; also the HAProxy server name and sticky cookie value
	Addr string // host:port
}

// Polling is the load balancer's part in the polling Tentacles' layouts.
type Polling struct {
	// UniqueHost and Port: port Port+i of UniqueHost forwards to
	// Backends[i], the seed's "same address, unique ports" NAT layout
	// (10943 → node 1, 10944 → node 2, …).
	UniqueHost string
	Port       int
	// ViaLB, when set, is host:port of one frontend that balances every
	// node: polling through the load balancer, which the seed warns
	// "will not poll all servers in a timely manner".
	ViaLB string
	// Backends are the nodes' own polling addresses, in node order.
	Backends []Backend
}

// DrainMode says what a node's 418 ("draining") ping does.
type DrainMode string

const (
	// DrainDown: only 200 passes the check, so 418 takes the node DOWN
	// after Fall checks and sticky sessions move (the default).
	DrainDown DrainMode = "down"
	// DrainNOLB: 418 puts the node in NOLB at the next check (HAProxy's
	// `error-status L7OKC`): no new sessions, sticky ones still served. Any
	// other status still takes it DOWN.
	DrainNOLB DrainMode = "nolb"
)

// Defaults, sized for 1 GB package uploads (lb.md §1).
const (
	DefaultListen         = "127.0.0.10:8080"
	DefaultInterval       = 500 * time.Millisecond
	DefaultFall           = 2
	DefaultRise           = 2
	DefaultConnectTimeout = 5 * time.Second
	DefaultClientTimeout  = 10 * time.Minute
	DefaultServerTimeout  = 15 * time.Minute
	DefaultHeaderTimeout  = 30 * time.Second
)

// Options configures a load balancer. Zero values take the defaults above.
type Options struct {
	Kind Kind // default HAProxy
	// Listen is host:port; the host is required (never all interfaces).
	// Port 0 picks a free port when New is called, so URL is known and
	// stable across restarts.
	Listen   string
	Backends []Backend
	// Dir holds the generated config, the runtime socket, pid and temp files
	// and logs. Required for HAProxy and nginx; optional for Embedded.
	Dir        string
	HealthPath string        // default octopusapi.PingPath
	Interval   time.Duration // between health checks; default 500ms
	Fall, Rise int           // consecutive failed/passed checks to go DOWN/UP; default 2, 2
	Sticky     bool          // cookie stickiness (CookieName); not available in nginx OSS
	Drain      DrainMode     // default DrainDown
	// ShutdownSessions kills a server's in-flight sessions when it is marked
	// DOWN (HAProxy `on-marked-down shutdown-sessions`).
	ShutdownSessions bool
	// Timeouts are inactivity timers (see lb.md for which one bites when).
	ConnectTimeout time.Duration // default 5s
	ClientTimeout  time.Duration // default 10m; nginx client_body_timeout
	ServerTimeout  time.Duration // default 15m; nginx proxy_send/read_timeout
	HeaderTimeout  time.Duration // default 30s; HAProxy `timeout http-request`
	// RequestTimeout is a total limit (not an inactivity timer) on reading
	// a whole request, body included: Go's http.Server ReadTimeout, which
	// Go-based proxies expose (Caddy's servers timeouts read_body, Traefik
	// v3's entryPoints respondingTimeouts.readTimeout, 60s by default).
	// CaddyTimeout (default DefaultCaddyReadBody) and Embedded (default
	// none) only: HAProxy and nginx have no such limit, and the Caddy
	// profile is the one without it.
	RequestTimeout time.Duration
	// Polling, when set, adds the polling Tentacles' TCP frontends
	// (HAProxy; the other drivers ignore it and Describe says so).
	Polling *Polling
	// Azure configures the azure-lb and azure-appgw kinds (zero fields:
	// Azure's defaults); the other kinds ignore it.
	Azure Azure
	// Log receives the load balancer's own log (request and health-check
	// lines). nil discards it; the drivers also keep a copy in Dir.
	Log io.Writer
}

// withDefaults returns a validated copy of o with defaults filled in and a
// port-0 Listen resolved to a free port.
func (o Options) withDefaults() (Options, error) {
	if o.Kind == "" {
		o.Kind = HAProxy
	}
	k, err := ParseKind(string(o.Kind))
	if err != nil {
		return o, err
	}
	o.Kind = k
	if o.Listen == "" {
		o.Listen = DefaultListen
	}
	if o.HealthPath == "" {
		o.HealthPath = octopusapi.PingPath
	}
	if o.Drain == "" {
		o.Drain = DrainDown
	}
	setDur := func(d *time.Duration, def time.Duration) {
		if *d == 0 {
			*d = def
		}
	}
	setDur(&o.Interval, DefaultInterval)
	setDur(&o.ConnectTimeout, DefaultConnectTimeout)
	setDur(&o.ClientTimeout, DefaultClientTimeout)
	setDur(&o.ServerTimeout, DefaultServerTimeout)
	setDur(&o.HeaderTimeout, DefaultHeaderTimeout)
	if o.Fall == 0 {
		o.Fall = DefaultFall
	}
	if o.Rise == 0 {
		o.Rise = DefaultRise
	}
	if o.Kind == CaddyTimeout && o.RequestTimeout == 0 {
		o.RequestTimeout = DefaultCaddyReadBody
	}
	if IsAzure(o.Kind) {
		o.Azure = o.Azure.withDefaults(o.Kind)
	}
	if err := o.validate(); err != nil {
		return o, err
	}
	if strings.HasSuffix(o.Listen, ":0") {
		addr, err := freeAddr(o.Listen)
		if err != nil {
			return o, err
		}
		o.Listen = addr
	}
	return o, nil
}

func (o Options) validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("lb: "+format, args...))
	}
	if host, port, err := net.SplitHostPort(o.Listen); err != nil {
		bad("Listen %q is not host:port: %v", o.Listen, err)
	} else if host == "" {
		bad("Listen %q has no host; give an address (e.g. 127.0.0.10:8080) rather than all interfaces", o.Listen)
	} else if _, err := parsePort(port, true); err != nil {
		bad("Listen %q: %v", o.Listen, err)
	}
	if len(o.Backends) == 0 {
		bad("no Backends")
	}
	names := map[string]bool{}
	addrs := map[string]bool{}
	for i, b := range o.Backends {
		if !validName(b.Name) {
			bad("backend %d: name %q must be 1-64 characters of A-Z a-z 0-9 . _ -", i, b.Name)
		} else if names[b.Name] {
			bad("backend %d: duplicate name %q", i, b.Name)
		}
		names[b.Name] = true
		host, port, err := net.SplitHostPort(b.Addr)
		switch {
		case err != nil:
			bad("backend %s: Addr %q is not host:port: %v", b.Name, b.Addr, err)
		case host == "" || strings.ContainsAny(host, " \t;{}#,"):
			bad("backend %s: Addr %q has an empty or invalid host", b.Name, b.Addr)
		default:
			if _, err := parsePort(port, false); err != nil {
				bad("backend %s: Addr %q: %v", b.Name, b.Addr, err)
			}
		}
		if addrs[b.Addr] {
			bad("backend %s: Addr %q is used by another backend", b.Name, b.Addr)
		}
		addrs[b.Addr] = true
	}
	if !strings.HasPrefix(o.HealthPath, "/") || strings.ContainsAny(o.HealthPath, " \t\r\n\"'\\;{}#") {
		bad("HealthPath %q must be an absolute path without spaces, quotes or config metacharacters", o.HealthPath)
	}
	if o.Interval < 10*time.Millisecond {
		bad("Interval %v is below 10ms", o.Interval)
	}
	if o.Fall < 1 || o.Rise < 1 {
		bad("Fall (%d) and Rise (%d) must be at least 1", o.Fall, o.Rise)
	}
	for _, t := range []struct {
		name string
		d    time.Duration
	}{{"ConnectTimeout", o.ConnectTimeout}, {"ClientTimeout", o.ClientTimeout}, {"ServerTimeout", o.ServerTimeout}, {"HeaderTimeout", o.HeaderTimeout}} {
		if t.d < time.Millisecond {
			bad("%s %v must be at least 1ms", t.name, t.d)
		}
	}
	if o.RequestTimeout < 0 {
		bad("RequestTimeout %v is negative", o.RequestTimeout)
	}
	for _, err := range Unsupported(o.Kind,
		Wanted{"Sticky", FeatSticky, o.Sticky},
		Wanted{"Drain nolb", FeatNOLB, o.Drain == DrainNOLB},
		Wanted{"ShutdownSessions", FeatShutdownSessions, o.ShutdownSessions},
		Wanted{"RequestTimeout", FeatRequestTimeout, o.RequestTimeout > 0},
	) {
		bad("%v", err)
	}
	if o.Drain != DrainDown && o.Drain != DrainNOLB {
		bad("Drain %q: want %q or %q", o.Drain, DrainDown, DrainNOLB)
	}
	if IsAzure(o.Kind) {
		if err := o.Azure.validate(o.Kind); err != nil {
			errs = append(errs, err)
		}
	}
	switch o.Kind {
	case HAProxy, Nginx, NginxDefaults, Caddy, CaddyTimeout, AzureLB, AzureAppGW:
		if o.Dir == "" {
			bad("%s needs Options.Dir for its config, pid/socket and logs", o.Kind)
		}
	}
	if (o.Kind == HAProxy || IsAzure(o.Kind)) && o.Dir != "" {
		// sun_path is 108 bytes including the terminating NUL.
		if p := haproxySocketPath(o.Dir); len(p) > 107 {
			bad("runtime socket path %q is %d bytes; unix sockets allow 107: use a shorter Dir", p, len(p))
		}
	}
	if (o.Kind == Caddy || o.Kind == CaddyTimeout) && o.Dir != "" {
		if p := caddySocketPath(o.Dir); len(p) > 107 {
			bad("admin socket path %q is %d bytes; unix sockets allow 107: use a shorter Dir", p, len(p))
		}
	}
	return errors.Join(errs...)
}

func parsePort(s string, zeroOK bool) (int, error) {
	p, err := strconv.Atoi(s)
	if err != nil || p < 0 || p > 65535 || (p == 0 && !zeroOK) {
		return 0, fmt.Errorf("bad port %q", s)
	}
	return p, nil
}

func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
		default:
			return false
		}
	}
	return true
}

// freeAddr resolves host:0 to host:<a port free right now>. Another process
// could take it before the load balancer binds; on loopback with ephemeral
// ports that race is rare, and Start then fails with a clear bind error.
func freeAddr(listen string) (string, error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return "", fmt.Errorf("lb: pick a free port for %s: %w", listen, err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		return "", fmt.Errorf("lb: pick a free port for %s: %w", listen, err)
	}
	return addr, nil
}

// cfgDuration formats d in units HAProxy and nginx both accept.
func cfgDuration(d time.Duration) string {
	if d%time.Second == 0 {
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	ms := (d + time.Millisecond - 1) / time.Millisecond
	return strconv.FormatInt(int64(ms), 10) + "ms"
}
