package scenario

// The seed's sizing argument on real tasks: a queue kept full, one node\n// killed, the throughput drop measured.

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/octoha/octoha/harness/checker"
	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/history"
	"github.com/octoha/octoha/harness/nemesis"
	"github.com/octoha/octoha/harness/tasks"
)

// TaskCapacity is the seed's sizing argument on real tasks: the same total
// task cap as 2 large nodes or 4 small ones, a backlog kept queued, one
// node killed: the throughput drops by about 1/N.
func TaskCapacity(nodes, taskCap int) Scenario {
	size := "large"
	if nodes > 2 {
		size = "small"
	}
	return Scenario{
		Title: fmt.Sprintf("Tasks capacity — %d %s nodes", nodes, size),
		Claim: fmt.Sprintf("%d nodes with a task cap of %d each work a task queue at their combined cap; losing one costs about 1/%d of the throughput.", nodes, taskCap, nodes),
		Topic: LCapacity,
		Needs: []cluster.Capability{cluster.CapKill, cluster.CapSimulated},
		// No retention task: the measurement counts only the harness's own.
		Shape: Shape{Nodes: nodes, DB: cluster.DBSQLite, Storage: cluster.StorageLocal, MaxConcurrentTasks: taskCap,
			TaskPoll: taskPoll, OfflineAfter: taskOfflineAfter, RetentionInterval: -1},
		Tasks:        &TaskPlan{Duration: taskCapacityTime},
		Faults:       []FaultPlan{{Fault: nemesis.KindKill, Target: "the last node"}},
		Checks:       taskChecks(checker.CheckTasksOnce, checker.CheckTasksCap),
		Timeout:      2 * time.Minute,
		Providers:    []string{Local},
		ProviderNote: "the measurement needs the host's CPU to itself",
		Steps:        func(ctx context.Context, r Run) error { return taskCapacitySteps(ctx, r, nodes, taskCap) },
	}
}

const (
	taskCapacityTime    = 2 * time.Second
	taskCapacityMeasure = 8 * time.Second
)

func taskCapacitySteps(ctx context.Context, r Run, nodes, taskCap int) error {
	rig, err := startTasks(r, taskCapacityTime)
	if err != nil {
		return err
	}
	defer rig.close()
	total := nodes * taskCap
	// A slot is busy for the task (2 s on average), then idle until its
	// node's next poll.
	planned := float64(total) / (taskCapacityTime + taskPoll/2).Seconds()
	r.Figure("planned-capacity", planned, "tasks/s")
	r.Step("keeping %d tasks queued beyond the cluster's %d slots", total, total)
	fillCtx, stopFill := context.WithCancel(ctx)
	var fillErr error
	filled := make(chan struct{})
	// Task lengths vary (uniform over ±50% of the mean, from the run's
	// seed) so the slots do not free up in waves that the measurement
	// windows would cut at random.
	rng := rand.New(rand.NewPCG(uint64(r.Seed()), 7))
	next := func() tasks.Template {
		d := taskCapacityTime/2 + time.Duration(rng.Int64N(int64(taskCapacityTime)))
		t := rig.tmpl
		if t.Arguments["DurationMs"] != nil {
			t = tasks.FakeTemplate(d)
		}
		return t
	}
	go func() { defer close(filled); fillErr = keepQueued(fillCtx, rig, total, next) }()
	defer func() { stopFill(); <-filled }()
	if err := Eventually(ctx, "every slot busy", 15*time.Second, 50*time.Millisecond, func() error {
		running := 0
		for _, n := range rig.d.Nodes() {
			running += n.RunningTasks
		}
		if running < total {
			return fmt.Errorf("%d of %d slots busy", running, total)
		}
		return nil
	}); err != nil {
		return err
	}
	// The slots filled together: let the longest task (1.5× the mean)
	// pass so that completions are spread, not missing from the window's
	// start.
	if err := Sleep(ctx, 3*taskCapacityTime/2); err != nil {
		return err
	}
	beforeFrom := time.Now()
	if err := Sleep(ctx, taskCapacityMeasure); err != nil {
		return err
	}
	beforeTo := time.Now()
	victim := r.Cluster().Nodes()[nodes-1].Name
	r.Step("SIGKILL %s", victim)
	if _, err := r.Inject(ctx, nemesis.Kill, victim); err != nil {
		return err
	}
	// The survivors' slots are already busy: the next window is theirs.
	if err := Sleep(ctx, taskCapacityTime); err != nil {
		return err
	}
	afterFrom := time.Now()
	if err := Sleep(ctx, taskCapacityMeasure); err != nil {
		return err
	}
	afterTo := time.Now()
	stopFill()
	<-filled
	if fillErr != nil {
		return fillErr
	}
	r.Step("cancelling the tasks still queued")
	for _, v := range rig.d.Tasks() {
		if v.State == history.TaskQueued {
			_ = rig.d.Cancel(ctx, v.ID)
		}
	}
	if _, err := rig.finish(ctx, r, 30*time.Second, taskOptions(r.Spec(), 0, checker.CheckTasksOnce, checker.CheckTasksCap)); err != nil {
		return err
	}
	done := rig.d.Tasks()
	before := successesPerSecond(done, beforeFrom, beforeTo)
	after := successesPerSecond(done, afterFrom, afterTo)
	drop := 1 - after/before
	want := 1 / float64(nodes)
	r.Figure("throughput-before", before, "tasks/s")
	r.Figure("throughput-after", after, "tasks/s")
	r.Figure("capacity-drop", 100*drop, "%")
	r.Figure("expected-drop", 100*want, "%")
	r.Note("%d nodes × cap %d: %.1f tasks/s before, %.1f after losing one: −%.0f%% (expected −%.0f%%)", nodes, taskCap, before, after, 100*drop, 100*want)
	if math.Abs(drop-want) > 0.1 {
		return fmt.Errorf("losing 1 of %d nodes should cost about %.0f%% of task throughput; measured %.0f%% (%.1f → %.1f tasks/s)", nodes, 100*want, 100*drop, before, after)
	}
	return nil
}

// keepQueued tops the queue up to depth queued tasks until ctx ends. A
// create that fails (the balancer still sending to a killed node) is in
// the history; only a queue that cannot be fed at all is an error.
func keepQueued(ctx context.Context, rig *taskRig, depth int, next func() tasks.Template) error {
	failures := 0
	for ctx.Err() == nil {
		queued := rig.d.Counts()[history.TaskQueued]
		for i := queued; i < depth && ctx.Err() == nil; i++ {
			if _, err := rig.d.Create(ctx, next()); err != nil && ctx.Err() == nil {
				if failures++; failures > 2*depth {
					return fmt.Errorf("feeding the queue: %d creates failed in a row, the last: %w", failures, err)
				}
				continue
			}
			failures = 0
		}
		if err := Sleep(ctx, taskWatch); err != nil {
			return nil
		}
	}
	return nil
}

// successesPerSecond counts tasks that ended Success in [from, to), by the
// server's completion time.
func successesPerSecond(vs []history.TaskView, from, to time.Time) float64 {
	n := 0
	for _, v := range vs {
		if v.State == history.TaskSuccess && v.CompletedTime != nil && !v.CompletedTime.Before(from) && v.CompletedTime.Before(to) {
			n++
		}
	}
	return float64(n) / to.Sub(from).Seconds()
}
