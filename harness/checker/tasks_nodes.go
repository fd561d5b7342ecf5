package checker

// The task checks about nodes: leadership (tasks-leader), a dead node's
// tasks (tasks-dead-node) and cancels (tasks-cancel).

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/octoha/octoha/harness/history"
)

// leaderObs is one node list's leaders.
type leaderObs struct {
	at      time.Time
	via     string
	leaders []string
}

func leaderObservations(h *history.History) (obs []leaderObs, ranked bool) {
	for _, o := range h.Ops {
		if o.Kind != history.KindTaskNodes || o.Outcome != history.OK {
			continue
		}
		lo := leaderObs{at: o.End, via: o.Via}
		for _, n := range o.NodeList {
			if n.Rank != "" {
				ranked = true
			}
			if strings.EqualFold(n.Rank, RankLeader) && !n.Offline {
				lo.leaders = append(lo.leaders, n.Name)
			}
		}
		obs = append(obs, lo)
	}
	sort.SliceStable(obs, func(i, j int) bool { return obs[i].at.Before(obs[j].at) })
	return obs, ranked
}

// TasksLeader: at most one leader in every node list, and after the
// leader is killed, paused, stopped or drained a follower leads within
// the bound (the takeover time is a figure).
func TasksLeader(h *history.History, opts TaskOptions) Result {
	opts = opts.withDefaults()
	r := Result{Name: CheckTasksLeader}
	if opts.NoLeaders {
		r.Status, r.Summary = Skip, "this cluster does not report node ranks"
		return r
	}
	obs, ranked := leaderObservations(h)
	if !ranked {
		r.Status, r.Summary = Skip, "no node list showed a rank"
		return r
	}
	clk := newClock(h)
	var ev evidence
	split := 0
	for _, o := range obs {
		if len(o.leaders) > 1 {
			split++
			ev.problem("%s: the node list through %s shows %d leaders: %s", clk.at(o.at), o.via, len(o.leaders), strings.Join(o.leaders, ", "))
		}
	}
	leaderAt := func(t time.Time) string {
		l := ""
		for _, o := range obs {
			if o.at.After(t) {
				break
			}
			if len(o.leaders) == 1 {
				l = o.leaders[0]
			}
		}
		return l
	}
	late, takeovers := 0, 0
	var worst time.Duration
	for fi, f := range h.Faults {
		switch f.Kind {
		case "kill", "pause", "restart", "drain", "partition":
		default:
			continue
		}
		if f.Target == "" || leaderAt(f.Start) != f.Target {
			continue
		}
		takeovers++
		var took time.Duration
		next := ""
		for _, o := range obs {
			if o.at.After(f.Start) && len(o.leaders) == 1 && o.leaders[0] != f.Target {
				took, next = o.at.Sub(f.Start), o.leaders[0]
				break
			}
		}
		label := fmt.Sprintf("%s (%s of leader %s at %s)", faultName(f, fi), f.Kind, f.Target, clk.at(f.Start))
		switch {
		case next == "":
			late++
			ev.problem("%s: no other node was seen leading afterwards", label)
		case took > opts.LeaderBound:
			late++
			worst = max(worst, took)
			ev.problem("%s: %s leads only %s later (bound %s)", label, next, fmtDur(took), fmtDur(opts.LeaderBound))
		default:
			worst = max(worst, took)
			ev.note("%s: %s took over after %s", label, next, fmtDur(took))
		}
	}
	r.Figures = []Figure{{Name: "split-leader-views", Value: float64(split), Unit: "count"}}
	if takeovers > 0 {
		r.Figures = append(r.Figures, Figure{Name: "leader-takeover", Value: secs(worst), Unit: "s"})
	}
	r.Evidence = ev.lines()
	if split+late > 0 {
		r.Status = Fail
		r.Summary = fmt.Sprintf("%d node lists with two leaders, %d takeovers missing or later than %s", split, late, fmtDur(opts.LeaderBound))
		return r
	}
	r.Status = Pass
	if takeovers == 0 {
		r.Summary = fmt.Sprintf("at most one leader in all %d node lists (the leader was not faulted)", len(obs))
	} else {
		r.Summary = fmt.Sprintf("at most one leader in all %d node lists; a follower took over within %s", len(obs), fmtDur(worst))
	}
	return r
}

