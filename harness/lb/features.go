package lb

import "fmt"

// Feature is something a load-balancer kind may or may not do. The one
// table below answers for spec validation (harness/cluster), the drivers'
// Options and the providers' Can.
type Feature string

const (
	// FeatSticky: cookie stickiness with the SRV=<node> contract.
	FeatSticky Feature = "sticky"
	// FeatNOLB: a 418 taken as NOLB, a drain that keeps pinned sessions.
	FeatNOLB Feature = "drain nolb"
	// FeatShutdownSessions: cutting an unhealthy server's open requests.
	FeatShutdownSessions Feature = "shutdownSessions"
	// FeatRequestTimeout: a total request read limit (lb.requestTimeout).
	FeatRequestTimeout Feature = "requestTimeout"
	// FeatStateView: the balancer tells each server's state (UP, DOWN, …).
	FeatStateView Feature = "state view"
)

var (
	nginxLacks = map[Feature]string{
		FeatSticky:           "nginx OSS has no `sticky` directive (lb.md §2): use haproxy or embedded",
		FeatNOLB:             "it needs active health checks, which nginx OSS lacks (lb.md §2): use haproxy or embedded",
		FeatShutdownSessions: "it needs active health checks, which nginx OSS lacks: use haproxy",
		FeatRequestTimeout:   "nginx has no total request timeout (its timeouts are inactivity timers); only caddy-timeout and embedded have one",
		FeatStateView:        "nginx OSS has passive checks only and shows no server state",
	}
	caddyLacks = map[Feature]string{
		// Caddy's cookie policy pins to a hash of the upstream address and
		// falls back at random: not the SRV=<node> contract of the others.
		FeatSticky:           "Caddy's lb_policy cookie pins to a hash of the address, not " + CookieName + "=<node>: use haproxy or embedded",
		FeatNOLB:             "Caddy has no drain state (a failed check takes the upstream out): use haproxy or embedded",
		FeatShutdownSessions: "Caddy does not cut an unhealthy upstream's requests: use haproxy",
		FeatRequestTimeout:   "the caddy profile is the one without a total request timeout: use caddy-timeout (only caddy-timeout and embedded have one)",
	}
	azureLacks = map[Feature]string{
		FeatSticky:           "it persists sessions by its own affinity setting (lb.azure.affinity)",
		FeatNOLB:             "it models Azure's probe (only a healthy answer passes): drain nolb is an HAProxy setting",
		FeatShutdownSessions: "flows continue after the probe marks a server down, as in Azure: shutdownSessions is an HAProxy setting",
		FeatRequestTimeout:   "its request timeout is lb.azure.requestTimeout",
	}
	// lacks lists, for each kind, the features it lacks and why.
	lacks = map[Kind]map[Feature]string{
		HAProxy:       {FeatRequestTimeout: "HAProxy has no total request timeout (its timeouts are inactivity timers); only caddy-timeout and embedded have one"},
		Nginx:         nginxLacks,
		NginxDefaults: nginxLacks,
		Caddy:         caddyLacks,
		CaddyTimeout:  without(caddyLacks, FeatRequestTimeout),
		Embedded:      {},
		AzureLB:       azureLacks,
		AzureAppGW:    azureLacks,
	}
)

func without(m map[Feature]string, f Feature) map[Feature]string {
	out := map[Feature]string{}
	for k, v := range m {
		if k != f {
			out[k] = v
		}
	}
	return out
}

// Supports returns nil when kind has the feature, and otherwise why not.
func Supports(kind Kind, f Feature) error {
	m, ok := lacks[kind]
	if !ok {
		return fmt.Errorf("%s: unknown load balancer kind", kind)
	}
	if why, lacking := m[f]; lacking {
		return fmt.Errorf("%s cannot: %s", kind, why)
	}
	return nil
}

// Wanted is one feature a configuration asks for, under the name its
// setting has there (lb.sticky, Sticky, …).
type Wanted struct {
	Setting string
	Feature Feature
	On      bool
}

// Unsupported returns one error per feature switched on in want that kind
// lacks, each naming the setting.
func Unsupported(kind Kind, want ...Wanted) []error {
	var errs []error
	for _, w := range want {
		if !w.On {
			continue
		}
		if err := Supports(kind, w.Feature); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", w.Setting, err))
		}
	}
	return errs
}
