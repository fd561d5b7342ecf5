package checker

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/octoha/octoha/harness/history"
)

// Names of the task checks, as scenarios declare them.
const (
	CheckTasksTerminal = "tasks-terminal"
	CheckTasksOnce     = "tasks-once"
	CheckTasksCap      = "tasks-cap"
	CheckTasksDrain    = "tasks-drain"
	CheckTasksLeader   = "tasks-leader"
	CheckTasksDeadNode = "tasks-dead-node"
	CheckTasksCancel   = "tasks-cancel"
)

// FindingDoubleExecution is the figure tasks-once sets to the number of
// tasks that ran on two nodes at once (OctopusDeploy/Issues#8356).
const FindingDoubleExecution = "concurrent-executions"

// Rank of the leader node, as the node resource spells it.
const RankLeader = "Leader"

// Defaults of TaskOptions.
const (
	DefaultTaskBound    = 60 * time.Second
	DefaultTaskPoll     = time.Second
	DefaultOfflineBound = 10 * time.Second
	DefaultLeaderBound  = 10 * time.Second
)

// TaskOptions configures the task checks; Evaluate runs them when set.
type TaskOptions struct {
	// Bound is how long after its creation every task must be terminal.
	Bound time.Duration
	// Poll is the nodes' task poll interval: a drained node may still
	// start a task until its next poll, a lowered cap applies from it.
	Poll time.Duration
	// OfflineBound is how long after a node is killed its tasks must be
	// Failed (offline-after plus a poll, plus slack).
	OfflineBound time.Duration
	// LeaderBound is how long after the leader is faulted a follower must
	// be seen leading.
	LeaderBound time.Duration
	// NoLeaders says the cluster does not report ranks (Octopus removed
	// Rank from the node resource in 2020.3): tasks-leader skips.
	NoLeaders bool
	// Checks, when set, names the task checks to run (default all): a
	// scenario leaves out those its fault makes meaningless.
	Checks []string
}

func (o TaskOptions) withDefaults() TaskOptions {
	if o.Bound <= 0 {
		o.Bound = DefaultTaskBound
	}
	if o.Poll <= 0 {
		o.Poll = DefaultTaskPoll
	}
	if o.OfflineBound <= 0 {
		o.OfflineBound = DefaultOfflineBound
	}
	if o.LeaderBound <= 0 {
		o.LeaderBound = DefaultLeaderBound
	}
	return o
}

// Tasks runs every task check on a history.
func Tasks(h *history.History, opts TaskOptions) []Result {
	m := NewTaskModel(h)
	all := []struct {
		name string
		run  func() Result
	}{
		{CheckTasksTerminal, func() Result { return TasksTerminal(h, m, opts) }},
		{CheckTasksOnce, func() Result { return TasksOnce(h, m) }},
		{CheckTasksCap, func() Result { return TasksCap(h, m, opts) }},
		{CheckTasksDrain, func() Result { return TasksDrain(h, m, opts) }},
		{CheckTasksLeader, func() Result { return TasksLeader(h, opts) }},
		{CheckTasksDeadNode, func() Result { return TasksDeadNode(h, m, opts) }},
		{CheckTasksCancel, func() Result { return TasksCancel(h, m) }},
	}
	var out []Result
	for _, c := range all {
		if len(opts.Checks) == 0 || slices.Contains(opts.Checks, c.name) {
			out = append(out, c.run())
		}
	}
	return out
}

// taskObs is one observation of a task: what a response said, when.
type taskObs struct {
	at   time.Time
	view history.TaskView
	via  string
}

// TaskModel is what a history says about the tasks the harness created:
// when each was created, every state the driver saw, its final state and
// its executions from its log.
type TaskModel struct {
	IDs        []string // in creation order
	Created    map[string]history.Op
	obs        map[string][]taskObs
	Final      map[string]history.TaskView
	Executions map[string][]history.Execution
	Logged     map[string]bool // the log was read
	Cancels    map[string][]history.Op
}

// NewTaskModel reads the task ops of a history.
func NewTaskModel(h *history.History) *TaskModel { return newTaskModel(h) }

