package checker

import (
	"strings"
	"testing"
	"time"

	"github.com/octoha/octoha/harness/history"
)

// taskBuilder adds task ops to a builder.
type taskBuilder struct{ b builder }

func (tb *taskBuilder) create(id string, t float64) {
	tb.b.add(history.Op{Kind: history.KindTaskCreate, Start: at(t), End: at(t + 0.01), Outcome: history.OK, Status: 201, Task: id, Node: "Node1"})
}

func tp(s float64) *time.Time { v := at(s); return &v }

// seen records a poll at t showing the task in state on node.
func (tb *taskBuilder) seen(id, state, node string, t float64) {
	v := history.TaskView{ID: id, State: state, Node: node}
	if history.TaskTerminal(state) {
		v.CompletedTime = tp(t - 0.05)
	}
	tb.b.add(history.Op{Kind: history.KindTaskPoll, Start: at(t - 0.01), End: at(t), Outcome: history.OK, Status: 200, Tasks: []history.TaskView{v}})
}

func (tb *taskBuilder) final(v history.TaskView, t float64) {
	tb.b.add(history.Op{Kind: history.KindTaskFinal, Start: at(t - 0.01), End: at(t), Outcome: history.OK, Status: 200, Task: v.ID, Tasks: []history.TaskView{v}})
}

func (tb *taskBuilder) log(id string, ex ...history.Execution) {
	tb.b.add(history.Op{Kind: history.KindTaskLog, Start: at(100), End: at(100.01), Outcome: history.OK, Status: 200, Task: id, Executions: ex})
}

func (tb *taskBuilder) nodes(via string, t float64, nv ...history.NodeView) {
	tb.b.add(history.Op{Kind: history.KindTaskNodes, Start: at(t - 0.01), End: at(t), Outcome: history.OK, Status: 200, Via: via, NodeList: nv})
}

func (tb *taskBuilder) cancel(id string, t float64) {
	tb.b.add(history.Op{Kind: history.KindTaskCancel, Start: at(t), End: at(t + 0.01), Outcome: history.OK, Status: 200, Task: id})
}

func exec(node string, start, end float64, state string) history.Execution {
	e := history.Execution{Node: node, Start: at(start), State: state}
	if end > 0 {
		e.End = at(end)
	}
	return e
}

func mustStatus(t *testing.T, r Result, want Status) {
	t.Helper()
	if r.Status != want {
		t.Fatalf("%s: status %s, want %s: %s\n%s", r.Name, r.Status, want, r.Summary, strings.Join(r.Evidence, "\n"))
	}
}

func mustEvidence(t *testing.T, r Result, parts ...string) {
	t.Helper()
	all := r.Summary + "\n" + strings.Join(r.Evidence, "\n")
	for _, p := range parts {
		if !strings.Contains(all, p) {
			t.Errorf("%s: want %q in the verdict:\n%s", r.Name, p, all)
		}
	}
}

func TestTasksTerminalStuckTaskNamed(t *testing.T) {
	var tb taskBuilder
	tb.create("ServerTasks-1", 1)
	tb.create("ServerTasks-2", 1)
	tb.create("ServerTasks-3", 1)
	tb.seen("ServerTasks-1", history.TaskExecuting, "Node1", 2)
	tb.seen("ServerTasks-1", history.TaskSuccess, "Node1", 4)
	tb.seen("ServerTasks-2", history.TaskExecuting, "Node2", 2)
	tb.seen("ServerTasks-3", history.TaskCancelling, "Node1", 2)
	h := &tb.b.h
	r := TasksTerminal(h, NewTaskModel(h), TaskOptions{Bound: 10 * time.Second})
	mustStatus(t, r, Fail)
	mustEvidence(t, r, "ServerTasks-2 on Node2: still Executing", "ServerTasks-3 on Node1: still Cancelling")
	if r.Value("stuck") != 2 {
		t.Errorf("stuck = %v, want 2", r.Value("stuck"))
	}

	var ok taskBuilder
	ok.create("ServerTasks-1", 1)
	ok.seen("ServerTasks-1", history.TaskSuccess, "Node1", 3)
	h = &ok.b.h
	r = TasksTerminal(h, NewTaskModel(h), TaskOptions{Bound: 10 * time.Second})
	mustStatus(t, r, Pass)
	mustEvidence(t, r, "tasks by node: Node1 1")
	// The same task past a tighter bound is late.
	r = TasksTerminal(h, NewTaskModel(h), TaskOptions{Bound: time.Second})
	mustStatus(t, r, Fail)
	mustEvidence(t, r, "ServerTasks-1 on Node1: Success only after")
}

