package lb

import (
	"errors"
	"fmt"
	"time"
)

// Azure's load balancers, modelled on a real HAProxy (lb.md §1) plus what
// HAProxy cannot do, emulated in octoha's process in front of it:
//
//   - AzureLB (Azure Load Balancer Standard, L4): HAProxy `mode tcp` with an
//     HTTP probe, behind a TCP relay that drops idle flows silently (see
//     idleRelay) and hands HAProxy the client's address by the PROXY
//     protocol, so client-IP affinity sees the real client.
//   - AzureAppGW (Application Gateway v2, L7): HAProxy `mode http`, behind
//     an HTTP front (see gatewayFront) that enforces the backend request
//     timeout and the WAF's size limits, which HAProxy's inactivity timers
//     and 32-bit Content-Length checks cannot (lb.md §1).
//
// Every default below is Azure's, with the page it comes from
// (shared/reference/azure.md; docs/azure.md).
const (
	AzureLB    Kind = "azure-lb"
	AzureAppGW Kind = "azure-appgw"
)

// Affinity is an Azure session-persistence mode.
type Affinity string

const (
	AffinityNone     Affinity = "none"
	AffinityClientIP Affinity = "clientip" // Azure LB: client IP (2-tuple); never a cookie
	AffinityCookie   Affinity = "cookie"   // Application Gateway: ApplicationGatewayAffinity
)

// AppGWCookie is Application Gateway's affinity cookie
// (azure-docs articles/application-gateway/configuration-http-settings.md).
const AppGWCookie = "ApplicationGatewayAffinity"

// Azure Load Balancer defaults. Source: azure-docs
// articles/load-balancer/load-balancer-custom-probe-overview.md and
// load-balancer-tcp-idle-timeout.md.
const (
	// AzureLBProbeInterval: the overview's default, 5 s. The REST API's
	// intervalInSeconds defaults to 15 s with a 5 s minimum (the sources
	// disagree, so it is a setting).
	AzureLBProbeInterval    = 5 * time.Second
	AzureLBAPIProbeInterval = 15 * time.Second
	AzureLBMinProbeInterval = 5 * time.Second
	// AzureLBProbeThreshold: probeThreshold, consecutive results to change
	// state either way (ProbePropertiesFormat); the portal's default is 1.
	AzureLBProbeThreshold = 1
	// AzureLBProbeTimeout: an HTTP probe that gets no answer in 30 s fails.
	AzureLBProbeTimeout = 30 * time.Second
	// AzureLBIdleTimeout: 4 min by default (4–100 min); the idle flow is
	// dropped silently unless "TCP reset on idle" is enabled.
	AzureLBIdleTimeout = 4 * time.Minute
)

// Application Gateway v2 defaults. Sources: azure-docs
// articles/application-gateway/application-gateway-probe-overview.md,
// configuration-http-settings.md,
// web-application-firewall/ag/application-gateway-waf-request-size-limits.md.
const (
	// AppGWProbeInterval, AppGWProbeTimeout, AppGWProbeThreshold: the
	// default probe, every 30 s, 30 s timeout, unhealthy after 3 failures;
	// healthy on 200–399.
	AppGWProbeInterval  = 30 * time.Second
	AppGWProbeTimeout   = 30 * time.Second
	AppGWProbeThreshold = 3
	// AppGWRequestTimeout: the backend setting's request timeout, 20 s by
	// default (1–86400 s): how long the gateway waits for the backend's
	// response.
	AppGWRequestTimeout = 20 * time.Second
	// AppGWDrainTimeout: connection draining off → 30 s; on → 1–3600 s.
	AppGWDrainTimeout = 30 * time.Second
	// AppGWWAFRequestBodyLimit: the WAF's request body limit, 128 KB by
	// default (bodies without a file).
	AppGWWAFRequestBodyLimit = 128 << 10
	// AppGWWAFFileUploadLimit: the WAF's file upload limit, 100 MB by
	// default, for multipart bodies with a filename (Octopus's raw upload).
	AppGWWAFFileUploadLimit = 100 << 20
)

// Azure configures the azure-lb and azure-appgw kinds. Zero values take
// the kind's Azure default.
type Azure struct {
	ProbeInterval  time.Duration // azure-lb 5s (min 5s unless Scaled); azure-appgw 30s
	ProbeThreshold int           // azure-lb 1; azure-appgw 3 (unhealthy threshold)
	ProbeTimeout   time.Duration // 30s for both
	IdleTimeout    time.Duration // azure-lb: 4m, silent drop
	RequestTimeout time.Duration // azure-appgw: 20s backend request timeout
	DrainTimeout   time.Duration // azure-appgw: 30s
	// WAF turns the Application Gateway's WAF size limits on.
	WAF                 bool
	WAFRequestBodyLimit int64 // 128 KiB
	WAFFileUploadLimit  int64 // 100 MiB
	Affinity            Affinity
	// Scaled lets timings go below Azure's minimums, for scenarios that
	// scale Azure's figures down so CI stays fast.
	Scaled bool
}

