package scenario

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/octoha/octoha/harness/checker"
	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/history"
	"github.com/octoha/octoha/harness/nemesis"
	"github.com/octoha/octoha/harness/tasks"
)

// TaskPlan describes the server tasks a scenario queues (documentation
// and the tasks label; the Steps queue them).
type TaskPlan struct {
	Count    int
	Duration time.Duration
}

// Task timing of the simulated clusters: Octopus polls its queue every
// 20 s and calls a node offline after minutes; scenarios shrink both so a
// run takes seconds, keeping their ratio to the task length.
const (
	taskPoll         = 200 * time.Millisecond
	taskOfflineAfter = 3 * time.Second
	// taskWatch is how often the driver reads the tasks and node lists.
	taskWatch = 150 * time.Millisecond
)

// taskShape is the simulated cluster of the task scenarios: a real
// database (PostgreSQL where installed), a local directory for the task
// logs, a short task poll and offline bound.
func taskShape(nodes, taskCap int) Shape {
	return Shape{Nodes: nodes, Storage: cluster.StorageLocal, MaxConcurrentTasks: taskCap, TaskPoll: taskPoll, OfflineAfter: taskOfflineAfter}
}

// taskChecks declares the task checks a scenario runs, all to pass.
func taskChecks(names ...string) []Check { return append(checks("history"), checks(names...)...) }

// TaskCheckOptions are the bounds the task checks judge a cluster's
// tasks by, from its nodes' poll, offline bound, heartbeat and leader
// lease: every task terminal within bound (0: the checker's default),
// and the named checks only (none: all).
func TaskCheckOptions(spec cluster.Spec, bound time.Duration, names ...string) *checker.TaskOptions {
	return taskOptions(spec, bound, names...)
}

// taskOptions are the bounds the checks judge a scenario's tasks by.
func taskOptions(spec cluster.Spec, bound time.Duration, names ...string) *checker.TaskOptions {
	poll, offline := nodeTaskPoll(spec), nodeOfflineAfter(spec)
	// A follower leads once the leader's lease ran out (the fake node's
	// lease: 3 heartbeats, at least 3 s); the leader fails a dead node's
	// tasks once its heartbeat is older than offline-after. Both clocks
	// start at the kill; add a heartbeat, two polls and a second of slack.
	lease := nodeLeaderLease(spec)
	slack := spec.Node.Heartbeat + 2*poll + time.Second
	return &checker.TaskOptions{
		Bound: bound, Poll: 2 * poll, CancelGrace: poll,
		OfflineBound: max(offline, lease) + slack,
		LeaderBound:  lease + slack,
		Checks:       names,
	}
}

// taskRig is a task driver following a scenario's tasks in the
// background.
type taskRig struct {
	d    *tasks.Driver
	tmpl tasks.Template
	stop context.CancelFunc
	done chan struct{}
}

// errNoTask is why task scenarios skip on a real cluster whose YAML names
// no task to queue.
var errNoTask = fmt.Errorf("%w: the cluster's YAML names no task the operator accepts to queue (external.task), so the harness creates none on a real cluster", ErrSkip)

// startTasks builds the driver for r's cluster and starts following the
// queue and the node list; tasks of the fake node run for dur. On a real
// cluster the YAML's task is queued instead, or the scenario skips.
func startTasks(r Run, dur time.Duration) (*taskRig, error) {
	spec := r.Spec()
	tmpl := tasks.FakeTemplate(dur)
	if spec.Provider == cluster.ProviderExternal {
		t, ok := ExternalTaskTemplate(spec)
		if !ok {
			return nil, errNoTask
		}
		tmpl = t
	}
	c := r.Cluster()
	var nodes []tasks.Node
	for _, n := range c.Nodes() {
		nodes = append(nodes, tasks.Node{Name: n.Name, URL: n.URL})
	}
	d, err := tasks.New(tasks.Options{URL: c.URL(), APIKey: c.APIKey(), SpaceID: spec.SpaceID, Nodes: nodes, Recorder: r.Env().Recorder, Timeout: 2 * time.Second})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	rig := &taskRig{d: d, tmpl: tmpl, stop: cancel, done: make(chan struct{})}
	go func() { defer close(rig.done); d.Watch(ctx, taskWatch) }()
	return rig, nil
}

// close stops following the queue.
func (t *taskRig) close() {
	t.stop()
	<-t.done
}