func newTaskModel(h *history.History) *TaskModel {
	m := &TaskModel{
		Created: map[string]history.Op{}, obs: map[string][]taskObs{}, Final: map[string]history.TaskView{},
		Executions: map[string][]history.Execution{}, Logged: map[string]bool{}, Cancels: map[string][]history.Op{},
	}
	for _, o := range h.Ops {
		switch o.Kind {
		case history.KindTaskCreate:
			if o.Outcome == history.OK && o.Task != "" {
				if _, dup := m.Created[o.Task]; !dup {
					m.IDs = append(m.IDs, o.Task)
				}
				m.Created[o.Task] = o
			}
		case history.KindTaskCancel:
			if o.Task != "" {
				m.Cancels[o.Task] = append(m.Cancels[o.Task], o)
			}
		case history.KindTaskPoll, history.KindTaskFinal:
			for _, v := range o.Tasks {
				m.obs[v.ID] = append(m.obs[v.ID], taskObs{at: o.End, view: v, via: o.Via})
				if o.Kind == history.KindTaskFinal || history.TaskTerminal(v.State) {
					m.Final[v.ID] = v
				}
			}
		case history.KindTaskLog:
			if o.Outcome == history.OK && o.Task != "" {
				m.Logged[o.Task] = true
				m.Executions[o.Task] = o.Executions
			}
		}
	}
	for id, obs := range m.obs {
		sort.SliceStable(obs, func(i, j int) bool { return obs[i].at.Before(obs[j].at) })
		if _, ok := m.Final[id]; !ok && len(obs) > 0 {
			m.Final[id] = obs[len(obs)-1].view
		}
	}
	return m
}

// last is the task's last observed state ("" when never observed).
func (m *TaskModel) last(id string) (history.TaskView, bool) {
	v, ok := m.Final[id]
	return v, ok
}

// terminalAt is when the task was first seen terminal: the server's
// CompletedTime when it gave one, else the observation's time.
func (m *TaskModel) terminalAt(id string) (time.Time, history.TaskView, bool) {
	for _, o := range m.obs[id] {
		if history.TaskTerminal(o.view.State) {
			if o.view.CompletedTime != nil {
				return *o.view.CompletedTime, o.view, true
			}
			return o.at, o.view, true
		}
	}
	return time.Time{}, history.TaskView{}, false
}

func taskWhere(v history.TaskView) string {
	if v.Node == "" {
		return "no node"
	}
	return v.Node
}

// TasksTerminal: every task created reaches a terminal state within the
// bound; none is left Queued, Executing or Cancelling.
func TasksTerminal(h *history.History, m *TaskModel, opts TaskOptions) Result {
	opts = opts.withDefaults()
	r := Result{Name: CheckTasksTerminal}
	if len(m.IDs) == 0 {
		r.Status, r.Summary = Skip, "no task was created in this history"
		return r
	}
	clk := newClock(h)
	var ev evidence
	stuck, late, unseen := 0, 0, 0
	var slowest time.Duration
	slowestID := ""
	for _, id := range m.IDs {
		created := m.Created[id].End
		v, seen := m.last(id)
		if !seen {
			unseen++
			ev.problem("%s (created %s): never observed after its creation", id, clk.at(created))
			continue
		}
		done, tv, ok := m.terminalAt(id)
		if !ok {
			stuck++
			ev.problem("%s on %s: still %s when last read (created %s)", id, taskWhere(v), v.State, clk.at(created))
			continue
		}
		took := done.Sub(created)
		if took > slowest {
			slowest, slowestID = took, id
		}
		if took > opts.Bound {
			late++
			ev.problem("%s on %s: %s only after %s (bound %s)", id, taskWhere(tv), tv.State, fmtDur(took), fmtDur(opts.Bound))
		}
	}
	r.Figures = []Figure{
		{Name: "tasks", Value: float64(len(m.IDs)), Unit: "count"},
		{Name: "stuck", Value: float64(stuck + unseen), Unit: "count"},
		{Name: "slowest-to-terminal", Value: secs(slowest), Unit: "s"},
	}
	if slowestID != "" {
		ev.note("slowest: %s, terminal %s after its creation", slowestID, fmtDur(slowest))
	}
	// Where the tasks ran (their ServerNode): the queue's distribution.
	byNode := map[string]int{}
	for _, id := range m.IDs {
		if v, ok := m.last(id); ok && v.Node != "" {
			byNode[v.Node]++
		}
	}
	if len(byNode) > 0 {
		var parts []string
		for _, n := range sortedKeys(byNode) {
			parts = append(parts, fmt.Sprintf("%s %d", n, byNode[n]))
			r.Figures = append(r.Figures, Figure{Name: "tasks-on-" + n, Value: float64(byNode[n]), Unit: "count"})
		}
		ev.note("tasks by node: %s", strings.Join(parts, ", "))
	}
	r.Evidence = ev.lines()
	if stuck+late+unseen > 0 {
		r.Status = Fail
		r.Summary = fmt.Sprintf("%d of %d tasks not terminal within %s (%d stuck, %d late, %d never seen)", stuck+late+unseen, len(m.IDs), fmtDur(opts.Bound), stuck, late, unseen)
		return r
	}
	r.Status = Pass
	r.Summary = fmt.Sprintf("all %d tasks terminal within %s (slowest %s)", len(m.IDs), fmtDur(opts.Bound), fmtDur(slowest))
	return r
}

