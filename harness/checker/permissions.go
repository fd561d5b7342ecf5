package checker

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/octoha/octoha/harness/history"
)

// KindRevoke is the op that revoked the permission the probes exercise.
const KindRevoke = "revoke"

// FindingFlips names sessions that saw a revoked permission come back:
// allowed, denied, then allowed again. Its figure counts those flips.
var FindingFlips = Finding{"flips", "a session flip-flopped between allowed and denied after a permission change: each node caches permissions and only the node the change was made through invalidates its cache (the seed); pin sessions to a node (cookie stickiness) or wait for the cache to expire"}

// PermissionOptions says what the cluster promises after a revoke.
type PermissionOptions struct {
	// ProbeKind is the kind of the permission-gated ops (e.g.
	// traffic.KindPushProbe); allowed answers are 200/201, denied 403.
	ProbeKind string
	// Monotonic: once a session is denied it stays denied (stickiness).
	Monotonic bool
	// NoStale: no probe started after the revoke ended is allowed (a
	// cluster-wide invalidation).
	NoStale bool
	// ExpireWithin bounds the stale window: every session is denied from
	// the revoke's end + ExpireWithin on (the cache's TTL plus slack).
	ExpireWithin time.Duration
}

// Permissions checks what sessions saw after a permission was revoked:
// per session (op Client), in start order, the answers of probes started
// after the revoke op ended. It reports the stale window (revoke end to
// the last allowed answer), the flips and the stale answers, and fails
// where the options' promises do not hold.
func Permissions(h *history.History, o PermissionOptions) Result {
	r := Result{Name: "permissions"}
	var ev evidence
	var revoke *history.Op
	for i := range h.Ops {
		if h.Ops[i].Kind == KindRevoke && h.Ops[i].Outcome == history.OK {
			revoke = &h.Ops[i]
		}
	}
	if revoke == nil {
		r.Status, r.Summary = Fail, "the history holds no successful revoke: nothing to judge"
		return r
	}
	clk := newClock(h)
	sessions := map[string][]history.Op{}
	before := 0
	for _, op := range h.Ops {
		if op.Kind != o.ProbeKind || op.Outcome != history.OK {
			continue
		}
		if op.Start.Before(revoke.End) {
			if op.Status != http.StatusForbidden {
				before++
			}
			continue
		}
		sessions[op.Client] = append(sessions[op.Client], op)
	}
	names := make([]string, 0, len(sessions))
	for n := range sessions {
		names = append(names, n)
	}
	sort.Strings(names)
	var flips, stale, probes, neverDenied, late int
	var window time.Duration
	for _, name := range names {
		ops := sessions[name]
		sort.Slice(ops, func(i, j int) bool { return ops[i].Start.Before(ops[j].Start) })
		denied, sFlips, sStale := false, 0, 0
		var lastAllowed history.Op
		nodes := map[string]bool{}
		for _, op := range ops {
			probes++
			nodes[op.Node] = true
			allowed := op.Status != http.StatusForbidden
			if allowed {
				sStale++
				lastAllowed = op
				if denied {
					sFlips++
					if sFlips <= 3 {
						ev.problem("%s: allowed again by %s at %s (%s) after being denied", name, op.Node, clk.at(op.Start), op.Note)
					}
				}
			}
			denied = denied || !allowed
		}
		flips += sFlips
		stale += sStale
		var sw time.Duration
		if sStale > 0 {
			sw = lastAllowed.End.Sub(revoke.End)
			window = max(window, sw)
		}
		if o.ExpireWithin > 0 && sStale > 0 && lastAllowed.Start.After(revoke.End.Add(o.ExpireWithin)) {
			late++
			ev.problem("%s: still allowed by %s at %s, %s after the revoke (bound %s)", name, lastAllowed.Node, clk.at(lastAllowed.Start), fmtDur(sw), fmtDur(o.ExpireWithin))
		}
		if len(ops) > 0 && ops[len(ops)-1].Status != http.StatusForbidden {
			neverDenied++
			ev.problem("%s: its last probe (%s, %s) was still allowed: the cache never expired in this run", name, ops[len(ops)-1].Node, clk.at(ops[len(ops)-1].Start))
		}
		ev.note("%s: %d probes after the revoke via %s, %d allowed (stale window %s), %d flips", name, len(ops), strings.Join(keys(nodes), ", "), sStale, fmtDur(sw), sFlips)
	}
	r.Figures = []Figure{
		{Name: "sessions", Value: float64(len(names)), Unit: "count"},
		{Name: "probes-after-revoke", Value: float64(probes), Unit: "requests"},
		{Name: "allowed-before-revoke", Value: float64(before), Unit: "requests"},
		{Name: "stale-answers", Value: float64(stale), Unit: "requests"},
		{Name: "stale-window", Value: window.Seconds(), Unit: "s"},
		{Name: FindingFlips.Name, Value: float64(flips), Unit: "count"},
	}
	var fails []string
	if before == 0 {
		fails = append(fails, "no probe was allowed before the revoke (the grant never took effect, or nothing probed)")
	}
	if probes == 0 {
		fails = append(fails, "no probe was answered after the revoke")
	}
	if o.Monotonic && flips > 0 {
		fails = append(fails, fmt.Sprintf("%d flips from denied back to allowed: cause %s", flips, FindingFlips.Explanation))
	}
	if o.NoStale && stale > 0 {
		fails = append(fails, fmt.Sprintf("%d answers still allowed after the revoke (stale window %s), where every node should see the change at once", stale, fmtDur(window)))
	}
	if late > 0 || neverDenied > 0 {
		fails = append(fails, fmt.Sprintf("%d sessions allowed past the bound of %s, %d never denied", late, fmtDur(o.ExpireWithin), neverDenied))
	}
	seen := fmt.Sprintf("%d sessions, %d probes after the revoke: stale window %s, %d stale answers, %d flips", len(names), probes, fmtDur(window), stale, flips)
	if len(fails) > 0 {
		r.Status, r.Summary = Fail, seen+"; "+strings.Join(fails, "; ")
	} else {
		r.Status, r.Summary = Pass, seen
	}
	r.Evidence = ev.lines()
	return r
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
