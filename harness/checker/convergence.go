package checker

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/octoha/octoha/harness/history"
	"github.com/octoha/octoha/harness/lb"
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
// requests (lb.Serving). Convergence ignores "UNKNOWN" samples (the LB
// could not be asked).
func IsUp(state string) bool { return lb.Serving(state) }

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
	c := newConvergence(h, opts)
	names := nodeNames(h)
	for _, n := range opts.Nodes {
		names[n] = true
	}
	for fi, f := range h.Faults {
		if !names[f.Target] {
			c.ev.note("fault %s (%s on %q) is not a node fault", f.ID, f.Kind, f.Target)
			continue
		}
		if !Ejecting(f) {
			c.notJudged++
			c.ev.note("fault %s (%s on %s) is not meant to take the node out of the load balancer", f.ID, faultSpec(f), f.Target)
			continue
		}
		c.judge(h, fi)
	}
	return c.result()
}

// convergence is one Convergence check in progress: what the history says
// each node served and what the LB said of it, and the tallies so far.
type convergence struct {
	opts    ConvergenceOptions
	r       Result
	ev      evidence
	clk     clock
	histEnd time.Time
	// served holds each node's requests through the LB, by start time;
	// samples its LB states (UNKNOWN ones left out).
	served  map[string][]history.Op
	samples map[string][]history.LBState

	nodeFaults, notRejoined int
	notJudged               int // node faults not meant to eject
	ejectMax, rejoinMax     time.Duration
	ejectMeasured           bool
	rejoinMeasured          bool
	failures                []string
}

func newConvergence(h *history.History, opts ConvergenceOptions) *convergence {
	c := &convergence{opts: opts, r: Result{Name: "convergence"}, clk: newClock(h),
		served: map[string][]history.Op{}, samples: map[string][]history.LBState{}}
	_, c.histEnd = h.Span()
	for _, o := range h.Ops {
		if o.Node != "" && viaLB(o) {
			c.served[o.Node] = append(c.served[o.Node], o)
		}
	}
	for _, ops := range c.served {
		sort.SliceStable(ops, func(i, j int) bool { return ops[i].Start.Before(ops[j].Start) })
	}
	for _, s := range h.LB {
		// An UNKNOWN sample (the LB could not be asked) says nothing.
		if st := strings.ToUpper(strings.TrimSpace(s.State)); st != "" && st != "UNKNOWN" {
			c.samples[s.Server] = append(c.samples[s.Server], s)
		}
	}
	return c
}

func (c *convergence) figure(name string, v float64, unit string) {
	c.r.Figures = append(c.r.Figures, Figure{name, v, unit})
}

func (c *convergence) fail(format string, args ...any) {
	c.failures = append(c.failures, fmt.Sprintf(format, args...))
}

// measured folds one measurement into the maximum it belongs to.
func measured(ok bool, d time.Duration, seen *bool, most *time.Duration) {
	if ok {
		*seen = true
		*most = max(*most, d)
	}
}

