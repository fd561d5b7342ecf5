package checker

import (
	"fmt"
	"strings"
	"time"

	"github.com/octoha/octoha/harness/history"
)

// Phase is a stretch of a run relative to its faults: "before" the first
// fault, "during:<ids>" a fault window (overlapping faults are merged) and
// "after:<ids>" until the next one; "all" when there are no faults.
type Phase struct {
	Name    string    `json:"name"`
	Start   time.Time `json:"start"`
	End     time.Time `json:"end"`
	Ops     int       `json:"ops"`
	OK      int       `json:"ok"`
	Failed  int       `json:"failed"`
	Unknown int       `json:"unknown"`
}

// Rate is ops per second over the phase.
func (p Phase) Rate() float64 {
	d := p.End.Sub(p.Start).Seconds()
	if d <= 0 {
		return 0
	}
	return float64(p.Ops) / d
}

// ErrorRate is the share of ops that failed or had an unknown outcome, 0..1.
func (p Phase) ErrorRate() float64 {
	if p.Ops == 0 {
		return 0
	}
	return float64(p.Failed+p.Unknown) / float64(p.Ops)
}

// PhaseStats splits the history at its faults and counts the ops of one
// kind ("" for all) by the phase they started in.
func PhaseStats(h *history.History, kind string) []Phase {
	start, end := h.Span()
	if start.IsZero() {
		return nil
	}
	// Merge overlapping fault windows; a fault without an end lasts until
	// the end of the history.
	type window struct {
		start, end time.Time
		ids        []string
	}
	var ws []window
	for i, f := range h.Faults {
		fe := f.End
		if fe.IsZero() || fe.After(end) {
			fe = end
		}
		id := faultName(f, i)
		if n := len(ws); n > 0 && !f.Start.After(ws[n-1].end) {
			ws[n-1].end = maxTime(ws[n-1].end, fe)
			ws[n-1].ids = append(ws[n-1].ids, id)
			continue
		}
		ws = append(ws, window{f.Start, fe, []string{id}})
	}
	var phases []Phase
	add := func(name string, s, e time.Time) {
		if e.Before(s) {
			e = s
		}
		phases = append(phases, Phase{Name: name, Start: s, End: e})
	}
	if len(ws) == 0 {
		add("all", start, end)
	} else {
		add("before", start, ws[0].start)
		for i, w := range ws {
			ids := strings.Join(w.ids, "+")
			add("during:"+ids, w.start, w.end)
			next := end
			if i+1 < len(ws) {
				next = ws[i+1].start
			}
			if next.After(w.end) || i+1 < len(ws) {
				add("after:"+ids, w.end, next)
			}
		}
	}
	for _, o := range h.Ops {
		if kind != "" && o.Kind != kind {
			continue
		}
		i := len(phases) - 1
		for j := range phases {
			if o.Start.Before(phases[j].End) {
				i = j
				break
			}
		}
		p := &phases[i]
		p.Ops++
		switch o.Outcome {
		case history.OK:
			p.OK++
		case history.Failed:
			p.Failed++
		default:
			p.Unknown++
		}
	}
	return phases
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// Phases reports throughput and error rate of all ops per phase (before,
// during and after each fault), for scenarios to compare; it passes unless
// there are no ops to measure, when it skips.
func Phases(h *history.History) Result {
	r := Result{Name: "phases"}
	phases := PhaseStats(h, "")
	if len(h.Ops) == 0 {
		r.Status, r.Summary = Skip, "no client operations in this history"
		return r
	}
	clk := newClock(h)
	var ev evidence
	var parts []string
	for _, p := range phases {
		r.Figures = append(r.Figures,
			Figure{p.Name + ".duration", secs(p.End.Sub(p.Start)), "s"},
			Figure{p.Name + ".ops", float64(p.Ops), "ops"},
			Figure{p.Name + ".ops-per-s", p.Rate(), "ops/s"},
			Figure{p.Name + ".error-rate", 100 * p.ErrorRate(), "%"},
		)
		parts = append(parts, fmt.Sprintf("%s %.1f ops/s %.1f%% errors", p.Name, p.Rate(), 100*p.ErrorRate()))
		ev.note("%s %s → %s: %d ops (%d ok, %d failed, %d unknown), %.2f ops/s, %.2f%% errors",
			p.Name, clk.at(p.Start), clk.at(p.End), p.Ops, p.OK, p.Failed, p.Unknown, p.Rate(), 100*p.ErrorRate())
	}
	r.Status = Pass
	r.Summary = strings.Join(parts, "; ")
	r.Evidence = ev.lines()
	return r
}

// MinOps is the anti-vacuity guard: it fails when fewer than n ops of the
// kind ("" for any) were acknowledged (outcome ok) before the first fault
// started (in the whole history when there is no fault), because a run that
// did nothing proves nothing and must not pass.
func MinOps(h *history.History, kind string, n int) Result {
	name := "min-ops"
	what := "ops"
	if kind != "" {
		name += ":" + kind
		what = kind + " ops"
	}
	r := Result{Name: name}
	var cut time.Time
	for _, f := range h.Faults {
		if cut.IsZero() || f.Start.Before(cut) {
			cut = f.Start
		}
	}
	ok, all := 0, 0
	for _, o := range h.Ops {
		if kind != "" && o.Kind != kind || !cut.IsZero() && !o.Start.Before(cut) {
			continue
		}
		all++
		if o.Outcome == history.OK {
			ok++
		}
	}
	where := "before the first fault"
	if cut.IsZero() {
		where = "in the run (no faults)"
	}
	r.Figures = []Figure{{"ok-ops", float64(ok), "ops"}, {"ops", float64(all), "ops"}, {"required", float64(n), "ops"}}
	if ok < n {
		r.Status = Fail
		r.Summary = fmt.Sprintf("only %d acknowledged %s %s (%d recorded), need at least %d: the run did too little to prove anything", ok, what, where, all, n)
		return r
	}
	r.Status = Pass
	r.Summary = fmt.Sprintf("%d acknowledged %s %s (need at least %d)", ok, what, where, n)
	return r
}
