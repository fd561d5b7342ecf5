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
		s.requireFault(nemesis.Partition)
		spec := c.Spec()
		s.apiLoad("ping", 40, func(o *traffic.AttackOptions) { o.Timeout = 2 * time.Second })
		s.waitOps("ping", 20)

		victim := c.Nodes()[1].Name
		By("disconnecting " + victim + " from the cluster's network")
		part, err := nemesis.Inject(ctx, s.env, nemesis.Partition, victim)
		Expect(err).NotTo(HaveOccurred())
		bound := lbBound(spec, spec.LB.Fall+1)
		s.waitLB(victim, "DOWN", bound)
		s.figure("partition-to-lb-down", time.Since(part.Start()).Seconds(), "s")
		Consistently(func() int { return ping(ctx, c.URL()) }).WithTimeout(2 * time.Second).WithPolling(100 * time.Millisecond).Should(Equal(http.StatusOK))

		By("reconnecting " + victim)
		Expect(part.Recover(ctx)).To(Succeed())
		healed := time.Now()
		s.waitLB(victim, "UP", lbBound(spec, spec.LB.Rise)+2*time.Second)
		s.figure("heal-to-lb-up", time.Since(healed).Seconds(), "s")
		s.expectServesAgain(victim, healed)
		s.stopBackground()

		rep := s.check(checker.Options{
			Convergence: checker.ConvergenceOptions{EjectWithin: bound + 2*time.Second},
			MinOps:      []checker.MinOpsRule{{Kind: "ping", N: 20}},
			ErrorWindow: checker.ErrorWindowOptions{Grace: 3 * time.Second},
		})
		expectPassed(rep, "history", "min-ops:ping", "convergence", "error-window")
	}, SpecTimeout(4*time.Minute))
})
