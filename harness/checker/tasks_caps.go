package checker

// The task checks about capacity: caps in force (tasks-cap) and drains
// (tasks-drain).

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/octoha/octoha/harness/history"
)

// capChange is a node's task cap from a time on.
type capChange struct {
	at  time.Time
	cap int
}

// capsOf returns each node's task cap over time: from node lists, and
// from the cap changes the harness made.
func capsOf(h *history.History) map[string][]capChange {
	caps := map[string][]capChange{}
	for _, o := range h.Ops {
		if o.Outcome != history.OK || o.Kind != history.KindTaskNodes && o.Kind != history.KindTaskCap {
			continue
		}
		for _, n := range o.NodeList {
			cs := caps[n.Name]
			if len(cs) == 0 || cs[len(cs)-1].cap != n.MaxConcurrentTasks {
				caps[n.Name] = append(cs, capChange{at: o.Start, cap: n.MaxConcurrentTasks})
			}
		}
	}
	for _, cs := range caps {
		sort.SliceStable(cs, func(i, j int) bool { return cs[i].at.Before(cs[j].at) })
	}
	return caps
}

// capAt is the largest cap in force for the node at some time in
// [t-grace, t]: a node acts on the cap it read at its last poll. The first
// cap seen is taken to have held since the start. ok is false when no cap
// is known.
func capAt(cs []capChange, t time.Time, grace time.Duration) (int, bool) {
	best := -1
	for i, c := range cs {
		if i > 0 && c.at.After(t) {
			break
		}
		if i+1 < len(cs) && !cs[i+1].at.After(t.Add(-grace)) {
			continue // replaced before the window
		}
		best = max(best, c.cap)
	}
	return best, best >= 0
}

// TasksCap: no node starts a task while it already runs its cap, judged
// from the executions in the task logs against the cap in force (a
// lowered cap applies from the node's next poll), and no node list shows
// a node running more tasks than it ever had as cap.
func TasksCap(h *history.History, m *TaskModel, opts TaskOptions) Result {
	opts = opts.withDefaults()
	r := Result{Name: CheckTasksCap}
	caps := capsOf(h)
	if len(caps) == 0 {
		r.Status, r.Summary = Skip, "no node list was observed: task caps are unknown"
		return r
	}
	clk := newClock(h)
	_, histEnd := h.Span()
	var ev evidence
	byNode := map[string][]struct {
		id   string
		exec history.Execution
	}{}
	for _, id := range m.IDs {
		for _, e := range m.Executions[id] {
			byNode[e.Node] = append(byNode[e.Node], struct {
				id   string
				exec history.Execution
			}{id, e})
		}
	}
	overruns := 0
	peak := map[string]int{}
	for _, node := range sortedKeys(byNode) {
		ex := byNode[node]
		for _, s := range ex {
			running := 0
			for _, o := range ex {
				if o.id != s.id && o.exec.Start.Before(s.exec.Start) && orEnd(o.exec.End, histEnd).After(s.exec.Start) {
					running++
				}
			}
			peak[node] = max(peak[node], running+1)
			limit, known := capAt(caps[node], s.exec.Start, opts.Poll)
			if known && running >= limit {
				overruns++
				ev.problem("%s started %s at %s while it already ran %d tasks (cap %d)", node, s.id, clk.at(s.exec.Start), running, limit)
			}
		}
	}
	maxCap := map[string]int{}
	for n, cs := range caps {
		for _, c := range cs {
			maxCap[n] = max(maxCap[n], c.cap)
		}
	}
	for _, o := range h.Ops {
		if o.Kind != history.KindTaskNodes || o.Outcome != history.OK {
			continue
		}
		for _, n := range o.NodeList {
			if n.RunningTasks > maxCap[n.Name] {
				overruns++
				ev.problem("%s showed %d running tasks at %s (through %s), above its cap %d", n.Name, n.RunningTasks, clk.at(o.End), o.Via, maxCap[n.Name])
			}
			peak[n.Name] = max(peak[n.Name], n.RunningTasks)
		}
	}
	for _, n := range sortedKeys(peak) {
		ev.note("%s: at most %d tasks at once (cap %s)", n, peak[n], capsLabel(caps[n]))
		r.Figures = append(r.Figures, Figure{Name: "peak-running-" + n, Value: float64(peak[n]), Unit: "count"})
	}
	r.Figures = append(r.Figures, Figure{Name: "cap-overruns", Value: float64(overruns), Unit: "count"})
	r.Evidence = ev.lines()
	if overruns > 0 {
		r.Status = Fail
		r.Summary = fmt.Sprintf("%d times a node ran more tasks than its cap", overruns)
		return r
	}
	r.Status = Pass
	r.Summary = fmt.Sprintf("no node above its task cap (%d nodes)", len(caps))
	return r
}

func capsLabel(cs []capChange) string {
	s := make([]string, len(cs))
	for i, c := range cs {
		s[i] = fmt.Sprint(c.cap)
	}
	return strings.Join(s, "→")
}

// TasksDrain: a drained node starts nothing from one poll after its drain
// until its undrain; the tasks it was running finish.
func TasksDrain(h *history.History, m *TaskModel, opts TaskOptions) Result {
	opts = opts.withDefaults()
	r := Result{Name: CheckTasksDrain}
	clk := newClock(h)
	_, histEnd := h.Span()
	var ev evidence
	drains, started := 0, 0
	for fi, f := range h.Faults {
		if f.Kind != "drain" {
			continue
		}
		drains++
		from := f.Start.Add(opts.Poll)
		to := orEnd(f.End, histEnd)
		for _, id := range m.IDs {
			for _, e := range m.Executions[id] {
				if e.Node == f.Target && e.Start.After(from) && e.Start.Before(to) {
					started++
					ev.problem("%s started %s at %s, %s after its drain (%s) began", f.Target, id, clk.at(e.Start), fmtDur(e.Start.Sub(f.Start)), faultName(f, fi))
				}
			}
			for _, o := range m.obs[id] {
				st := o.view.StartTime
				if o.view.Node == f.Target && st != nil && st.After(from) && st.Before(to) && len(m.Executions[id]) == 0 {
					started++
					ev.problem("%s shows %s started on %s at %s, during its drain", id, o.view.State, f.Target, clk.at(*st))
					break
				}
			}
		}
		ev.note("%s: %s drained %s → %s", faultName(f, fi), f.Target, clk.at(f.Start), endLabel(clk, f))
	}
	if drains == 0 {
		r.Status, r.Summary = Skip, "no node was drained"
		return r
	}
	r.Figures = []Figure{{Name: "started-while-drained", Value: float64(started), Unit: "count"}}
	r.Evidence = ev.lines()
	if started > 0 {
		r.Status = Fail
		r.Summary = fmt.Sprintf("%d tasks started on a drained node more than one poll (%s) after the drain", started, fmtDur(opts.Poll))
		return r
	}
	r.Status = Pass
	r.Summary = fmt.Sprintf("no task started on a drained node after drain + one poll (%s)", fmtDur(opts.Poll))
	return r
}
