package scenario

import (
	"context"
	"fmt"
	"math"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/octoha/octoha/harness/checker"
	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/history"
	"github.com/octoha/octoha/harness/nemesis"
	"github.com/octoha/octoha/harness/traffic"
)

// Capacity is the seed's sizing argument made measurable: the same total
// task capacity as 2 large nodes or 4 small ones; losing one node costs
// 1/N of it. Each task holds one of its node's MaxConcurrentTasks slots
// for capacityTaskTime, so a node's capacity is cap/taskTime tasks/s.
func Capacity(nodes, taskCap int) Scenario {
	size := "large"
	if nodes > 2 {
		size = "small"
	}
	return Scenario{
		Title:        fmt.Sprintf("Capacity — %d %s nodes", nodes, size),
		Claim:        fmt.Sprintf("%d nodes with a task cap of %d each deliver their planned task throughput, and losing one costs about 1/%d of it.", nodes, taskCap, nodes),
		Needs:        []cluster.Capability{cluster.CapKill, cluster.CapSimulated},
		Shape:        Shape{Nodes: nodes, DB: cluster.DBSQLite, Storage: cluster.StorageLocal, MaxConcurrentTasks: taskCap},
		Load:         []Load{{Target: traffic.TargetWork}},
		Faults:       []FaultPlan{{Fault: nemesis.KindKill, Target: "the last node"}},
		Checks:       checks("history", "min-ops:work", "error-window"),
		Timeout:      3 * time.Minute,
		Providers:    []string{Local},
		ProviderNote: "the measurement needs the host's CPU to itself and task slots the docker provider does not shape",
		Steps:        func(ctx context.Context, r Run) error { return capacitySteps(ctx, r, nodes, taskCap) },
	}
}

const (
	capacityTaskTime = 200 * time.Millisecond
	capacityMeasure  = 5 * time.Second
)

func capacitySteps(ctx context.Context, r Run, nodes, taskCap int) error {
	c, spec := r.Cluster(), r.Spec()
	capacity := float64(nodes*taskCap) / capacityTaskTime.Seconds()
	r.Figure("planned-capacity", capacity, "tasks/s")
	r.Step("offering 1.5× the cluster's capacity (%.0f tasks/s) through the load balancer", capacity)
	rate := int(1.5 * capacity)
	if err := r.Attack(traffic.TargetWork, rate, func(o *traffic.AttackOptions) {
		o.WorkDuration, o.WorkWait, o.Timeout = capacityTaskTime, 250*time.Millisecond, 3*time.Second
		o.Workers, o.MaxWorkers = 64, 2000
		o.Rate = vegeta.Rate{Freq: rate, Per: time.Second}
	}); err != nil {
		return err
	}
	if err := r.WaitOps(ctx, history.KindWork, rate); err != nil { // about a second of steady load
		return err
	}
	beforeFrom := time.Now()
	if err := Sleep(ctx, capacityMeasure); err != nil {
		return err
	}
	beforeTo := time.Now()
	victim := c.Nodes()[nodes-1].Name
	r.Step("SIGKILL %s", victim)
	kill, err := r.Inject(ctx, nemesis.Kill, victim)
	if err != nil {
		return err
	}
	if err := r.WaitLB(ctx, victim, "DOWN", LBBound(spec, spec.LB.Fall)); err != nil {
		return err
	}
	if err := Sleep(ctx, time.Second); err != nil { // let the survivors' slots settle
		return err
	}
	afterFrom := time.Now()
	if err := Sleep(ctx, capacityMeasure); err != nil {
		return err
	}
	afterTo := time.Now()
	r.StopLoad()
	if err := kill.Recover(ctx); err != nil {
		return err
	}
	h, err := r.History()
	if err != nil {
		return err
	}
	before := completedPerSecond(h, beforeFrom, beforeTo)
	after := completedPerSecond(h, afterFrom, afterTo)
	drop := 1 - after/before
	want := 1 / float64(nodes)
	r.Figure("throughput-before", before, "tasks/s")
	r.Figure("throughput-after", after, "tasks/s")
	r.Figure("capacity-drop", 100*drop, "%")
	r.Figure("expected-drop", 100*want, "%")
	r.Note("%d nodes × cap %d: %.0f tasks/s before, %.0f after losing one: −%.0f%% (expected −%.0f%%)", nodes, taskCap, before, after, 100*drop, 100*want)
	if math.Abs(before-capacity) > 0.15*capacity {
		return fmt.Errorf("the cluster delivered %.0f tasks/s before the fault, want its planned capacity %.0f ±15%%", before, capacity)
	}
	if math.Abs(drop-want) > 0.1 {
		return fmt.Errorf("losing 1 of %d nodes should cost about %.0f%% of throughput; measured %.0f%%", nodes, 100*want, 100*drop)
	}
	// The load is 1.5× capacity on purpose: tasks that find no free slot
	// get the node's 503, which is not a fault of the cluster.
	_, err = r.Check(ctx, checker.Options{
		MinOps:      []checker.MinOpsRule{{Kind: history.KindWork, N: rate}},
		ErrorWindow: checker.ErrorWindowOptions{IgnoreStatus: []int{503}},
	})
	return err
}

// completedPerSecond counts acknowledged tasks that ended in [from, to).
func completedPerSecond(h *history.History, from, to time.Time) float64 {
	n := 0
	for _, op := range h.Ops {
		if op.Kind == history.KindWork && op.Outcome == history.OK && !op.End.Before(from) && op.End.Before(to) {
			n++
		}
	}
	return float64(n) / to.Sub(from).Seconds()
}