func TestTasksOnceCatchesDoubleExecution(t *testing.T) {
	var tb taskBuilder
	tb.create("ServerTasks-7", 1)
	tb.create("ServerTasks-8", 1)
	tb.log("ServerTasks-7", exec("Node1", 2, 4, "Success"), exec("Node3", 2.5, 4.5, "Success"))
	tb.log("ServerTasks-8", exec("Node2", 2, 3, "Success"))
	h := &tb.b.h
	r := TasksOnce(h, NewTaskModel(h))
	mustStatus(t, r, Fail)
	mustEvidence(t, r, "ServerTasks-7 ran on Node1 and Node3 at once", "overlapping 1.500s")
	if r.Value(FindingDoubleExecution) != 1 {
		t.Errorf("%s = %v, want 1", FindingDoubleExecution, r.Value(FindingDoubleExecution))
	}
}

func TestTasksOnceCatchesServerNodeMove(t *testing.T) {
	var tb taskBuilder
	tb.create("ServerTasks-1", 1)
	tb.seen("ServerTasks-1", history.TaskExecuting, "Node1", 2)
	tb.seen("ServerTasks-1", history.TaskExecuting, "Node2", 2.5)
	tb.seen("ServerTasks-1", history.TaskSuccess, "Node2", 4)
	tb.log("ServerTasks-1", exec("Node2", 2.2, 3.9, "Success"))
	h := &tb.b.h
	r := TasksOnce(h, NewTaskModel(h))
	mustStatus(t, r, Fail)
	mustEvidence(t, r, "ServerTasks-1 was claimed by Node1, then shown Executing on Node2")
}

func TestTasksOncePassesAndSkipsWithoutLogs(t *testing.T) {
	var tb taskBuilder
	tb.create("ServerTasks-1", 1)
	tb.create("ServerTasks-2", 1)
	tb.log("ServerTasks-1", exec("Node1", 2, 3, "Success"))
	tb.log("ServerTasks-2", exec("Node1", 2, 3, "Success"))
	h := &tb.b.h
	mustStatus(t, TasksOnce(h, NewTaskModel(h)), Pass)

	var none taskBuilder
	none.create("ServerTasks-1", 1)
	h = &none.b.h
	mustStatus(t, TasksOnce(h, NewTaskModel(h)), Skip)

	// A real cluster's logs have no start/finish lines: the tasks'
	// ServerNode is the evidence.
	var real taskBuilder
	real.create("ServerTasks-1", 1)
	real.seen("ServerTasks-1", history.TaskExecuting, "OCTO1", 2)
	real.seen("ServerTasks-1", history.TaskSuccess, "OCTO1", 3)
	real.log("ServerTasks-1")
	h = &real.b.h
	r := TasksOnce(h, NewTaskModel(h))
	mustStatus(t, r, Pass)
	mustEvidence(t, r, "ServerNode of 1 tasks")
}

func TestTasksCapOverrun(t *testing.T) {
	var tb taskBuilder
	tb.nodes("Node1", 0.5, history.NodeView{Name: "Node1", MaxConcurrentTasks: 2}, history.NodeView{Name: "Node2", MaxConcurrentTasks: 2})
	for i, id := range []string{"ServerTasks-1", "ServerTasks-2", "ServerTasks-3"} {
		tb.create(id, 1)
		tb.log(id, exec("Node1", 2+0.1*float64(i), 5, "Success"))
	}
	h := &tb.b.h
	r := TasksCap(h, NewTaskModel(h), TaskOptions{Poll: 200 * time.Millisecond})
	mustStatus(t, r, Fail)
	mustEvidence(t, r, "Node1 started ServerTasks-3", "already ran 2 tasks (cap 2)")
	if r.Value("peak-running-Node1") != 3 {
		t.Errorf("peak = %v, want 3", r.Value("peak-running-Node1"))
	}

	// A node list showing more running than any cap is an overrun too.
	var obs taskBuilder
	obs.nodes("Node2", 1, history.NodeView{Name: "Node1", MaxConcurrentTasks: 2, RunningTasks: 3})
	h = &obs.b.h
	r = TasksCap(h, NewTaskModel(h), TaskOptions{})
	mustStatus(t, r, Fail)
	mustEvidence(t, r, "Node1 showed 3 running tasks", "above its cap 2")
}

