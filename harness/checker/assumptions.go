package checker

import (
	"fmt"

	"github.com/octoha/octoha/harness/history"
)

// Assumptions is the first stage: it checks that the history itself can be
// judged (not empty; ops end after they start; known outcomes; faults that
// end after they start; unique sequence numbers) before any verdict is drawn
// from it. It also notes what weakens later checks: a truncated last line,
// failed recoveries, acknowledged uploads without an expected hash.
func Assumptions(h *history.History) Result {
	r := Result{Name: "history"}
	var ev evidence
	clk := newClock(h)
	start, end := h.Span()
	if len(h.Ops) == 0 && len(h.Faults) == 0 {
		r.Status, r.Summary = Fail, "empty history: nothing was recorded, so nothing can be checked"
		return r
	}
	seqs := map[uint64]bool{}
	uploads, noHash := 0, 0
	for _, o := range h.Ops {
		switch {
		case o.Start.IsZero() || o.End.IsZero():
			ev.problem("%s has no start or end time", opLabel(o))
		case o.End.Before(o.Start):
			ev.problem("%s ends %s before it starts", opLabel(o), fmtDur(o.Start.Sub(o.End)))
		}
		switch o.Outcome {
		case history.OK, history.Failed, history.Unknown:
		default:
			ev.problem("%s has unknown outcome %q", opLabel(o), o.Outcome)
		}
		if seqs[o.Seq] {
			ev.problem("sequence number %d appears twice", o.Seq)
		}
		seqs[o.Seq] = true
		if o.Kind == history.KindUpload {
			uploads++
			if o.Outcome == history.OK && o.Hash == "" {
				noHash++
			}
		}
	}
	for i, f := range h.Faults {
		id := faultName(f, i)
		if f.Start.IsZero() {
			ev.problem("fault %s has no start time", id)
		}
		if !f.End.IsZero() && f.End.Before(f.Start) {
			ev.problem("fault %s ends before it starts", id)
		}
		if f.Error != "" {
			ev.note("fault %s (%s on %s): recovery reported an error: %s", id, f.Kind, f.Target, f.Error)
		}
		if f.End.IsZero() {
			ev.note("fault %s (%s on %s, %s) never ended", id, f.Kind, f.Target, clk.at(f.Start))
		}
	}
	if h.Truncated {
		ev.note("the history's last line was incomplete (its writer stopped mid-line) and was dropped")
	}
	if noHash > 0 {
		ev.note("%s recorded no expected hash; their content is checked by size only", plural(noHash, "acknowledged upload", "acknowledged uploads"))
	}
	r.Figures = []Figure{
		{"ops", float64(len(h.Ops)), "ops"},
		{"uploads", float64(uploads), "ops"},
		{"faults", float64(len(h.Faults)), "count"},
		{"lb-samples", float64(len(h.LB)), "count"},
		{"span", secs(end.Sub(start)), "s"},
	}
	r.Evidence = ev.lines()
	if len(ev.problems) > 0 {
		r.Status = Fail
		r.Summary = fmt.Sprintf("the history is inconsistent (%s), so verdicts drawn from it are unreliable", plural(len(ev.problems), "problem", "problems"))
		return r
	}
	r.Status = Pass
	r.Summary = fmt.Sprintf("%d ops (%d uploads), %s, %d LB samples over %s", len(h.Ops), uploads, plural(len(h.Faults), "fault", "faults"), len(h.LB), fmtDur(end.Sub(start)))
	return r
}
