package checker

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/octoha/octoha/harness/history"
)

// ConvergenceOptions bounds how fast the load balancer must react. Zero
// bounds are not checked; the times are reported either way.
type ConvergenceOptions struct {
	// EjectWithin: the LB must stop sending a faulted node new requests
	// (and, when its state is sampled, mark it not UP) within this long of
	// the fault's start.
	EjectWithin time.Duration
	// RejoinWithin: the node must serve requests again (and be sampled UP)
	// within this long of the fault's end. With a bound, a node that never
	// gets traffic back fails.
	RejoinWithin time.Duration
	// Nodes names nodes besides those the history shows (ops' serving
	// nodes, LB samples), so that a fault on a node that never served is
	// still recognised as a node fault.
	Nodes []string
}

// IsUp reports whether a load-balancer state means the server takes new
// requests: HAProxy's "UP" and "UP 1/3" (up, failing checks) and "no check";
// everything else ("DOWN", "DOWN 1/2", "NOLB", "DRAIN", "MAINT") does not.
// Convergence ignores "UNKNOWN" samples (the LB could not be asked).
func IsUp(state string) bool {
	s := strings.ToUpper(strings.TrimSpace(state))
	return strings.HasPrefix(s, "UP") || s == "NO CHECK"
}

// Convergence measures, for every fault whose target is a node and that is
// meant to take it out of the load balancer (Ejecting), how long the load
// balancer took to eject and to readmit it, from two sources:
//
//   - requests: ejection is the time from the fault's start to the start of
//     the last request routed through the LB (Via "lb" or unset) that the
//     node served (its X-Octoha-Node) and that started after the fault
//     started, i.e. when the LB stopped sending it new work; rejoin is the
//     time from the fault's end to the start of the first request it served
//     again. Ops sent straight to the node are ignored.
//   - the LB's own view (LBState samples): ejection is the first non-UP
//     sample after the fault's start, rejoin the first UP sample after the
//     fault's end.
//
// A node that never served again is reported "not rejoined"; that fails only
// with a RejoinWithin bound. A measured time over a bound fails, and so does
// a bound that cannot be measured at all.
func Convergence(h *history.History, opts ConvergenceOptions) Result {
	r := Result{Name: "convergence"}
	var ev evidence
	clk := newClock(h)
	names := nodeNames(h)
	for _, n := range opts.Nodes {
		names[n] = true
	}
	_, histEnd := h.Span()

	served := map[string][]history.Op{}
	for _, o := range h.Ops {
		if o.Node != "" && viaLB(o) {
			served[o.Node] = append(served[o.Node], o)
		}
	}
	for _, ops := range served {
		sort.SliceStable(ops, func(i, j int) bool { return ops[i].Start.Before(ops[j].Start) })
	}
	samples := map[string][]history.LBState{}
	for _, s := range h.LB {
		// An UNKNOWN sample (the LB could not be asked) says nothing.
		if st := strings.ToUpper(strings.TrimSpace(s.State)); st != "" && st != "UNKNOWN" {
			samples[s.Server] = append(samples[s.Server], s)
		}
	}

	var (
		nodeFaults, notRejoined int
		notJudged               int // node faults not meant to eject
		ejectMax, rejoinMax     time.Duration
		ejectMeasured           bool
		rejoinMeasured          bool
		failures                []string
	)
	for fi, f := range h.Faults {
		if !names[f.Target] {
			ev.note("fault %s (%s on %q) is not a node fault", f.ID, f.Kind, f.Target)
			continue
		}
		if !Ejecting(f) {
			notJudged++
			ev.note("fault %s (%s on %s) is not meant to take the node out of the load balancer", f.ID, faultSpec(f), f.Target)
			continue
		}
		nodeFaults++
		id := faultName(f, fi)
		label := fmt.Sprintf("%s (%s on %s, %s → %s)", id, f.Kind, f.Target, clk.at(f.Start), endLabel(clk, f))
		// The window ends at recovery, or at the next fault on the same node.
		windowEnd := f.End
		next := histEnd.Add(time.Nanosecond)
		for _, g := range h.Faults[fi+1:] {
			if g.Target == f.Target && g.Start.After(f.Start) {
				next = g.Start
				break
			}
		}
		if windowEnd.IsZero() || windowEnd.After(next) {
			windowEnd = next
		}
		ops := served[f.Target]

		// Ejection by requests.
		var before, during int
		var lastDuring history.Op
		for _, o := range ops {
			switch {
			case o.Start.Before(f.Start):
				before++
			case o.Start.Before(windowEnd):
				during++
				lastDuring = o
			}
		}
		ejectReq, ejectReqOK := time.Duration(0), false
		switch {
		case during > 0:
			ejectReq, ejectReqOK = lastDuring.Start.Sub(f.Start), true
			ev.note("%s: served %s through the LB during the fault, the last starting at %s (%s)", label, plural(during, "request", "requests"), clk.at(lastDuring.Start), opLabel(lastDuring))
		case before > 0:
			ejectReqOK = true
			ev.note("%s: served no request through the LB that started after the fault started (%d before)", label, before)
		default:
			ev.note("%s: served no request through the LB before the fault, so ejection by requests cannot be measured", label)
		}
		if ejectReqOK {
			r.Figures = append(r.Figures, Figure{id + ".eject-requests", secs(ejectReq), "s"})
			r.Figures = append(r.Figures, Figure{id + ".served-during", float64(during), "requests"})
		}

		// Ejection by the LB's view.
		ss := samples[f.Target]
		ejectLB, ejectLBOK := time.Duration(0), false
		var outAt time.Time
		if len(ss) == 0 {
			ev.note("%s: no load-balancer state samples for %s", label, f.Target)
		} else if st, ok := stateAt(ss, f.Start); ok && !IsUp(st.State) {
			ejectLBOK, outAt = true, f.Start
			ev.note("%s: LB already had %s %s at the fault's start", label, f.Target, st.State)
		} else {
			for _, s := range ss {
				if !s.Time.Before(f.Start) && s.Time.Before(next) && !IsUp(s.State) {
					ejectLB, ejectLBOK, outAt = s.Time.Sub(f.Start), true, s.Time
					ev.note("%s: LB marked %s %s at %s", label, f.Target, s.State, clk.at(s.Time))
					break
				}
			}
			if !ejectLBOK {
				ev.note("%s: LB never marked %s out after the fault started", label, f.Target)
			}
		}
		if ejectLBOK {
			r.Figures = append(r.Figures, Figure{id + ".eject-lb", secs(ejectLB), "s"})
		}
		for _, m := range []struct {
			ok bool
			d  time.Duration
		}{{ejectReqOK, ejectReq}, {ejectLBOK, ejectLB}} {
			if m.ok {
				ejectMeasured = true
				ejectMax = max(ejectMax, m.d)
			}
		}
		if b := opts.EjectWithin; b > 0 {
			switch {
			case ejectReqOK && ejectReq > b:
				failures = append(failures, fmt.Sprintf("%s: still routed new requests %s after the fault started (bound %s)", id, fmtDur(ejectReq), fmtDur(b)))
			case ejectLBOK && ejectLB > b:
				failures = append(failures, fmt.Sprintf("%s: LB took %s to mark %s out (bound %s)", id, fmtDur(ejectLB), f.Target, fmtDur(b)))
			case len(ss) > 0 && !ejectLBOK:
				failures = append(failures, fmt.Sprintf("%s: LB never marked %s out (bound %s)", id, f.Target, fmtDur(b)))
			case !ejectReqOK && !ejectLBOK:
				failures = append(failures, fmt.Sprintf("%s: ejection of %s could not be measured (no requests before the fault, no LB samples), bound %s", id, f.Target, fmtDur(b)))
			}
		}

		// Rejoin.
		if f.End.IsZero() {
			notRejoined++
			ev.note("%s: not rejoined: the fault never ended (no recovery recorded)", label)
			if b := opts.RejoinWithin; b > 0 {
				failures = append(failures, fmt.Sprintf("%s: %s not rejoined, the fault never ended (bound %s)", id, f.Target, fmtDur(b)))
			}
			continue
		}
		rejoinReq, rejoinReqOK := time.Duration(0), false
		for _, o := range ops {
			if !o.Start.Before(f.End) {
				rejoinReq, rejoinReqOK = o.Start.Sub(f.End), true
				ev.note("%s: served again from %s (%s)", label, clk.at(o.Start), opLabel(o))
				break
			}
		}
		if rejoinReqOK {
			r.Figures = append(r.Figures, Figure{id + ".rejoin-requests", secs(rejoinReq), "s"})
		} else {
			notRejoined++
			ev.note("%s: not rejoined: served no request through the LB after the fault ended", label)
		}
		rejoinLB, rejoinLBOK := time.Duration(0), false
		if len(ss) > 0 {
			from := f.End
			if outAt.After(from) {
				from = outAt
			}
			if outAt.IsZero() {
				rejoinLBOK = true // never out, so nothing to rejoin
			} else if st, ok := stateAt(ss, from); ok && IsUp(st.State) {
				rejoinLB, rejoinLBOK = max(0, st.Time.Sub(f.End)), true
				ev.note("%s: LB had %s %s again at %s", label, f.Target, st.State, clk.at(st.Time))
			} else {
				for _, s := range ss {
					if !s.Time.Before(from) && IsUp(s.State) {
						rejoinLB, rejoinLBOK = s.Time.Sub(f.End), true
						ev.note("%s: LB marked %s %s at %s", label, f.Target, s.State, clk.at(s.Time))
						break
					}
				}
				if !rejoinLBOK {
					ev.note("%s: LB never marked %s UP again after the fault ended", label, f.Target)
				}
			}
		}
		if rejoinLBOK {
			r.Figures = append(r.Figures, Figure{id + ".rejoin-lb", secs(rejoinLB), "s"})
		}
		for _, m := range []struct {
			ok bool
			d  time.Duration
		}{{rejoinReqOK, rejoinReq}, {rejoinLBOK, rejoinLB}} {
			if m.ok {
				rejoinMeasured = true
				rejoinMax = max(rejoinMax, m.d)
			}
		}
		if b := opts.RejoinWithin; b > 0 {
			switch {
			case !rejoinReqOK:
				failures = append(failures, fmt.Sprintf("%s: %s served no requests after the fault ended (bound %s)", id, f.Target, fmtDur(b)))
			case rejoinReq > b:
				failures = append(failures, fmt.Sprintf("%s: %s served again only %s after the fault ended (bound %s)", id, f.Target, fmtDur(rejoinReq), fmtDur(b)))
			case rejoinLBOK && rejoinLB > b:
				failures = append(failures, fmt.Sprintf("%s: LB marked %s UP only %s after the fault ended (bound %s)", id, f.Target, fmtDur(rejoinLB), fmtDur(b)))
			case len(ss) > 0 && !rejoinLBOK:
				failures = append(failures, fmt.Sprintf("%s: LB never marked %s UP again (bound %s)", id, f.Target, fmtDur(b)))
			}
		}
	}
	if nodeFaults == 0 {
		r.Status, r.Summary = Skip, "no node faults in this history"
		if notJudged > 0 {
			r.Summary = fmt.Sprintf("no fault meant to take a node out of the load balancer (%s on node links not judged)", plural(notJudged, "fault", "faults"))
		}
		r.Evidence = ev.lines()
		return r
	}
	r.Figures = append(r.Figures, Figure{"node-faults", float64(nodeFaults), "count"}, Figure{"not-rejoined", float64(notRejoined), "count"})
	if ejectMeasured {
		r.Figures = append(r.Figures, Figure{"eject-max", secs(ejectMax), "s"})
	}
	if rejoinMeasured {
		r.Figures = append(r.Figures, Figure{"rejoin-max", secs(rejoinMax), "s"})
	}
	for _, f := range failures {
		ev.problem("%s", f)
	}
	r.Evidence = ev.lines()
	if len(failures) > 0 {
		r.Status = Fail
		r.Summary = fmt.Sprintf("%s: %s", plural(len(failures), "bound exceeded", "bounds exceeded"), failures[0])
		return r
	}
	r.Status = Pass
	var parts []string
	if ejectMeasured {
		parts = append(parts, "ejected within "+fmtDur(ejectMax))
	} else {
		parts = append(parts, "ejection not measurable")
	}
	if rejoinMeasured {
		parts = append(parts, "rejoined within "+fmtDur(rejoinMax))
	}
	if notRejoined > 0 {
		parts = append(parts, fmt.Sprintf("%d not rejoined", notRejoined))
	}
	if opts.EjectWithin > 0 || opts.RejoinWithin > 0 {
		parts = append(parts, fmt.Sprintf("bounds eject %s, rejoin %s", boundLabel(opts.EjectWithin), boundLabel(opts.RejoinWithin)))
	}
	r.Summary = fmt.Sprintf("%s: %s", plural(nodeFaults, "node fault", "node faults"), strings.Join(parts, ", "))
	return r
}

