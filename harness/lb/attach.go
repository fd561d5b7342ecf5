package lb

import (
	"context"
	"fmt"
)

// ReadStates reads each named server's state from a load balancer that
// another process started in dir (e.g. `octoha status` on a detached
// cluster). HAProxy is read from its runtime socket in dir, Caddy from the
// health events in its log in dir; nginx OSS keeps
// no health state, and the embedded proxy lives inside its owner, so both
// report UNKNOWN with the reason.
func ReadStates(ctx context.Context, kind Kind, dir string, names []string) ([]ServerState, error) {
	unknown := func(detail string) []ServerState {
		out := make([]ServerState, len(names))
		for i, n := range names {
			out[i] = ServerState{Name: n, State: StateUnknown, Detail: detail}
		}
		return out
	}
	switch kind {
	case HAProxy, AzureLB, AzureAppGW: // the Azure kinds' HAProxy keeps its socket in dir too
		return HAProxyStates(ctx, "unix", haproxySocketPath(dir), names)
	case Nginx, NginxDefaults:
		return unknown(nginxPassiveDetail), nil
	case Caddy, CaddyTimeout:
		return readCaddyStates(dir, names)
	case Embedded:
		return unknown("embedded proxy: state is only visible inside the process that runs it"), nil
	}
	return nil, fmt.Errorf("lb: unknown load balancer kind %q", kind)
}