// TasksOnce: no task ran on two nodes at once. Evidence comes from the
// task logs (start and finish lines per node) and from the ServerNode the
// API showed (a task that moves from one node to another while running
// was claimed twice).
func TasksOnce(h *history.History, m *TaskModel) Result {
	r := Result{Name: CheckTasksOnce}
	if len(m.IDs) == 0 {
		r.Status, r.Summary = Skip, "no task was created in this history"
		return r
	}
	clk := newClock(h)
	_, histEnd := h.Span()
	var ev evidence
	concurrent, twice, moved, logs := 0, 0, 0, 0
	for _, id := range m.IDs {
		ex := m.Executions[id]
		if len(ex) > 0 {
			logs++ // a log with start/finish lines (real Octopus logs have none)
		}
		found := false
		for i := 0; i < len(ex); i++ {
			for j := i + 1; j < len(ex); j++ {
				a, b := ex[i], ex[j]
				aEnd, bEnd := orEnd(a.End, histEnd), orEnd(b.End, histEnd)
				from, to := later(a.Start, b.Start), earlier(aEnd, bEnd)
				if to.After(from) && a.Node != b.Node {
					if !found {
						concurrent++
						found = true
					}
					ev.problem("%s ran on %s and %s at once: %s–%s on %s, %s–%s on %s, overlapping %s",
						id, a.Node, b.Node, clk.at(a.Start), clk.at(a.End), a.Node, clk.at(b.Start), clk.at(b.End), b.Node, fmtDur(to.Sub(from)))
				}
			}
		}
		if !found && len(ex) > 1 {
			twice++
			nodes := make([]string, len(ex))
			for i, e := range ex {
				nodes[i] = e.Node + " at " + clk.at(e.Start)
			}
			ev.problem("%s ran %d times, one after the other: %s", id, len(ex), strings.Join(nodes, ", "))
		}
		// The API's view: ServerNode changing while the task was not
		// terminal means two nodes claimed it.
		prev := ""
		for _, o := range m.obs[id] {
			if o.view.Node == "" {
				continue
			}
			if prev != "" && o.view.Node != prev && !history.TaskTerminal(o.view.State) {
				moved++
				ev.problem("%s was claimed by %s, then shown %s on %s at %s", id, prev, o.view.State, o.view.Node, clk.at(o.at))
				if !found {
					concurrent++
					found = true
				}
			}
			prev = o.view.Node
		}
	}
	r.Figures = []Figure{
		{Name: "tasks", Value: float64(len(m.IDs)), Unit: "count"},
		{Name: "logs-with-executions", Value: float64(logs), Unit: "count"},
		{Name: FindingDoubleExecution, Value: float64(concurrent), Unit: "count"},
		{Name: "sequential-reruns", Value: float64(twice), Unit: "count"},
	}
	r.Evidence = ev.lines()
	if concurrent+twice > 0 {
		r.Status = Fail
		r.Summary = fmt.Sprintf("%d tasks executed on two nodes at once, %d ran twice one after the other (of %d; %d logs with start/finish lines)", concurrent, twice, len(m.IDs), logs)
		return r
	}
	if logs == 0 {
		seen := 0
		for _, id := range m.IDs {
			for _, o := range m.obs[id] {
				if o.view.Node != "" {
					seen++
					break
				}
			}
		}
		if seen == 0 {
			r.Status = Skip
			r.Summary = "no task log had start/finish lines and no task was seen on a node: nothing to compare"
			return r
		}
		r.Status = Pass
		r.Summary = fmt.Sprintf("no running task moved to another node (ServerNode of %d tasks; their logs have no start/finish lines to compare)", seen)
		return r
	}
	r.Status = Pass
	r.Summary = fmt.Sprintf("each of %d tasks ran on one node (%d logs with start/finish lines)", len(m.IDs), logs)
	return r
}

func orEnd(t, end time.Time) time.Time {
	if t.IsZero() {
		return end
	}
	return t
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

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
func TasksCancel(h *history.History, m *TaskModel) Result {
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