// queueInBackground creates n tasks at rate per second; the channel yields
// the IDs once.
func (t *taskRig) queueInBackground(ctx context.Context, n int, rate float64) <-chan []string {
	ch := make(chan []string, 1)
	go func() {
		ids, _ := t.d.CreateMany(ctx, n, rate, t.tmpl)
		ch <- ids
	}()
	return ch
}

// waitRunning waits until the driver sees node running a task it
// follows.
func (t *taskRig) waitRunning(ctx context.Context, node string, within time.Duration) error {
	return t.waitRunningN(ctx, node, 1, within)
}

// waitRunningN waits until the driver sees node running n of its tasks.
func (t *taskRig) waitRunningN(ctx context.Context, node string, n int, within time.Duration) error {
	return Eventually(ctx, fmt.Sprintf("%s runs %d tasks", node, n), within, 50*time.Millisecond, func() error {
		if got := len(t.d.RunningOn(node)); got < n {
			return fmt.Errorf("%d so far", got)
		}
		return nil
	})
}

// finish waits (bounded) for every task to be terminal, reads each one's
// final state and log, stops following, and runs the checks.
func (t *taskRig) finish(ctx context.Context, r Run, within time.Duration, opts *checker.TaskOptions) (*checker.Report, error) {
	r.Step("waiting up to %s for every task to be terminal", within)
	open, err := t.d.WaitTerminal(ctx, within, 100*time.Millisecond)
	if err != nil {
		return nil, err
	}
	if len(open) > 0 {
		r.Note("%d tasks not terminal after %s (the checks name them)", len(open), within)
	}
	t.d.ObserveNodes(ctx)
	t.close()
	r.Step("reading every task's final state and log")
	if err := t.d.Finish(ctx); err != nil {
		r.Note("%v", err)
	}
	counts := t.d.Counts()
	var parts []string
	for _, s := range []string{history.TaskSuccess, history.TaskFailed, history.TaskCanceled, history.TaskTimedOut, history.TaskExecuting, history.TaskCancelling, history.TaskQueued} {
		if counts[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[s], s))
		}
	}
	r.Note("%d tasks: %s", len(t.d.Tasks()), strings.Join(parts, ", "))
	return r.Check(ctx, checker.Options{Tasks: opts})
}

// leaderOf waits until the node list names one leader.
func (t *taskRig) leaderOf(ctx context.Context, within time.Duration) (string, error) {
	var l string
	err := Eventually(ctx, "the node list names a leader", within, 50*time.Millisecond, func() error {
		if l = t.d.Leader(); l == "" {
			return errors.New("no single leader yet")
		}
		return nil
	})
	return l, err
}

// TaskQueueNodeKilled: the queue keeps moving when a node dies mid-run.
func TaskQueueNodeKilled() Scenario {
	return Scenario{
		Title:   "Tasks — node killed under load",
		Claim:   "When a node running tasks is killed the others take over the queue, every task ends, none runs twice, and the dead node's running tasks end Failed naming it within the offline bound.",
		Needs:   []cluster.Capability{cluster.CapKill},
		Shape:   taskShape(3, 4),
		Tasks:   &TaskPlan{Count: 36, Duration: 1500 * time.Millisecond},
		Faults:  []FaultPlan{{Fault: nemesis.KindKill, Target: "a node running tasks"}},
		Checks:  taskChecks(checker.CheckTasksTerminal, checker.CheckTasksOnce, checker.CheckTasksCap, checker.CheckTasksDeadNode, checker.CheckTasksLeader),
		Timeout: 2 * time.Minute,
		Steps:   taskQueueNodeKilledSteps,
	}
}

func taskQueueNodeKilledSteps(ctx context.Context, r Run) error {
	rig, err := startTasks(r, 1500*time.Millisecond)
	if err != nil {
		return err
	}
	defer rig.close()
	r.Step("queueing 36 tasks of 1.5 s at 12/s through the load balancer")
	created := rig.queueInBackground(ctx, 36, 12)
	victim := r.Cluster().Nodes()[1].Name
	// Under load: a third of the tasks queued, the victim busy.
	if err := Eventually(ctx, "12 tasks created", 20*time.Second, 50*time.Millisecond, func() error {
		if n := len(rig.d.Tasks()); n < 12 {
			return fmt.Errorf("%d so far", n)
		}
		return nil
	}); err != nil {
		return err
	}
	if err := rig.waitRunningN(ctx, victim, 2, 20*time.Second); err != nil {
		return err
	}
	orphans := rig.d.RunningOn(victim)
	r.Step("SIGKILL %s while it runs %s", victim, strings.Join(orphans, ", "))
	if _, err := r.Inject(ctx, nemesis.Kill, victim); err != nil {
		return err
	}
	ids := <-created
	if len(ids) < 30 {
		return fmt.Errorf("only %d of 36 tasks were created", len(ids))
	}
	_, err = rig.finish(ctx, r, 40*time.Second, taskOptions(r.Spec(), 45*time.Second))
	return err
}