// TasksDeadNode: the tasks a killed node was running end Failed, with a
// message naming the node, within the offline bound of the kill.
func TasksDeadNode(h *history.History, m *TaskModel, opts TaskOptions) Result {
	opts = opts.withDefaults()
	r := Result{Name: CheckTasksDeadNode}
	clk := newClock(h)
	var ev evidence
	kills, orphans, bad := 0, 0, 0
	var worst time.Duration
	for fi, f := range h.Faults {
		if f.Kind != "kill" || f.Target == "" {
			continue
		}
		kills++
		for _, id := range m.IDs {
			if !runningOn(m, id, f.Target, f.Start) {
				continue
			}
			orphans++
			done, v, ok := m.terminalAt(id)
			switch {
			case !ok:
				bad++
				last, _ := m.last(id)
				ev.problem("%s was running on %s when it was killed (%s) and is still %s", id, f.Target, faultName(f, fi), last.State)
			case v.State != history.TaskFailed:
				bad++
				ev.problem("%s was running on %s when it was killed and ended %s, not Failed", id, f.Target, v.State)
			case !strings.Contains(v.Error, f.Target):
				bad++
				ev.problem("%s ended Failed but its error does not name %s: %q", id, f.Target, v.Error)
			default:
				took := done.Sub(f.Start)
				worst = max(worst, took)
				if took > opts.OfflineBound {
					bad++
					ev.problem("%s (running on %s) Failed only %s after the kill at %s (bound %s)", id, f.Target, fmtDur(took), clk.at(f.Start), fmtDur(opts.OfflineBound))
				} else {
					ev.note("%s (running on %s) Failed %s after the kill: %q", id, f.Target, fmtDur(took), v.Error)
				}
			}
		}
	}
	if kills == 0 {
		r.Status, r.Summary = Skip, "no node was killed"
		return r
	}
	r.Figures = []Figure{{Name: "orphaned-tasks", Value: float64(orphans), Unit: "count"}}
	if orphans > 0 {
		r.Figures = append(r.Figures, Figure{Name: "dead-node-tasks-failed-after", Value: secs(worst), Unit: "s"})
	}
	r.Evidence = ev.lines()
	switch {
	case bad > 0:
		r.Status = Fail
		r.Summary = fmt.Sprintf("%d of %d tasks of a killed node not Failed naming it within %s", bad, orphans, fmtDur(opts.OfflineBound))
	case orphans == 0:
		r.Status = Skip
		r.Summary = "no task was running on a killed node"
	default:
		r.Status = Pass
		r.Summary = fmt.Sprintf("all %d tasks of the killed node Failed naming it, the last %s after the kill", orphans, fmtDur(worst))
	}
	return r
}

// runningOn reports whether the history shows task id running on node at
// t: its log started there before t without finishing before it, or the
// API showed it Executing there before t and not terminal by then.
func runningOn(m *TaskModel, id, node string, t time.Time) bool {
	for _, e := range m.Executions[id] {
		if e.Node == node && e.Start.Before(t) && (e.End.IsZero() || e.End.After(t)) {
			return true
		}
	}
	if len(m.Executions[id]) > 0 {
		return false
	}
	running := false
	for _, o := range m.obs[id] {
		if o.at.After(t) {
			break
		}
		running = o.view.Node == node && (o.view.State == history.TaskExecuting || o.view.State == history.TaskCancelling)
	}
	return running
}

// TasksCancel: a task cancelled before it finished ends Canceled, not
// Success, and is not left Cancelling.
func TasksCancel(h *history.History, m *TaskModel, opts TaskOptions) Result {
	opts = opts.withDefaults()
	r := Result{Name: CheckTasksCancel}
	clk := newClock(h)
	var ev evidence
	cancelled, bad, raced := 0, 0, 0
	for _, id := range m.IDs {
		cs := m.Cancels[id]
		var first *history.Op
		for i := range cs {
			if cs[i].Outcome == history.OK {
				first = &cs[i]
				break
			}
		}
		if first == nil {
			continue
		}
		cancelled++
		v, ok := m.last(id)
		switch {
		case !ok:
			bad++
			ev.problem("%s: cancelled at %s, never observed afterwards", id, clk.at(first.End))
		case v.State == history.TaskCanceled:
		case !history.TaskTerminal(v.State):
			bad++
			ev.problem("%s on %s: cancelled at %s, still %s", id, taskWhere(v), clk.at(first.End), v.State)
		case v.CompletedTime != nil && v.CompletedTime.Before(first.Start):
			raced++
			ev.note("%s ended %s at %s, before the cancel was sent", id, v.State, clk.at(*v.CompletedTime))
		case v.CompletedTime != nil && v.CompletedTime.Before(first.End.Add(opts.CancelGrace)):
			// The node running it learns of a cancel at its next poll: a
			// task that ends before then ends as it would have.
			raced++
			ev.note("%s ended %s at %s, within one poll (%s) of the cancel at %s: before its node could have seen it", id, v.State, clk.at(*v.CompletedTime), opts.CancelGrace, clk.at(first.End))
		default:
			bad++
			ev.problem("%s on %s: cancelled at %s, ended %s", id, taskWhere(v), clk.at(first.End), v.State)
		}
	}
	if cancelled == 0 {
		r.Status, r.Summary = Skip, "no task was cancelled"
		return r
	}
	r.Figures = []Figure{{Name: "cancelled", Value: float64(cancelled), Unit: "count"}, {Name: "cancel-ignored", Value: float64(bad), Unit: "count"}}
	r.Evidence = ev.lines()
	if bad > 0 {
		r.Status = Fail
		r.Summary = fmt.Sprintf("%d of %d cancelled tasks did not end Canceled", bad, cancelled)
		return r
	}
	r.Status = Pass
	r.Summary = fmt.Sprintf("all %d cancelled tasks ended Canceled (%d had finished before the cancel)", cancelled-raced, raced)
	return r
}
