package checker

import (
	"fmt"
	"sort"
	"strings"

	"github.com/octoha/octoha/harness/history"
)

// FindingMixedOS names the cause of downloads that fail on nodes of
// another operating system than the node that stored the package. Its
// figure counts those downloads.
var FindingMixedOS = Finding{"mixed-os", "mixed operating systems: Windows and Linux-container nodes in one cluster — each records BLOB paths (packages, task logs, artifacts) in its own form, which the other cannot resolve; the seed: \"It has to be either all Windows or all containers\""}

// Downloads checks that every package an upload acknowledged downloads
// through every live node (and the load balancer), and names the cause when
// it does not: when the failing reads are exactly those by nodes whose
// operating system differs from that of the node that stored the package,
// the cause is mixed operating systems. nodeOS maps node names to linux or
// windows as the cluster's description gives them (Octopus's API does not
// expose a node's OS). Only packages the snapshot downloaded count.
func Downloads(h *history.History, s *Snapshot, nodeOS map[string]string) Result {
	r := Result{Name: "downloads"}
	var ev evidence
	if s == nil {
		r.Status, r.Summary = Fail, "no snapshot to read downloads from"
		return r
	}
	storedBy := map[PackageKey]string{}
	for _, o := range h.Ops {
		if o.Kind == history.KindUpload && o.Outcome == history.OK && o.Node != "" {
			storedBy[PackageKey{o.PackageID, o.Version}] = o.Node // the last acknowledged write
		}
	}
	var ok, mixed, other, cross int
	for _, p := range s.Packages {
		by := storedBy[p.PackageKey]
		for _, v := range p.Views {
			reader := v.Via
			if v.Via == ViaLB {
				reader = v.BodyNode
			}
			sameOS := nodeOS[by] == "" || nodeOS[reader] == "" || nodeOS[by] == nodeOS[reader]
			switch {
			case v.Downloaded:
				ok++
				if !sameOS {
					cross++
				}
			case !strings.HasPrefix(v.Error, "download:"):
				// Metadata only (large package) or unreadable for another
				// reason: durability judges those.
			case !sameOS:
				mixed++
				ev.problem("%s stored through %s (%s) does not download through %s (%s, via %s): %s", p.PackageKey, by, nodeOS[by], reader, nodeOS[reader], v.Via, v.Error)
			default:
				other++
				ev.problem("%s stored through %s does not download via %s: %s", p.PackageKey, orUnknown(by), v.Via, v.Error)
			}
		}
	}
	counts := map[string]int{}
	for _, os := range nodeOS {
		counts[os]++
	}
	oses := make([]string, 0, len(counts))
	for os, n := range counts {
		oses = append(oses, fmt.Sprintf("%d %s", n, os))
		r.Figures = append(r.Figures, Figure{Name: os + "-nodes", Value: float64(n), Unit: "nodes"})
	}
	sort.Strings(oses)
	sort.Slice(r.Figures, func(i, j int) bool { return r.Figures[i].Name < r.Figures[j].Name })
	r.Figures = append(r.Figures,
		Figure{Name: "downloads-ok", Value: float64(ok), Unit: "requests"},
		Figure{Name: "downloads-failed", Value: float64(mixed + other), Unit: "requests"},
		Figure{Name: FindingMixedOS.Name, Value: float64(mixed), Unit: "requests"})
	ev.note("nodes: %s", strings.Join(oses, ", "))
	switch {
	case mixed+other == 0 && ok == 0:
		r.Status, r.Summary = Skip, "no package was downloaded through the nodes (none acknowledged, or all larger than the deep-read limit)"
	case mixed > 0:
		r.Status = Fail
		r.Summary = fmt.Sprintf("%d of %d downloads failed, %d of them through nodes of another OS than the one that stored the package: cause %s", mixed+other, ok+mixed+other, mixed, FindingMixedOS.Explanation)
	case other > 0:
		r.Status = Fail
		r.Summary = fmt.Sprintf("%d of %d downloads failed (not explained by the nodes' operating systems)", other, ok+other)
	default:
		r.Status = Pass
		r.Summary = fmt.Sprintf("all %d downloads succeeded (%d across operating systems)", ok, cross)
	}
	r.Evidence = ev.lines()
	return r
}

func orUnknown(s string) string {
	if s == "" {
		return "an unknown node"
	}
	return s
}
