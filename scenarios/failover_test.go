package scenarios_test

import (
	"net/http"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/octoha/octoha/harness/checker"
	"github.com/octoha/octoha/harness/history"
	"github.com/octoha/octoha/harness/nemesis"
	"github.com/octoha/octoha/harness/traffic"
)

var _ = Describe("Drain under load", Label(LDrain, LUpload, LLB, LDocker, LExternal), func() {
	It("stops new requests to a drained node within the health-check bound, lets its in-flight upload finish, and takes it back on undrain", func(ctx SpecContext) {
		s := newScenario(ctx)
		c := s.up(catalogueSpec(3))
		spec := c.Spec()
		s.apiLoad("ping", 40)
		s.apiLoad("nodes", 20)
		s.waitOps("ping", 20)

		By("uploading packages through the load balancer")
		uploads := s.uploadInBackground(s.uploadOptions(3, 3, cfg.uploadSize))
		target := s.nodeWithActiveUpload(30 * time.Second)
		knowsUploads := target != ""
		if !knowsUploads {
			target = c.Nodes()[len(c.Nodes())-1].Name
		}

		By("draining " + target + " while it receives an upload")
		drain, err := nemesis.Inject(ctx, s.env, nemesis.Drain, target)
		Expect(err).NotTo(HaveOccurred())
		bound := spec.Node.Heartbeat + lbBound(spec, spec.LB.Fall)
		s.waitLB(target, "OUT", bound)
		s.figure("drain-to-lb-out", time.Since(drain.Start()).Seconds(), "s")

		By("waiting for the uploads to finish")
		var sum *traffic.UploadSummary
		Eventually(uploads).WithTimeout(5 * time.Minute).Should(Receive(&sum))
		Expect(sum.Err()).NotTo(HaveOccurred(), "every upload succeeds while a node drains")
		s.figure("upload-throughput", sum.Throughput/1e6, "MB/s")

		// Hold the drain at least one full bound so "no new requests" is
		// measured over a meaningful window.
		if rest := time.Until(drain.Start().Add(2 * bound)); rest > 0 {
			Consistently(func() int { return ping(ctx, s.node(target).URL) }).WithTimeout(rest).Should(Equal(http.StatusTeapot))
		}
		By("undraining " + target)
		Expect(drain.Recover(ctx)).To(Succeed())
		s.waitLB(target, "UP", spec.Node.Heartbeat+lbBound(spec, spec.LB.Rise))
		undrained := time.Now()
		s.expectServesAgain(target, undrained)
		s.stopBackground()

		By("the upload in flight on the drained node completed with 201")
		h := s.loadHistory()
		inFlight := 0
		for _, op := range h.OpsOfKind(history.KindUpload) {
			if op.Node == target && op.Start.Before(drain.Start()) && op.End.After(drain.Start()) {
				Expect(op.Status).To(Equal(http.StatusCreated), "upload %s %s in flight on %s when it was drained", op.PackageID, op.Version, target)
				inFlight++
			}
		}
		if knowsUploads {
			Expect(inFlight).To(BeNumerically(">=", 1), "an upload was in flight on %s when it was drained", target)
		}
		s.figure("uploads-in-flight-at-drain", float64(inFlight), "ops")

		rep := s.check(checker.Options{
			Convergence: checker.ConvergenceOptions{EjectWithin: bound, RejoinWithin: spec.Node.Heartbeat + lbBound(spec, spec.LB.Rise)},
			MinOps:      []checker.MinOpsRule{{Kind: "ping", N: 20}},
			// Pings that reach the draining node before it is ejected get its
			// 418: that is what a drain looks like through a load balancer.
			ErrorWindow: checker.ErrorWindowOptions{IgnoreStatus: []int{http.StatusTeapot}},
		})
		expectPassed(rep, "history", "min-ops:ping", "durability", "no-leftovers", "convergence", "error-window", "upload-path")
		conv, _ := rep.Result("convergence")
		s.figure("eject-after-drain", conv.Value("eject-max"), "s")
	}, SpecTimeout(8*time.Minute))
})