func TestTasksCapFollowsCapChanges(t *testing.T) {
	var tb taskBuilder
	tb.nodes("Node1", 0.5, history.NodeView{Name: "Node1", MaxConcurrentTasks: 1})
	tb.create("ServerTasks-1", 1)
	tb.create("ServerTasks-2", 1)
	tb.log("ServerTasks-1", exec("Node1", 2, 6, "Success"))
	// Raised to 2 at t=3: the second start at 3.1 is within the cap.
	tb.b.add(history.Op{Kind: history.KindTaskCap, Start: at(3), End: at(3.01), Outcome: history.OK, NodeList: []history.NodeView{{Name: "Node1", MaxConcurrentTasks: 2}}})
	tb.log("ServerTasks-2", exec("Node1", 3.1, 5, "Success"))
	h := &tb.b.h
	mustStatus(t, TasksCap(h, NewTaskModel(h), TaskOptions{Poll: 200 * time.Millisecond}), Pass)

	// Lowered back to 1 at 3.5: a start at 4 (beyond one poll) while two run is an overrun.
	tb.b.add(history.Op{Kind: history.KindTaskCap, Start: at(3.5), End: at(3.51), Outcome: history.OK, NodeList: []history.NodeView{{Name: "Node1", MaxConcurrentTasks: 1}}})
	tb.create("ServerTasks-3", 1)
	tb.log("ServerTasks-3", exec("Node1", 4, 4.5, "Success"))
	h = &tb.b.h
	r := TasksCap(h, NewTaskModel(h), TaskOptions{Poll: 200 * time.Millisecond})
	mustStatus(t, r, Fail)
	mustEvidence(t, r, "Node1 started ServerTasks-3", "(cap 1)")
}

func TestTasksDrainStartAfterDrain(t *testing.T) {
	var tb taskBuilder
	tb.b.fault("drain-1", "drain", "Node2", 10, 20)
	tb.create("ServerTasks-1", 1)
	tb.create("ServerTasks-2", 1)
	tb.create("ServerTasks-3", 1)
	tb.log("ServerTasks-1", exec("Node2", 9, 12, "Success"))    // running at the drain: finishes
	tb.log("ServerTasks-2", exec("Node2", 10.1, 11, "Success")) // within one poll: allowed
	tb.log("ServerTasks-3", exec("Node2", 13, 14, "Success"))   // after: a violation
	h := &tb.b.h
	r := TasksDrain(h, NewTaskModel(h), TaskOptions{Poll: 500 * time.Millisecond})
	mustStatus(t, r, Fail)
	mustEvidence(t, r, "Node2 started ServerTasks-3 at t+", "after its drain")
	if r.Value("started-while-drained") != 1 {
		t.Errorf("started-while-drained = %v, want 1", r.Value("started-while-drained"))
	}
}

func TestTasksLeaderTwoLeadersAndTakeover(t *testing.T) {
	var tb taskBuilder
	lead := func(l string) []history.NodeView {
		out := []history.NodeView{}
		for _, n := range []string{"Node1", "Node2", "Node3"} {
			rank := "Follower"
			if strings.Contains(l, n) {
				rank = RankLeader
			}
			out = append(out, history.NodeView{Name: n, Rank: rank, MaxConcurrentTasks: 5})
		}
		return out
	}
	tb.nodes("Node2", 1, lead("Node1")...)
	tb.b.fault("kill-1", "kill", "Node1", 2, 0)
	tb.nodes("Node2", 3, lead("Node1")...)
	tb.nodes("Node2", 5.5, lead("Node3")...)
	h := &tb.b.h
	r := TasksLeader(h, TaskOptions{LeaderBound: 5 * time.Second})
	mustStatus(t, r, Pass)
	if got := r.Value("leader-takeover"); got < 3.49 || got > 3.51 {
		t.Errorf("leader-takeover = %v, want 3.5", got)
	}
	mustEvidence(t, r, "Node3 took over after 3.500s")

	tb.nodes("Node3", 6, lead("Node2 Node3")...)
	h = &tb.b.h
	r = TasksLeader(h, TaskOptions{LeaderBound: 5 * time.Second})
	mustStatus(t, r, Fail)
	mustEvidence(t, r, "through Node3 shows 2 leaders: Node2, Node3")

	r = TasksLeader(h, TaskOptions{LeaderBound: 2 * time.Second})
	mustEvidence(t, r, "Node3 leads only 3.500s later")
}

func TestTasksLeaderNoTakeover(t *testing.T) {
	var tb taskBuilder
	tb.nodes("Node2", 1, history.NodeView{Name: "Node1", Rank: RankLeader}, history.NodeView{Name: "Node2", Rank: "Follower"})
	tb.b.fault("kill-1", "kill", "Node1", 2, 0)
	tb.nodes("Node2", 9, history.NodeView{Name: "Node1", Rank: RankLeader, Offline: true}, history.NodeView{Name: "Node2", Rank: "Follower"})
	h := &tb.b.h
	r := TasksLeader(h, TaskOptions{})
	mustStatus(t, r, Fail)
	mustEvidence(t, r, "leader Node1", "no other node was seen leading afterwards")
}