// IsAzure reports whether k is one of the Azure kinds.
func IsAzure(k Kind) bool { return k == AzureLB || k == AzureAppGW }

// AzureDefaults returns Azure's defaults for kind k.
func AzureDefaults(k Kind) Azure {
	if k == AzureAppGW {
		return Azure{ProbeInterval: AppGWProbeInterval, ProbeThreshold: AppGWProbeThreshold, ProbeTimeout: AppGWProbeTimeout,
			RequestTimeout: AppGWRequestTimeout, DrainTimeout: AppGWDrainTimeout,
			WAFRequestBodyLimit: AppGWWAFRequestBodyLimit, WAFFileUploadLimit: AppGWWAFFileUploadLimit, Affinity: AffinityNone}
	}
	return Azure{ProbeInterval: AzureLBProbeInterval, ProbeThreshold: AzureLBProbeThreshold, ProbeTimeout: AzureLBProbeTimeout,
		IdleTimeout: AzureLBIdleTimeout, Affinity: AffinityNone}
}

// withDefaults fills zero fields with kind k's defaults.
func (a Azure) withDefaults(k Kind) Azure {
	d := AzureDefaults(k)
	setDur := func(v *time.Duration, def time.Duration) {
		if *v == 0 {
			*v = def
		}
	}
	setDur(&a.ProbeInterval, d.ProbeInterval)
	setDur(&a.ProbeTimeout, d.ProbeTimeout)
	setDur(&a.IdleTimeout, d.IdleTimeout)
	setDur(&a.RequestTimeout, d.RequestTimeout)
	setDur(&a.DrainTimeout, d.DrainTimeout)
	if a.ProbeThreshold == 0 {
		a.ProbeThreshold = d.ProbeThreshold
	}
	if a.WAFRequestBodyLimit == 0 {
		a.WAFRequestBodyLimit = d.WAFRequestBodyLimit
	}
	if a.WAFFileUploadLimit == 0 {
		a.WAFFileUploadLimit = d.WAFFileUploadLimit
	}
	if a.Affinity == "" {
		a.Affinity = AffinityNone
	}
	return a
}

// ProbeBound is the longest a failing node keeps new traffic: threshold
// probes, each up to an interval apart (Azure's "interval × threshold").
func (a Azure) ProbeBound() time.Duration {
	return time.Duration(a.ProbeThreshold) * a.ProbeInterval
}

func (a Azure) validate(k Kind) error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("lb: azure: "+format, args...)) }
	if !a.Scaled && k == AzureLB && a.ProbeInterval < AzureLBMinProbeInterval {
		bad("probeInterval %v is below Azure's 5s minimum (set Scaled to scale Azure's figures down)", a.ProbeInterval)
	}
	if a.ProbeInterval < 10*time.Millisecond || a.ProbeTimeout < 10*time.Millisecond {
		bad("probeInterval %v and probeTimeout %v must be at least 10ms", a.ProbeInterval, a.ProbeTimeout)
	}
	if a.ProbeThreshold < 1 {
		bad("probeThreshold %d must be at least 1", a.ProbeThreshold)
	}
	switch k {
	case AzureLB:
		if !a.Scaled && (a.IdleTimeout < 4*time.Minute || a.IdleTimeout > 100*time.Minute) {
			bad("idleTimeout %v: Azure allows 4–100 min (set Scaled to scale it down)", a.IdleTimeout)
		}
		if a.IdleTimeout < 100*time.Millisecond {
			bad("idleTimeout %v must be at least 100ms", a.IdleTimeout)
		}
		if a.Affinity != AffinityNone && a.Affinity != AffinityClientIP {
			bad("affinity %q: Azure Load Balancer persists sessions by client IP or not at all (want none or clientip)", a.Affinity)
		}
		if a.WAF {
			bad("waf: Azure Load Balancer has no WAF (use azure-appgw)")
		}
	case AzureAppGW:
		if !a.Scaled && (a.RequestTimeout < time.Second || a.RequestTimeout > 86400*time.Second) {
			bad("requestTimeout %v: Azure allows 1–86400 s", a.RequestTimeout)
		}
		if a.RequestTimeout < 10*time.Millisecond || a.DrainTimeout < 0 {
			bad("requestTimeout %v must be at least 10ms and drainTimeout %v not negative", a.RequestTimeout, a.DrainTimeout)
		}
		if a.Affinity != AffinityNone && a.Affinity != AffinityCookie {
			bad("affinity %q: Application Gateway persists sessions by its cookie %s (want none or cookie)", a.Affinity, AppGWCookie)
		}
		if a.WAFRequestBodyLimit < 1 || a.WAFFileUploadLimit < 1 {
			bad("wafRequestBodyLimit and wafFileUploadLimit must be positive")
		}
	}
	return errors.Join(errs...)
}

// ValidateAzure checks a's figures (zero: Azure's defaults) for kind k.
func ValidateAzure(k Kind, a Azure) error { return a.withDefaults(k).validate(k) }

// WithDefaults returns a with kind k's Azure defaults in its zero fields.
func (a Azure) WithDefaults(k Kind) Azure { return a.withDefaults(k) }
