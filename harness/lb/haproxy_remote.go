package lb

import (
	"context"
	"fmt"
)

// HAProxyBackend is the backend (proxy) name of the generated HAProxy
// config; servers are addressed as HAProxyBackend/<Backend.Name> in the
// runtime API.
const HAProxyBackend = haproxyBackend

// HAProxyConfigOptions is what differs when HAProxy runs somewhere the
// haproxy driver does not start it (a container, docker compose).
type HAProxyConfigOptions struct {
	// StatsSocket is the runtime API's `stats socket` address and any
	// bind options, e.g. "/var/lib/haproxy/admin.sock mode 600" (the
	// docker provider's; read the reply with HAProxyStatesFrom). A TCP
	// address gives `level admin` to whoever reaches it: keep it off any
	// port other local users can reach. Empty: the driver's unix socket in
	// Options.Dir.
	StatsSocket string
	// Resolver is a DNS server, host:port, that HAProxy asks again at run
	// time for backend host names, e.g. Docker's embedded DNS at
	// 127.0.0.11:53, so a container that comes back with a new address is
	// found again. Empty: names are resolved once, at start.
	Resolver string
	// SharedAddress lets several servers resolve to one address (HAProxy
	// otherwise puts all but one in MAINT): every backend behind one
	// proxy, e.g. Toxiproxy on its own ports.
	SharedAddress bool
}

// HAProxyConfig renders the HAProxy configuration the haproxy driver uses
// for o (same checks, timeouts, drain and stickiness), with the runtime API
// and name resolution of x. Options.Dir is needed only for the default
// stats socket; Listen may be an all-interfaces address such as
// 0.0.0.0:8080 inside a container.
func HAProxyConfig(o Options, x HAProxyConfigOptions) (string, error) {
	o.Kind = HAProxy
	if o.Dir == "" && x.StatsSocket != "" {
		// Only the default socket path uses Dir; validation wants one.
		o.Dir = "/run/haproxy"
	}
	o, err := o.withDefaults()
	if err != nil {
		return "", err
	}
	return renderHAProxyConfig(o, x), nil
}

// HAProxyCommand sends one runtime API command to an HAProxy whose stats
// socket is at addr on network ("unix": a socket path; "tcp": host:port)
// and returns the reply.
func HAProxyCommand(ctx context.Context, network, addr, cmd string) (string, error) {
	return runtimeCommandAt(ctx, network, addr, cmd)
}

// HAProxyStates reads `show stat` from the runtime API at network/addr (as
// HAProxyCommand) and returns the named servers of HAProxyBackend in the
// order given; a name HAProxy does not list is UNKNOWN.
func HAProxyStates(ctx context.Context, network, addr string, names []string) ([]ServerState, error) {
	out, err := runtimeCommandAt(ctx, network, addr, "show stat")
	if err != nil {
		return nil, fmt.Errorf("haproxy states: %w", err)
	}
	return HAProxyStatesFrom(out, names)
}

// HAProxyStatesFrom is HAProxyStates on a `show stat` reply read some
// other way (e.g. through `docker exec` when the runtime API is a unix
// socket inside a container).
func HAProxyStatesFrom(out string, names []string) ([]ServerState, error) {
	byName, err := parseShowStat(out, haproxyBackend)
	if err != nil {
		return nil, fmt.Errorf("haproxy states: %w", err)
	}
	states := make([]ServerState, 0, len(names))
	for _, n := range names {
		s, ok := byName[n]
		if !ok {
			s = ServerState{Name: n, State: StateUnknown, Detail: "not in haproxy show stat"}
		}
		states = append(states, s)
	}
	return states, nil
}