func TestTasksDeadNode(t *testing.T) {
	var tb taskBuilder
	tb.create("ServerTasks-1", 1)
	tb.create("ServerTasks-2", 1)
	tb.create("ServerTasks-3", 1)
	tb.create("ServerTasks-4", 1)
	tb.b.fault("kill-1", "kill", "Node2", 5, 0)
	tb.log("ServerTasks-1", exec("Node2", 2, 0, ""))
	tb.log("ServerTasks-2", exec("Node2", 3, 0, ""))
	tb.log("ServerTasks-3", exec("Node2", 3, 0, ""))
	tb.log("ServerTasks-4", exec("Node1", 3, 7, "Success"))
	tb.final(history.TaskView{ID: "ServerTasks-1", State: history.TaskFailed, Node: "Node2", CompletedTime: tp(9), Error: "The node Node2 running this task went offline"}, 20)
	tb.final(history.TaskView{ID: "ServerTasks-2", State: history.TaskTimedOut, Node: "Node2", CompletedTime: tp(9)}, 20)
	tb.final(history.TaskView{ID: "ServerTasks-3", State: history.TaskExecuting, Node: "Node2"}, 20)
	tb.final(history.TaskView{ID: "ServerTasks-4", State: history.TaskSuccess, Node: "Node1", CompletedTime: tp(7)}, 20)
	h := &tb.b.h
	r := TasksDeadNode(h, NewTaskModel(h), TaskOptions{OfflineBound: 6 * time.Second})
	mustStatus(t, r, Fail)
	mustEvidence(t, r, "ServerTasks-2 was running on Node2 when it was killed and ended TimedOut, not Failed",
		"ServerTasks-3 was running on Node2 when it was killed (kill-1) and is still Executing")
	if r.Value("orphaned-tasks") != 3 {
		t.Errorf("orphaned = %v, want 3", r.Value("orphaned-tasks"))
	}
	if got := r.Value("dead-node-tasks-failed-after"); got != 4 {
		t.Errorf("failed-after = %v, want 4", got)
	}
	// Too slow for a tight bound.
	r = TasksDeadNode(h, NewTaskModel(h), TaskOptions{OfflineBound: 3 * time.Second})
	mustEvidence(t, r, "ServerTasks-1 (running on Node2) Failed only 4.000s after the kill")
}

func TestTasksCancelIgnored(t *testing.T) {
	var tb taskBuilder
	tb.create("ServerTasks-1", 1)
	tb.create("ServerTasks-2", 1)
	tb.create("ServerTasks-3", 1)
	tb.cancel("ServerTasks-1", 2)
	tb.cancel("ServerTasks-2", 2)
	tb.cancel("ServerTasks-3", 2)
	// ServerTasks-4 ends on its own 50 ms after the cancel: its node polls
	// every 100 ms, so it could not have seen the cancel yet.
	tb.create("ServerTasks-4", 1)
	tb.cancel("ServerTasks-4", 2)
	tb.final(history.TaskView{ID: "ServerTasks-4", State: history.TaskSuccess, Node: "Node2", CompletedTime: tp(2.06)}, 10)
	tb.final(history.TaskView{ID: "ServerTasks-1", State: history.TaskCanceled, Node: "Node1", CompletedTime: tp(2.5)}, 10)
	tb.final(history.TaskView{ID: "ServerTasks-2", State: history.TaskSuccess, Node: "Node3", CompletedTime: tp(4)}, 10)
	tb.final(history.TaskView{ID: "ServerTasks-3", State: history.TaskSuccess, Node: "Node1", CompletedTime: tp(1.5)}, 10)
	h := &tb.b.h
	r := TasksCancel(h, NewTaskModel(h), TaskOptions{CancelGrace: 100 * time.Millisecond})
	mustStatus(t, r, Fail)
	mustEvidence(t, r, "ServerTasks-2 on Node3: cancelled at", "ended Success", "ServerTasks-3 ended Success at t+",
		"ServerTasks-4 ended Success at t+1.060s, within one poll (100ms) of the cancel")
	if r.Value("cancel-ignored") != 1 {
		t.Errorf("cancel-ignored = %v, want 1", r.Value("cancel-ignored"))
	}
}

func TestEvaluateAddsTaskChecksOnlyWhenAsked(t *testing.T) {
	var tb taskBuilder
	tb.create("ServerTasks-1", 1)
	tb.seen("ServerTasks-1", history.TaskSuccess, "Node1", 2)
	h := &tb.b.h
	if _, ok := Evaluate(h, nil, Options{}).Result(CheckTasksTerminal); ok {
		t.Fatal("task checks ran without Options.Tasks")
	}
	rep := Evaluate(h, nil, Options{Tasks: &TaskOptions{}})
	for _, n := range []string{CheckTasksTerminal, CheckTasksOnce, CheckTasksCap, CheckTasksDrain, CheckTasksLeader, CheckTasksDeadNode, CheckTasksCancel} {
		if _, ok := rep.Result(n); !ok {
			t.Errorf("check %s missing", n)
		}
	}
}