// TaskDrain: a drained node finishes what it runs and starts nothing new.
func TaskDrain() Scenario {
	return Scenario{
		Title:   "Tasks — drain with running tasks",
		Needs:   []cluster.Capability{cluster.CapDrain},
		Claim:   "A node put in maintenance mode finishes the tasks it runs and starts none after one poll, while the other nodes take the queue and honour cancels sent through any node.",
		Shape:   taskShape(3, 3),
		Tasks:   &TaskPlan{Count: 30, Duration: 2 * time.Second},
		Faults:  []FaultPlan{{Fault: nemesis.KindDrain, Target: "a node running tasks"}},
		Checks:  taskChecks(checker.CheckTasksTerminal, checker.CheckTasksOnce, checker.CheckTasksCap, checker.CheckTasksDrain, checker.CheckTasksCancel),
		Timeout: 2 * time.Minute,
		Steps:   taskDrainSteps,
	}
}

func taskDrainSteps(ctx context.Context, r Run) error {
	rig, err := startTasks(r, 2*time.Second)
	if err != nil {
		return err
	}
	defer rig.close()
	target := r.Cluster().Nodes()[len(r.Cluster().Nodes())-1].Name
	r.Step("queueing 30 tasks of 2 s at 10/s through the load balancer")
	created := rig.queueInBackground(ctx, 30, 10)
	if err := rig.waitRunning(ctx, target, 20*time.Second); err != nil {
		return err
	}
	running := rig.d.RunningOn(target)
	r.Step("draining %s while it runs %s", target, strings.Join(running, ", "))
	drain, err := r.Inject(ctx, nemesis.Drain, target)
	if err != nil {
		return err
	}
	// A cancel sent through the load balancer must reach the node that
	// runs the task (OctopusDeploy/Issues#7903).
	other := r.Cluster().Nodes()[0].Name
	if err := rig.waitRunningN(ctx, other, 2, 20*time.Second); err != nil {
		return err
	}
	victims := rig.d.RunningOn(other)[:2]
	r.Step("cancelling %s, running on %s, through the load balancer", strings.Join(victims, " and "), other)
	for _, id := range victims {
		if err := rig.d.Cancel(ctx, id); err != nil {
			return err
		}
	}
	ids := <-created
	if len(ids) < 25 {
		return fmt.Errorf("only %d of 30 tasks were created", len(ids))
	}
	if _, err := rig.d.WaitTerminal(ctx, 40*time.Second, 100*time.Millisecond); err != nil {
		return err
	}
	// The tasks it was running when drained must have finished there.
	for _, v := range rig.d.Tasks() {
		if slices.Contains(running, v.ID) && v.State != history.TaskSuccess {
			return fmt.Errorf("%s was running on %s when it was drained and ended %s, not Success", v.ID, target, v.State)
		}
	}
	if err := drain.Recover(ctx); err != nil {
		return err
	}
	_, err = rig.finish(ctx, r, 10*time.Second, taskOptions(r.Spec(), 45*time.Second))
	return err
}

// TaskLeaderKilled: a follower takes over leader-only work.
func TaskLeaderKilled() Scenario {
	return Scenario{
		Title:   "Tasks — leader killed",
		Claim:   "When the leader is killed exactly one follower becomes leader within the offline bound, and the queue keeps moving.",
		Needs:   []cluster.Capability{cluster.CapKill, cluster.CapSimulated},
		Shape:   taskShape(3, 4),
		Tasks:   &TaskPlan{Count: 20, Duration: time.Second},
		Faults:  []FaultPlan{{Fault: nemesis.KindKill, Target: "the leader"}},
		Checks:  taskChecks(checker.CheckTasksLeader, checker.CheckTasksTerminal, checker.CheckTasksOnce, checker.CheckTasksDeadNode),
		Timeout: 2 * time.Minute,
		Steps:   taskLeaderKilledSteps,
	}
}