// judge measures the ejection and readmission of the node of fault fi.
func (c *convergence) judge(h *history.History, fi int) {
	f := h.Faults[fi]
	c.nodeFaults++
	id := faultName(f, fi)
	label := fmt.Sprintf("%s (%s on %s, %s → %s)", id, f.Kind, f.Target, c.clk.at(f.Start), endLabel(c.clk, f))
	// The window ends at recovery, or at the next fault on the same node.
	windowEnd := f.End
	next := c.histEnd.Add(time.Nanosecond)
	for _, g := range h.Faults[fi+1:] {
		if g.Target == f.Target && g.Start.After(f.Start) {
			next = g.Start
			break
		}
	}
	if windowEnd.IsZero() || windowEnd.After(next) {
		windowEnd = next
	}
	ops, ss := c.served[f.Target], c.samples[f.Target]

	ejectReq, ejectReqOK := c.ejectByRequests(f, id, label, ops, windowEnd)
	ejectLB, ejectLBOK, outAt := c.ejectByLB(f, id, label, ss, next)
	measured(ejectReqOK, ejectReq, &c.ejectMeasured, &c.ejectMax)
	measured(ejectLBOK, ejectLB, &c.ejectMeasured, &c.ejectMax)
	if b := c.opts.EjectWithin; b > 0 {
		switch {
		case ejectReqOK && ejectReq > b:
			c.fail("%s: still routed new requests %s after the fault started (bound %s)", id, fmtDur(ejectReq), fmtDur(b))
		case ejectLBOK && ejectLB > b:
			c.fail("%s: LB took %s to mark %s out (bound %s)", id, fmtDur(ejectLB), f.Target, fmtDur(b))
		case len(ss) > 0 && !ejectLBOK:
			c.fail("%s: LB never marked %s out (bound %s)", id, f.Target, fmtDur(b))
		case !ejectReqOK && !ejectLBOK:
			c.fail("%s: ejection of %s could not be measured (no requests before the fault, no LB samples), bound %s", id, f.Target, fmtDur(b))
		}
	}

	if f.End.IsZero() {
		c.notRejoined++
		c.ev.note("%s: not rejoined: the fault never ended (no recovery recorded)", label)
		if b := c.opts.RejoinWithin; b > 0 {
			c.fail("%s: %s not rejoined, the fault never ended (bound %s)", id, f.Target, fmtDur(b))
		}
		return
	}
	rejoinReq, rejoinReqOK := c.rejoinByRequests(f, id, label, ops)
	rejoinLB, rejoinLBOK := c.rejoinByLB(f, id, label, ss, outAt)
	measured(rejoinReqOK, rejoinReq, &c.rejoinMeasured, &c.rejoinMax)
	measured(rejoinLBOK, rejoinLB, &c.rejoinMeasured, &c.rejoinMax)
	if b := c.opts.RejoinWithin; b > 0 {
		switch {
		case !rejoinReqOK:
			c.fail("%s: %s served no requests after the fault ended (bound %s)", id, f.Target, fmtDur(b))
		case rejoinReq > b:
			c.fail("%s: %s served again only %s after the fault ended (bound %s)", id, f.Target, fmtDur(rejoinReq), fmtDur(b))
		case rejoinLBOK && rejoinLB > b:
			c.fail("%s: LB marked %s UP only %s after the fault ended (bound %s)", id, f.Target, fmtDur(rejoinLB), fmtDur(b))
		case len(ss) > 0 && !rejoinLBOK:
			c.fail("%s: LB never marked %s UP again (bound %s)", id, f.Target, fmtDur(b))
		}
	}
}

// ejectByRequests: from the fault's start to the start of the last request
// the node served through the LB before windowEnd.
func (c *convergence) ejectByRequests(f history.Fault, id, label string, ops []history.Op, windowEnd time.Time) (time.Duration, bool) {
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
	d, ok := time.Duration(0), false
	switch {
	case during > 0:
		d, ok = lastDuring.Start.Sub(f.Start), true
		c.ev.note("%s: served %s through the LB during the fault, the last starting at %s (%s)", label, plural(during, "request", "requests"), c.clk.at(lastDuring.Start), opLabel(lastDuring))
	case before > 0:
		ok = true
		c.ev.note("%s: served no request through the LB that started after the fault started (%d before)", label, before)
	default:
		c.ev.note("%s: served no request through the LB before the fault, so ejection by requests cannot be measured", label)
	}
	if ok {
		c.figure(id+".eject-requests", secs(d), "s")
		c.figure(id+".served-during", float64(during), "requests")
	}
	return d, ok
}

// ejectByLB: from the fault's start to the first sample that has the node
// out (before the next fault on it); outAt is that sample's time.
func (c *convergence) ejectByLB(f history.Fault, id, label string, ss []history.LBState, next time.Time) (d time.Duration, ok bool, outAt time.Time) {
	if len(ss) == 0 {
		c.ev.note("%s: no load-balancer state samples for %s", label, f.Target)
		return 0, false, time.Time{}
	}
	if st, found := stateAt(ss, f.Start); found && !IsUp(st.State) {
		ok, outAt = true, f.Start
		c.ev.note("%s: LB already had %s %s at the fault's start", label, f.Target, st.State)
	} else {
		for _, s := range ss {
			if !s.Time.Before(f.Start) && s.Time.Before(next) && !IsUp(s.State) {
				d, ok, outAt = s.Time.Sub(f.Start), true, s.Time
				c.ev.note("%s: LB marked %s %s at %s", label, f.Target, s.State, c.clk.at(s.Time))
				break
			}
		}
		if !ok {
			c.ev.note("%s: LB never marked %s out after the fault started", label, f.Target)
		}
	}
	if ok {
		c.figure(id+".eject-lb", secs(d), "s")
	}
	return d, ok, outAt
}

