package scenarios_test

import (
	"encoding/json"
	"io"
	"net/http"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/octoha/octoha/fakes/api"
	"github.com/octoha/octoha/harness/checker"
	"github.com/octoha/octoha/harness/nemesis"
)

var _ = Describe("Health check", Label(LHealth, LDocker, LExternal), func() {
	It("answers 200 when healthy, 418 when draining, 503 without the database, and the load balancer follows", Label(LDrain, LDatabase), func(ctx SpecContext) {
		s := newScenario(ctx)
		c := s.up(catalogueSpec(3))
		spec := c.Spec()
		s.apiLoad("ping", 60)
		s.waitOps("ping", 30)

		By("every node answers 200 with its own node JSON, and so does the load balancer")
		for _, n := range c.Nodes() {
			resp, err := http.Get(n.URL + api.PingPath)
			Expect(err).NotTo(HaveOccurred())
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			Expect(resp.StatusCode).To(Equal(http.StatusOK), "%s ping", n.Name)
			var pn api.Node
			Expect(json.Unmarshal(body, &pn)).To(Succeed(), "%s ping body is node JSON", n.Name)
			Expect(pn.Id).To(Equal(n.ID))
			Expect(pn.IsInMaintenanceMode).To(BeFalse())
			s.waitLB(n.Name, "UP", 0)
		}
		Expect(ping(ctx, c.URL())).To(Equal(http.StatusOK), "load balancer ping")

		drained, other := c.Nodes()[1], c.Nodes()[0]
		By("draining " + drained.Name + " through the API: its ping answers 418 and the load balancer takes it out")
		drain, err := nemesis.Inject(ctx, s.env, nemesis.Drain, drained.Name)
		Expect(err).NotTo(HaveOccurred())
		Eventually(func() int { return ping(ctx, drained.URL) }).WithTimeout(spec.Node.Heartbeat + time.Second).
			WithPolling(20 * time.Millisecond).Should(Equal(http.StatusTeapot))
		s.figure("drain-to-418", time.Since(drain.Start()).Seconds(), "s")
		s.waitLB(drained.Name, "OUT", spec.Node.Heartbeat+lbBound(spec, spec.LB.Fall))
		s.figure("drain-to-lb-out", time.Since(drain.Start()).Seconds(), "s")
		Consistently(func() int { return ping(ctx, other.URL) }).WithTimeout(time.Second).Should(Equal(http.StatusOK), "%s keeps serving", other.Name)

		By("undraining: 200 again and back in the load balancer")
		Expect(drain.Recover(ctx)).To(Succeed())
		undrained := time.Now()
		s.waitLB(drained.Name, "UP", spec.Node.Heartbeat+lbBound(spec, spec.LB.Rise))
		s.figure("undrain-to-lb-up", time.Since(undrained).Seconds(), "s")
		s.expectServesAgain(drained.Name, undrained)

		if err := nemesis.DatabaseOutage.Available(c); err != nil {
			s.note("database step skipped: %v", err)
		} else {
			By("stopping the database: every node answers 503 and the load balancer has nothing to serve")
			outage, err := nemesis.Inject(ctx, s.env, nemesis.DatabaseOutage, "")
			Expect(err).NotTo(HaveOccurred())
			unhealthy := spec.Node.UnhealthyAfter + 2*spec.Node.Heartbeat + 2*time.Second
			for _, n := range c.Nodes() {
				Eventually(func() int { return ping(ctx, n.URL) }).WithTimeout(unhealthy).WithPolling(50*time.Millisecond).
					Should(Equal(http.StatusServiceUnavailable), "%s without its database", n.Name)
			}
			s.figure("db-down-to-all-503", time.Since(outage.Start()).Seconds(), "s")
			Eventually(func() int { return ping(ctx, c.URL()) }).WithTimeout(lbBound(spec, spec.LB.Fall)).WithPolling(20*time.Millisecond).
				Should(Equal(http.StatusServiceUnavailable), "the load balancer answers 503 with every node out")
			s.figure("db-down-to-lb-503", time.Since(outage.Start()).Seconds(), "s")

			By("starting the database again: nodes recover by themselves")
			Expect(outage.Recover(ctx)).To(Succeed())
			restarted := time.Now()
			for _, n := range c.Nodes() {
				Eventually(func() int { return ping(ctx, n.URL) }).WithTimeout(30*time.Second).WithPolling(50*time.Millisecond).
					Should(Equal(http.StatusOK), "%s after the database returned", n.Name)
			}
			Eventually(func() int { return ping(ctx, c.URL()) }).WithTimeout(lbBound(spec, spec.LB.Rise)).WithPolling(20 * time.Millisecond).Should(Equal(http.StatusOK))
			s.figure("db-up-to-lb-200", time.Since(restarted).Seconds(), "s")
		}
		s.stopBackground()

		rep := s.check(checker.Options{
			Convergence: checker.ConvergenceOptions{EjectWithin: spec.Node.Heartbeat + lbBound(spec, spec.LB.Fall), RejoinWithin: spec.Node.Heartbeat + lbBound(spec, spec.LB.Rise)},
			MinOps:      []checker.MinOpsRule{{Kind: "ping", N: 20}},
			ErrorWindow: checker.ErrorWindowOptions{Grace: 2 * time.Second},
		})
		expectPassed(rep, "history", "min-ops:ping", "convergence", "error-window")
	}, SpecTimeout(3*time.Minute))
})
