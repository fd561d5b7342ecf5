package scenarios_test

import (
	"fmt"
	"math"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
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
// for taskTime, so a node's capacity is cap/taskTime tasks per second.
var _ = Describe("Capacity", Label(LCapacity), func() {
	const (
		taskTime = 200 * time.Millisecond
		measure  = 5 * time.Second
	)
	DescribeTable("losing one node of N costs about 1/N of the cluster's task throughput",
		func(ctx SpecContext, nodes, taskCap int) {
			s := newScenario(ctx)
			spec := cluster.Defaults()
			spec.Nodes = nodes
			spec.Node.MaxConcurrentTasks = taskCap
			c := s.up(spec)
			s.requireFault(nemesis.Kill)
			spec = c.Spec()
			capacity := float64(nodes*taskCap) / taskTime.Seconds()
			s.figure("planned-capacity", capacity, "tasks/s")

			By(fmt.Sprintf("offering 1.5× the cluster's capacity (%.0f tasks/s) through the load balancer", capacity))
			rate := int(1.5 * capacity)
			s.apiLoad(traffic.TargetWork, rate, func(o *traffic.AttackOptions) {
				o.WorkDuration, o.WorkWait, o.Timeout = taskTime, 250*time.Millisecond, 3*time.Second
				o.Workers, o.MaxWorkers = 64, 2000
				o.Rate = vegeta.Rate{Freq: rate, Per: time.Second}
			})
			s.waitOps(history.KindWork, rate) // about a second of steady load
			beforeFrom := time.Now()
			waitFor(ctx, measure)
			beforeTo := time.Now()

			victim := c.Nodes()[nodes-1].Name
			By("SIGKILL " + victim)
			kill, err := nemesis.Inject(ctx, s.env, nemesis.Kill, victim)
			Expect(err).NotTo(HaveOccurred())
			s.waitLB(victim, "DOWN", lbBound(spec, spec.LB.Fall))
			waitFor(ctx, time.Second) // let the survivors' slots settle
			afterFrom := time.Now()
			waitFor(ctx, measure)
			afterTo := time.Now()
			s.stopBackground()
			Expect(kill.Recover(ctx)).To(Succeed())

			h := s.loadHistory()
			before := completedPerSecond(h, beforeFrom, beforeTo)
			after := completedPerSecond(h, afterFrom, afterTo)
			drop := 1 - after/before
			want := 1 / float64(nodes)
			s.figure("throughput-before", before, "tasks/s")
			s.figure("throughput-after", after, "tasks/s")
			s.figure("capacity-drop", 100*drop, "%")
			s.figure("expected-drop", 100*want, "%")
			s.note("%d nodes × cap %d: %.0f tasks/s before, %.0f after losing one: −%.0f%% (expected −%.0f%%)", nodes, taskCap, before, after, 100*drop, 100*want)

			Expect(before).To(BeNumerically("~", capacity, 0.15*capacity), "the cluster delivers its planned capacity before the fault")
			Expect(math.Abs(drop-want)).To(BeNumerically("<=", 0.1), "losing 1 of %d nodes should cost about %.0f%% of throughput; measured %.0f%%", nodes, 100*want, 100*drop)

			// The load is 1.5× capacity on purpose: tasks that find no free
			// slot get the node's 503, which is not a fault of the cluster.
			rep := s.check(checker.Options{
				MinOps:      []checker.MinOpsRule{{Kind: history.KindWork, N: rate}},
				ErrorWindow: checker.ErrorWindowOptions{IgnoreStatus: []int{503}},
			})
			expectPassed(rep, "history", "min-ops:work", "error-window")
		},
		Entry("2 large nodes (task cap 20 each)", 2, 20, SpecTimeout(3*time.Minute)),
		Entry("4 small nodes (task cap 10 each)", 4, 10, SpecTimeout(3*time.Minute)),
	)
})

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

// waitFor lets a measurement window pass (this is the measurement itself,
// not a readiness wait), ending early if the spec is interrupted.
func waitFor(ctx SpecContext, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