var _ = Describe("Kill mid-upload", Label(LFailover, LUpload, LDocker, LExternal), func() {
	It("fails only the uploads on the killed node, retries them on another, loses nothing acknowledged and leaves no partial file", func(ctx SpecContext) {
		s := newScenario(ctx)
		c := s.up(catalogueSpec(3))
		s.requireFault(nemesis.Kill)
		spec := c.Spec()
		s.apiLoad("ping", 40)
		s.waitOps("ping", 20)

		By("uploading packages concurrently through the load balancer")
		uploads := s.uploadInBackground(s.uploadOptions(3, 3, cfg.uploadSize))
		victim := s.nodeWithActiveUpload(30 * time.Second)
		if victim == "" {
			victim = c.Nodes()[len(c.Nodes())-1].Name
		}

		By("SIGKILL " + victim + " while it receives an upload")
		kill, err := nemesis.Inject(ctx, s.env, nemesis.Kill, victim)
		Expect(err).NotTo(HaveOccurred())
		s.waitLB(victim, "DOWN", lbBound(spec, spec.LB.Fall))
		s.figure("kill-to-lb-down", time.Since(kill.Start()).Seconds(), "s")

		var sum *traffic.UploadSummary
		Eventually(uploads).WithTimeout(5 * time.Minute).Should(Receive(&sum))
		Expect(sum.Err()).NotTo(HaveOccurred(), "the client's retries through the load balancer succeed")
		s.figure("upload-throughput", sum.Throughput/1e6, "MB/s")

		By("restarting " + victim)
		Expect(kill.Recover(ctx)).To(Succeed())
		s.stopBackground()

		By("only uploads on " + victim + " failed, and their retries succeeded elsewhere")
		h := s.loadHistory()
		retried := map[string]bool{}
		for _, op := range h.OpsOfKind(history.KindUpload) {
			if op.Outcome == history.OK {
				continue
			}
			Expect(op.Node).To(BeElementOf(victim, ""), "a failed upload attempt was answered by %s, not the killed node: %+v", op.Node, op)
			Expect(op.End).To(BeTemporally(">=", kill.Start()), "upload attempt %d failed before the kill", op.Seq)
			retried[op.PackageID+"@"+op.Version] = true
		}
		Expect(retried).NotTo(BeEmpty(), "the kill hit an upload")
		for _, p := range sum.Packages {
			if retried[p.Spec.PackageID+"@"+p.Spec.Version] {
				Expect(p.Node).NotTo(Equal(victim), "retry of %s landed on the killed node", p.Spec.FileName())
				Expect(p.Attempts).To(BeNumerically(">", 1))
			}
		}
		s.figure("uploads-retried", float64(len(retried)), "packages")

		By("no partial file survives: the restarted node sweeps its temporary files")
		s.expectNoTempFiles()

		rep := s.check(checker.Options{
			Convergence: checker.ConvergenceOptions{EjectWithin: lbBound(spec, spec.LB.Fall)},
			MinOps:      []checker.MinOpsRule{{Kind: "ping", N: 20}},
			ErrorWindow: checker.ErrorWindowOptions{IgnoreStatus: []int{http.StatusConflict}},
		})
		expectPassed(rep, "history", "min-ops:ping", "durability", "no-leftovers", "convergence", "error-window")
		conv, _ := rep.Result("convergence")
		s.figure("eject-after-kill", conv.Value("eject-max"), "s")
		ew, _ := rep.Result("error-window")
		s.figure("client-failures-during-kill", ew.Value("failures"), "ops")
	}, SpecTimeout(8*time.Minute))
})

var _ = Describe("Pause", Label(LFailover, LDocker, LExternal), func() {
	It("ejects a frozen node on health-check timeouts and serves from it again once it resumes", func(ctx SpecContext) {
		s := newScenario(ctx)
		c := s.up(catalogueSpec(3))
		s.requireFault(nemesis.Pause)
		spec := c.Spec()
		s.apiLoad("ping", 60, func(o *traffic.AttackOptions) { o.Timeout = 2 * time.Second })
		s.waitOps("ping", 30)

		victim := c.Nodes()[1].Name
		By("SIGSTOP " + victim)
		pause, err := nemesis.Inject(ctx, s.env, nemesis.Pause, victim)
		Expect(err).NotTo(HaveOccurred())
		// A frozen node accepts connections but never answers: each check
		// times out after an interval, so ejection takes (fall+1) intervals.
		bound := lbBound(spec, spec.LB.Fall+1)
		s.waitLB(victim, "DOWN", bound)
		s.figure("pause-to-lb-down", time.Since(pause.Start()).Seconds(), "s")
		Consistently(func() int { return ping(ctx, c.URL()) }).WithTimeout(2*time.Second).WithPolling(100*time.Millisecond).Should(Equal(http.StatusOK), "the cluster serves while %s is frozen", victim)

		By("SIGCONT " + victim)
		Expect(pause.Recover(ctx)).To(Succeed())
		resumed := time.Now()
		s.waitLB(victim, "UP", lbBound(spec, spec.LB.Rise))
		s.figure("resume-to-lb-up", time.Since(resumed).Seconds(), "s")
		s.expectServesAgain(victim, resumed)
		s.stopBackground()

		rep := s.check(checker.Options{
			Convergence: checker.ConvergenceOptions{EjectWithin: bound + 2*time.Second, RejoinWithin: lbBound(spec, spec.LB.Rise) + time.Second},
			MinOps:      []checker.MinOpsRule{{Kind: "ping", N: 30}},
			ErrorWindow: checker.ErrorWindowOptions{Grace: 3 * time.Second},
		})
		expectPassed(rep, "history", "min-ops:ping", "convergence", "error-window")
		ew, _ := rep.Result("error-window")
		s.figure("client-failures-during-pause", ew.Value("failures"), "ops")
	}, SpecTimeout(3*time.Minute))
})