func taskLeaderKilledSteps(ctx context.Context, r Run) error {
	rig, err := startTasks(r, time.Second)
	if err != nil {
		return err
	}
	defer rig.close()
	leader, err := rig.leaderOf(ctx, 15*time.Second)
	if err != nil {
		return err
	}
	r.Step("queueing 20 tasks of 1 s at 5/s; the leader is %s", leader)
	created := rig.queueInBackground(ctx, 20, 5)
	if err := Sleep(ctx, time.Second); err != nil { // some tasks in flight when it dies
		return err
	}
	r.Step("SIGKILL the leader %s", leader)
	kill, err := r.Inject(ctx, nemesis.Kill, leader)
	if err != nil {
		return err
	}
	var next string
	bound := taskOptions(r.Spec(), 0).LeaderBound
	if err := Eventually(ctx, "a follower leads", bound+5*time.Second, 20*time.Millisecond, func() error {
		if next = rig.d.Leader(); next == "" || next == leader {
			return fmt.Errorf("leader %q", next)
		}
		return nil
	}); err != nil {
		return err
	}
	r.Figure("follower-to-leader", time.Since(kill.Start()).Seconds(), "s")
	r.Note("%s leads %.1f s after %s was killed", next, time.Since(kill.Start()).Seconds(), leader)
	<-created
	_, err = rig.finish(ctx, r, 40*time.Second, taskOptions(r.Spec(), 45*time.Second, checker.CheckTasksLeader, checker.CheckTasksTerminal, checker.CheckTasksOnce, checker.CheckTasksDeadNode))
	return err
}

// TaskDatabaseOutage: the queue survives losing its database.
func TaskDatabaseOutage() Scenario {
	return Scenario{
		Title:   "Tasks — database outage mid-queue",
		Claim:   "When the shared database goes away mid-queue and returns, every task still ends, none runs twice and no node exceeds its cap.",
		Needs:   []cluster.Capability{cluster.CapDBOutage},
		Shape:   taskShape(3, 4),
		Tasks:   &TaskPlan{Count: 30, Duration: time.Second},
		Faults:  []FaultPlan{{Fault: nemesis.KindDBOutage}},
		Checks:  taskChecks(checker.CheckTasksTerminal, checker.CheckTasksOnce, checker.CheckTasksCap),
		Timeout: 2 * time.Minute,
		Steps:   taskDatabaseOutageSteps,
	}
}

func taskDatabaseOutageSteps(ctx context.Context, r Run) error {
	return tasksAcrossDBFault(ctx, r, "stopping the database for 3 s", func(ctx context.Context) error {
		if _, err := r.Hold(ctx, nemesis.DatabaseOutage, "", 3*time.Second); err != nil {
			return err
		}
		return Eventually(ctx, "the load balancer serves again", 30*time.Second, 50*time.Millisecond, PingIs(ctx, r.Cluster().URL(), 200))
	})
}

// tasksAcrossDBFault is the choreography of a database fault mid-queue:
// 20 tasks queued, the fault (which returns once the cluster serves
// again), 10 more, then every task must end, none twice, no node above
// its cap.
func tasksAcrossDBFault(ctx context.Context, r Run, what string, fault func(ctx context.Context) error) error {
	rig, err := startTasks(r, time.Second)
	if err != nil {
		return err
	}
	defer rig.close()
	r.Step("queueing 20 tasks of 1 s at 10/s")
	ids, err := rig.d.CreateMany(ctx, 20, 10, rig.tmpl)
	if err != nil {
		return err
	}
	r.Step("%s with %d tasks queued or running", what, len(ids))
	if err := fault(ctx); err != nil {
		return err
	}
	r.Step("queueing 10 more after the database returned")
	if _, err := rig.d.CreateMany(ctx, 10, 10, rig.tmpl); err != nil {
		return err
	}
	_, err = rig.finish(ctx, r, 45*time.Second, taskOptions(r.Spec(), 60*time.Second, checker.CheckTasksTerminal, checker.CheckTasksOnce, checker.CheckTasksCap))
	return err
}