// rejoinByRequests: from the fault's end to the first request the node
// served again through the LB.
func (c *convergence) rejoinByRequests(f history.Fault, id, label string, ops []history.Op) (time.Duration, bool) {
	for _, o := range ops {
		if !o.Start.Before(f.End) {
			d := o.Start.Sub(f.End)
			c.ev.note("%s: served again from %s (%s)", label, c.clk.at(o.Start), opLabel(o))
			c.figure(id+".rejoin-requests", secs(d), "s")
			return d, true
		}
	}
	c.notRejoined++
	c.ev.note("%s: not rejoined: served no request through the LB after the fault ended", label)
	return 0, false
}

// rejoinByLB: from the fault's end to the first UP sample after the node
// was out (a node never out has nothing to rejoin).
func (c *convergence) rejoinByLB(f history.Fault, id, label string, ss []history.LBState, outAt time.Time) (d time.Duration, ok bool) {
	if len(ss) == 0 {
		return 0, false
	}
	from := f.End
	if outAt.After(from) {
		from = outAt
	}
	if outAt.IsZero() {
		ok = true // never out, so nothing to rejoin
	} else if st, found := stateAt(ss, from); found && IsUp(st.State) {
		d, ok = max(0, st.Time.Sub(f.End)), true
		c.ev.note("%s: LB had %s %s again at %s", label, f.Target, st.State, c.clk.at(st.Time))
	} else {
		for _, s := range ss {
			if !s.Time.Before(from) && IsUp(s.State) {
				d, ok = s.Time.Sub(f.End), true
				c.ev.note("%s: LB marked %s %s at %s", label, f.Target, s.State, c.clk.at(s.Time))
				break
			}
		}
		if !ok {
			c.ev.note("%s: LB never marked %s UP again after the fault ended", label, f.Target)
		}
	}
	if ok {
		c.figure(id+".rejoin-lb", secs(d), "s")
	}
	return d, ok
}

// result turns the tallies into the check's verdict and summary.
func (c *convergence) result() Result {
	r := c.r
	if c.nodeFaults == 0 {
		r.Status, r.Summary = Skip, "no node faults in this history"
		if c.notJudged > 0 {
			r.Summary = fmt.Sprintf("no fault meant to take a node out of the load balancer (%s on node links not judged)", plural(c.notJudged, "fault", "faults"))
		}
		r.Evidence = c.ev.lines()
		return r
	}
	r.Figures = append(r.Figures, Figure{"node-faults", float64(c.nodeFaults), "count"}, Figure{"not-rejoined", float64(c.notRejoined), "count"})
	if c.ejectMeasured {
		r.Figures = append(r.Figures, Figure{"eject-max", secs(c.ejectMax), "s"})
	}
	if c.rejoinMeasured {
		r.Figures = append(r.Figures, Figure{"rejoin-max", secs(c.rejoinMax), "s"})
	}
	for _, f := range c.failures {
		c.ev.problem("%s", f)
	}
	r.Evidence = c.ev.lines()
	if len(c.failures) > 0 {
		r.Status = Fail
		r.Summary = fmt.Sprintf("%s: %s", plural(len(c.failures), "bound exceeded", "bounds exceeded"), c.failures[0])
		return r
	}
	r.Status = Pass
	var parts []string
	if c.ejectMeasured {
		parts = append(parts, "ejected within "+fmtDur(c.ejectMax))
	} else {
		parts = append(parts, "ejection not measurable")
	}
	if c.rejoinMeasured {
		parts = append(parts, "rejoined within "+fmtDur(c.rejoinMax))
	}
	if c.notRejoined > 0 {
		parts = append(parts, fmt.Sprintf("%d not rejoined", c.notRejoined))
	}
	if c.opts.EjectWithin > 0 || c.opts.RejoinWithin > 0 {
		parts = append(parts, fmt.Sprintf("bounds eject %s, rejoin %s", boundLabel(c.opts.EjectWithin), boundLabel(c.opts.RejoinWithin)))
	}
	r.Summary = fmt.Sprintf("%s: %s", plural(c.nodeFaults, "node fault", "node faults"), strings.Join(parts, ", "))
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
