package scenarios_test

import (
	"net/http"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/octoha/octoha/harness/checker"
	"github.com/octoha/octoha/harness/nemesis"
	"github.com/octoha/octoha/harness/traffic"
)

var _ = Describe("Partition", Label(LFailover, LDocker), func() {
	It("ejects a node cut off the network and takes it back once the network heals", func(ctx SpecContext) {
		s := newScenario(ctx)
		c := s.up(catalogueSpec(3))
		if err := nemesis.Partition.Available(c); err != nil {
			Skip("network partitions need the docker provider (make chaos PROVIDER=docker): " + err.Error())
		}
		spec := c.Spec()
		s.apiLoad("ping", 40, func(o *traffic.AttackOptions) { o.Timeout = 2 * time.Second })
		s.waitOps("ping", 20)

		By("disconnecting Node2 from the cluster's network")
		part, err := nemesis.Inject(ctx, s.env, nemesis.Partition, "Node2")
		Expect(err).NotTo(HaveOccurred())
		bound := lbBound(spec, spec.LB.Fall+1)
		Eventually(func() string { return s.lbState("Node2") }).WithTimeout(bound).WithPolling(20 * time.Millisecond).Should(Equal("DOWN"))
		s.figure("partition-to-lb-down", time.Since(part.Start()).Seconds(), "s")
		Consistently(func() int { return ping(ctx, c.URL()) }).WithTimeout(2 * time.Second).WithPolling(100 * time.Millisecond).Should(Equal(http.StatusOK))

		By("reconnecting Node2")
		Expect(part.Recover(ctx)).To(Succeed())
		healed := time.Now()
		Eventually(func() string { return s.lbState("Node2") }).WithTimeout(lbBound(spec, spec.LB.Rise) + 2*time.Second).WithPolling(20 * time.Millisecond).Should(Equal("UP"))
		s.figure("heal-to-lb-up", time.Since(healed).Seconds(), "s")
		s.expectServesAgain("Node2", healed)
		s.stopBackground()

		rep := s.check(checker.Options{
			Convergence: checker.ConvergenceOptions{EjectWithin: bound + 2*time.Second},
			MinOps:      []checker.MinOpsRule{{Kind: "ping", N: 20}},
			ErrorWindow: checker.ErrorWindowOptions{Grace: 3 * time.Second},
		})
		expectPassed(rep, "history", "min-ops:ping", "convergence", "error-window")
	}, SpecTimeout(4*time.Minute))
})