// TaskCapChange: a task cap changed through the API applies at run time.
func TaskCapChange() Scenario {
	return Scenario{
		Title:   "Tasks — cap changed at run time",
		Claim:   "A node's MaxConcurrentTasks changed through the API applies from its next poll: raised, it runs more at once; lowered, it starts no task above the new cap.",
		Needs:   []cluster.Capability{cluster.CapSimulated},
		Shape:   taskShape(2, 2),
		Tasks:   &TaskPlan{Count: 40, Duration: time.Second},
		Checks:  taskChecks(checker.CheckTasksTerminal, checker.CheckTasksOnce, checker.CheckTasksCap),
		Timeout: 2 * time.Minute,
		Steps:   taskCapChangeSteps,
	}
}

func taskCapChangeSteps(ctx context.Context, r Run) error {
	rig, err := startTasks(r, time.Second)
	if err != nil {
		return err
	}
	defer rig.close()
	node := r.Cluster().Nodes()[0].Name
	r.Step("queueing 40 tasks of 1 s at once (cap 2 on each of 2 nodes)")
	if _, err := rig.d.CreateMany(ctx, 40, 0, rig.tmpl); err != nil {
		return err
	}
	if err := rig.waitRunning(ctx, node, 10*time.Second); err != nil {
		return err
	}
	r.Step("raising %s's task cap to 6 through the API", node)
	raised := time.Now()
	if err := rig.d.SetCap(ctx, node, 6); err != nil {
		return err
	}
	if err := Eventually(ctx, node+" runs more than its old cap", 5*time.Second, 20*time.Millisecond, func() error {
		if n := len(rig.d.RunningOn(node)); n <= 2 {
			return fmt.Errorf("%d running", n)
		}
		return nil
	}); err != nil {
		return err
	}
	r.Figure("cap-raise-applied-after", time.Since(raised).Seconds(), "s")
	r.Step("lowering %s's task cap to 1", node)
	if err := rig.d.SetCap(ctx, node, 1); err != nil {
		return err
	}
	_, err = rig.finish(ctx, r, 40*time.Second, taskOptions(r.Spec(), 60*time.Second, checker.CheckTasksTerminal, checker.CheckTasksOnce, checker.CheckTasksCap))
	return err
}

// TaskUnsafeClaim is the broken control of the task queue: nodes that
// claim tasks without the lock run one task on two nodes at once, as
// Octopus 2023.3 did (OctopusDeploy/Issues#8356); the double-execution
// check must catch it and name the task and both nodes.
func TaskUnsafeClaim() Scenario {
	return Scenario{
		Title:        "Tasks — unlocked claim (broken)",
		Claim:        "Nodes that claim queued tasks without the write lock run the same task on two nodes at once, and the harness names the task and both nodes (OctopusDeploy/Issues#8356).",
		Needs:        []cluster.Capability{cluster.CapSimulated},
		Shape:        Shape{Nodes: 3, Storage: cluster.StorageLocal, MaxConcurrentTasks: 10, TaskPoll: taskPoll, OfflineAfter: taskOfflineAfter, UnsafeTaskClaim: true},
		Tasks:        &TaskPlan{Count: 40, Duration: 500 * time.Millisecond},
		Checks:       append(taskChecks(checker.CheckTasksTerminal), Check{Name: checker.CheckTasksOnce, ExpectFail: true, Finding: checker.FindingDoubleExecution}),
		Timeout:      2 * time.Minute,
		Providers:    []string{Local, Docker},
		ProviderNote: "it runs deliberately broken nodes",
		Steps:        taskUnsafeClaimSteps,
	}
}

func taskUnsafeClaimSteps(ctx context.Context, r Run) error {
	rig, err := startTasks(r, 500*time.Millisecond)
	if err != nil {
		return err
	}
	defer rig.close()
	r.Step("queueing 40 tasks of 0.5 s at once on nodes that claim without the lock")
	if _, err := rig.d.CreateMany(ctx, 40, 0, rig.tmpl); err != nil {
		return err
	}
	rep, err := rig.finish(ctx, r, 30*time.Second, taskOptions(r.Spec(), 40*time.Second, checker.CheckTasksTerminal, checker.CheckTasksOnce))
	if err != nil {
		return err
	}
	if res, ok := rep.Result(checker.CheckTasksOnce); ok && len(res.Evidence) > 0 {
		r.Note("caught: %s", res.Evidence[0])
	}
	return nil
}
