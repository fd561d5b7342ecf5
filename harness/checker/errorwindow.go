package checker

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/octoha/octoha/harness/history"
)

// DefaultGrace is how long after a fault's end failures are still blamed on
// it: in-flight requests and the LB's rise checks take a few seconds.
const DefaultGrace = 5 * time.Second

// ErrorWindowOptions tunes ErrorWindow.
type ErrorWindowOptions struct {
	// Grace extends each fault window past the fault's end; zero means
	// DefaultGrace, negative means none.
	Grace time.Duration
	// AllowedOutsideFailures is how many failures outside every fault window
	// still pass (default 0: such failures usually mean a bug).
	AllowedOutsideFailures int
	// IgnoreStatus lists statuses that are not failures of the cluster for
	// this scenario, e.g. 409 for a retry of an upload whose first attempt
	// had an unknown outcome and did take effect.
	IgnoreStatus []int
	// Kinds restricts the check to these op kinds; empty means all.
	Kinds []string
}

// ErrorWindow relates client failures (ops with outcome failed or unknown)
// to faults. For every fault it reports the failures overlapping
// [start, end + grace] (until the history's end for a fault that never
// ended): how many, by status, and when the first and last were seen (their
// end, relative to the fault's start). Failures outside every window usually
// mean a bug, and fail the check beyond AllowedOutsideFailures.
func ErrorWindow(h *history.History, opts ErrorWindowOptions) Result {
	r := Result{Name: "error-window"}
	var ev evidence
	clk := newClock(h)
	grace := opts.Grace
	if grace == 0 {
		grace = DefaultGrace
	}
	grace = max(grace, 0)
	_, histEnd := h.Span()

	total := 0
	var fails []history.Op
	for _, o := range h.Ops {
		if len(opts.Kinds) > 0 && !slices.Contains(opts.Kinds, o.Kind) {
			continue
		}
		total++
		if o.Outcome == history.OK || slices.Contains(opts.IgnoreStatus, o.Status) && o.Status != 0 {
			continue
		}
		fails = append(fails, o)
	}
	if total == 0 {
		r.Status, r.Summary = Skip, "no client operations in this history"
		return r
	}

	inside := make([]bool, len(fails))
	for fi, f := range h.Faults {
		id := faultName(f, fi)
		wEnd := histEnd
		if !f.End.IsZero() {
			wEnd = f.End.Add(grace)
		}
		var n int
		var first, last time.Duration
		byStatus := map[string]int{}
		for i, o := range fails {
			if o.Start.After(wEnd) || o.End.Before(f.Start) {
				continue
			}
			inside[i] = true
			at := o.End.Sub(f.Start)
			if n == 0 || at < first {
				first = at
			}
			if n == 0 || at > last {
				last = at
			}
			n++
			byStatus[statusLabel(o.Status)]++
		}
		r.Figures = append(r.Figures, Figure{id + ".failures", float64(n), "ops"})
		if n == 0 {
			ev.note("%s (%s on %s, %s → %s): no client failures", id, f.Kind, f.Target, clk.at(f.Start), endLabel(clk, f))
			continue
		}
		r.Figures = append(r.Figures, Figure{id + ".first-failure", secs(first), "s"}, Figure{id + ".last-failure", secs(last), "s"})
		var codes []string
		for _, k := range sortedStatus(byStatus) {
			r.Figures = append(r.Figures, Figure{id + ".status-" + k, float64(byStatus[k]), "ops"})
			codes = append(codes, fmt.Sprintf("%s×%d", k, byStatus[k]))
		}
		ev.note("%s (%s on %s, %s → %s): %s from +%s to +%s after its start: %s",
			id, f.Kind, f.Target, clk.at(f.Start), endLabel(clk, f), plural(n, "failure", "failures"), fmtDur(first), fmtDur(last), strings.Join(codes, ", "))
	}

	var outside []history.Op
	for i, o := range fails {
		if !inside[i] {
			outside = append(outside, o)
		}
	}
	for _, o := range outside {
		line := fmt.Sprintf("failure outside any fault window: %s at %s–%s: %s", opLabel(o), clk.at(o.Start), clk.at(o.End), opResult(o))
		if len(outside) > opts.AllowedOutsideFailures {
			ev.problem("%s", line)
		} else {
			ev.note("%s", line)
		}
	}
	r.Figures = append(r.Figures,
		Figure{"ops", float64(total), "ops"},
		Figure{"failures", float64(len(fails)), "ops"},
		Figure{"outside-failures", float64(len(outside)), "ops"},
		Figure{"allowed-outside", float64(opts.AllowedOutsideFailures), "ops"},
		Figure{"grace", secs(grace), "s"},
	)
	r.Evidence = ev.lines()
	if len(outside) > opts.AllowedOutsideFailures {
		r.Status = Fail
		r.Summary = fmt.Sprintf("%s outside any fault window (allowed %d), the first %s at %s",
			plural(len(outside), "client failure", "client failures"), opts.AllowedOutsideFailures, opLabel(outside[0]), clk.at(outside[0].End))
		return r
	}
	r.Status = Pass
	r.Summary = fmt.Sprintf("%s of %d ops, %d inside %s (grace %s), %d outside (allowed %d)",
		plural(len(fails), "failure", "failures"), total, len(fails)-len(outside), plural(len(h.Faults), "fault window", "fault windows"), fmtDur(grace), len(outside), opts.AllowedOutsideFailures)
	return r
}

// statusLabel names a status for figures; "none" when no response came.
func statusLabel(code int) string {
	if code == 0 {
		return "none"
	}
	return strconv.Itoa(code)
}

func sortedStatus(m map[string]int) []string {
	keys := sortedKeys(m)
	sort.SliceStable(keys, func(i, j int) bool {
		// Numeric codes first, in order; "none" last.
		a, aerr := strconv.Atoi(keys[i])
		b, berr := strconv.Atoi(keys[j])
		if aerr != nil || berr != nil {
			return aerr == nil && berr != nil
		}
		return a < b
	})
	return keys
}
