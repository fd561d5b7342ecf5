package cluster

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Capability is something a scenario may need from a cluster: a fault it
// injects, or a way it observes or shapes the cluster. Whether a cluster
// has one, and if not why, is answered here and only here (Can), so the
// nemesis, the runner and `octoha chaos --list` always agree.
type Capability string

// Faults, named as the nemesis records them in histories.
const (
	CapKill        Capability = "kill"
	CapPause       Capability = "pause"
	CapRestart     Capability = "restart"
	CapDrain       Capability = "drain"
	CapDBOutage    Capability = "db-outage"
	CapShareOutage Capability = "share-outage"
	CapPartition   Capability = "partition"
	// CapDBFailover: the database is a failover group (primary, standby,
	// one listener) that can fail over, planned or forced, and go through
	// an Azure SQL-style reconfiguration.
	CapDBFailover Capability = "db-failover"
	// CapNetwork: the cluster's links go through Toxiproxy, so latency,
	// bandwidth, black holes, resets and cuts can be injected on them.
	CapNetwork Capability = "network"
)

// Observations and shapes.
const (
	// CapLBView: the load balancer tells the harness each node's state.
	CapLBView Capability = "lb-view"
	// CapFileListing: the harness can list the Packages store (for the
	// no-leftovers check).
	CapFileListing Capability = "file-listing"
	// CapSimulated: the scenario chooses the cluster's shape (its size, its
	// load balancer, deliberately broken nodes): only a simulated cluster.
	CapSimulated Capability = "simulated"
)

// faultCaps are the capabilities that are faults.
var faultCaps = []Capability{CapKill, CapPause, CapRestart, CapDrain, CapDBOutage, CapShareOutage, CapPartition, CapNetwork, CapDBFailover}

// knownCaps is every capability this version knows.
var knownCaps = append(slices.Clone(faultCaps), CapLBView, CapFileListing, CapSimulated)

// nonDestructive are the capabilities that change nothing a real cluster's
// operator would have to repair: observations, and the drain, which is an
// API call an operator makes every day and is undone by another.
var nonDestructive = []Capability{CapDrain, CapLBView, CapFileListing}

// ErrUnknownCapability is wrapped by Can for a name this version does not
// know; such a capability is treated as destructive and refused.
var ErrUnknownCapability = errors.New("unknown capability")

// Known reports whether this version knows cp.
func Known(cp Capability) bool { return slices.Contains(knownCaps, cp) }

// IsFault reports whether cp is a fault.
func IsFault(cp Capability) bool { return slices.Contains(faultCaps, cp) }

// Destructive reports whether cp may harm a real cluster: every fault but
// the drain, the simulated-only shapes, and anything unknown.
func Destructive(cp Capability) bool { return !slices.Contains(nonDestructive, cp) }

// Capabilities lists every capability this version knows, faults first.
func Capabilities() []Capability { return slices.Clone(knownCaps) }

// ParseCapability reads a capability (or fault) name.
func ParseCapability(s string) (Capability, error) {
	cp := Capability(strings.TrimSpace(s))
	if !Known(cp) {
		names := make([]string, len(knownCaps))
		for i, k := range knownCaps {
			names[i] = string(k)
		}
		return "", fmt.Errorf("%w %q (want one of %s)", ErrUnknownCapability, s, strings.Join(names, ", "))
	}
	return cp, nil
}

// Capable is implemented by every provider's Cluster: Can returns nil when
// the cluster has cp, or an error saying why not (e.g. "the database is
// sqlite (embedded): …"). Providers are asked only about known
// capabilities.
type Capable interface {
	Can(cp Capability) error
}

// Can says whether c has cp and, if not, why. An unknown capability, or a
// cluster that does not declare its capabilities, is refused: a fault this
// version cannot reason about is assumed destructive.
func Can(c Cluster, cp Capability) error {
	if !Known(cp) {
		return fmt.Errorf("%w %q: refused (an unknown fault is treated as destructive)", ErrUnknownCapability, cp)
	}
	cc, ok := c.(Capable)
	if !ok {
		return fmt.Errorf("the %s provider does not declare what it can do: %s refused", c.Spec().Provider, cp)
	}
	return cc.Can(cp)
}

// CanAll checks every capability and joins the reasons of those missing.
func CanAll(c Cluster, cps ...Capability) error {
	var errs []error
	for _, cp := range cps {
		if err := Can(c, cp); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
