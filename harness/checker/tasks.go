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
	// CancelGrace is how long after a cancel the node running the task may
	// still end it as if it had not seen the cancel (the fake node learns
	// of a cancel at its next task poll); 0 accepts no such race.
	CancelGrace time.Duration
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
		{CheckTasksCancel, func() Result { return TasksCancel(h, m, opts) }},
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