// Ejecting reports whether a fault on a node is meant to take it out of
// the load balancer: a kill, pause, restart or drain, a partition of all
// its links or of its load-balancer link, or a blackhole on that link
// (health checks get no answer). Other network faults on a link (latency,
// bandwidth, resets, slow closes; anything on the database or share link)
// leave its ping as it is or change it only through the node's own
// heartbeat, so convergence does not judge them. Network faults are
// recognised by the kinds and the "kind@link,…" Detail harness/nemesis
// records; a kind not known here counts as ejecting, as before.
func Ejecting(f history.Fault) bool {
	link := ""
	if spec, ok := strings.CutPrefix(f.Detail, f.Kind+"@"); ok {
		link, _, _ = strings.Cut(spec, ",")
	}
	switch f.Kind {
	case "latency", "bandwidth", "reset", "slow-close":
		return false
	case "blackhole":
		return link == "lb"
	case "partition":
		// A partition without a link in its Detail cuts the whole node.
		return link == "" || link == "lb" || link == "all"
	}
	return true
}

// faultSpec is a fault's kind, or its network spec when it has one.
func faultSpec(f history.Fault) string {
	if strings.HasPrefix(f.Detail, f.Kind+"@") {
		return f.Detail
	}
	return f.Kind
}

func boundLabel(d time.Duration) string {
	if d <= 0 {
		return "none"
	}
	return fmtDur(d)
}

// stateAt returns the last sample at or before t.
func stateAt(ss []history.LBState, t time.Time) (history.LBState, bool) {
	var last history.LBState
	ok := false
	for _, s := range ss {
		if s.Time.After(t) {
			break
		}
		last, ok = s, true
	}
	return last, ok
}

func faultName(f history.Fault, i int) string {
	if f.ID != "" {
		return f.ID
	}
	return fmt.Sprintf("%s#%d", f.Kind, i+1)
}

func endLabel(clk clock, f history.Fault) string {
	if f.End.IsZero() {
		return "no end"
	}
	return clk.at(f.End)
}
