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

// outageUploadSize keeps uploads of the outage scenarios short enough that
// several overlap the outage.
func outageUploadSize() int64 { return min(cfg.uploadSize, 256<<20) }

var _ = Describe("Database outage", Label(LDatabase, LDocker, LExternal), func() {
	It("makes every node report unhealthy, recovers by itself when the database returns, and loses no acknowledged upload", func(ctx SpecContext) {
		s := newScenario(ctx)
		c := s.up(catalogueSpec(3))
		spec := c.Spec()
		s.requireFault(nemesis.DatabaseOutage)
		s.apiLoad("ping", 30)
		s.apiLoad("nodes", 20)
		o := s.uploadOptions(6, 2, outageUploadSize())
		o.Retries, o.Backoff = 8, 500*time.Millisecond
		uploads := s.uploadInBackground(o)
		s.waitOps(history.KindUpload, 1)

		By("stopping the database mid-load")
		outage, err := nemesis.Inject(ctx, s.env, nemesis.DatabaseOutage, "")
		Expect(err).NotTo(HaveOccurred())
		unhealthy := spec.Node.UnhealthyAfter + 2*spec.Node.Heartbeat + 2*time.Second
		for _, n := range c.Nodes() {
			Eventually(func() int { return ping(ctx, n.URL) }).WithTimeout(unhealthy).WithPolling(50*time.Millisecond).
				ShouldNot(Equal(http.StatusOK), "%s must stop answering 200 without its database", n.Name)
		}
		s.figure("db-down-to-all-nodes-unhealthy", time.Since(outage.Start()).Seconds(), "s")
		Eventually(func() int { return ping(ctx, c.URL()) }).WithTimeout(lbBound(spec, spec.LB.Fall)).WithPolling(20*time.Millisecond).
			Should(Equal(http.StatusServiceUnavailable), "the load balancer answers 503 when no node is healthy")
		s.figure("db-down-to-lb-503", time.Since(outage.Start()).Seconds(), "s")
		waitFor(ctx, 2*time.Second) // keep the outage on while clients retry

		By("starting the database again")
		Expect(outage.Recover(ctx)).To(Succeed())
		back := time.Now()
		Eventually(func() int { return ping(ctx, c.URL()) }).WithTimeout(30 * time.Second).WithPolling(50 * time.Millisecond).Should(Equal(http.StatusOK))
		for _, n := range c.Nodes() {
			Eventually(func() int { return ping(ctx, n.URL) }).WithTimeout(30*time.Second).WithPolling(50*time.Millisecond).Should(Equal(http.StatusOK), n.Name)
		}
		s.figure("db-up-to-cluster-serving", time.Since(back).Seconds(), "s")

		var sum *traffic.UploadSummary
		Eventually(uploads).WithTimeout(5 * time.Minute).Should(Receive(&sum))
		Expect(sum.Err()).NotTo(HaveOccurred(), "uploads retried through the outage succeed")
		s.figure("upload-throughput", sum.Throughput/1e6, "MB/s")
		s.stopBackground()

		rep := s.check(checker.Options{
			MinOps:      []checker.MinOpsRule{{Kind: "ping", N: 10}},
			ErrorWindow: checker.ErrorWindowOptions{Grace: 5 * time.Second, IgnoreStatus: []int{http.StatusConflict}},
		})
		expectPassed(rep, "history", "min-ops:ping", "durability", "no-leftovers", "error-window", "upload-path")
		ew, _ := rep.Result("error-window")
		s.figure("client-failures-during-outage", ew.Value("failures"), "ops")
	}, SpecTimeout(6*time.Minute))
})

var _ = Describe("Share outage", Label(LStorage, LUpload, LDocker, LExternal), func() {
	It("fails uploads with a 5xx while the share is away, never records a package without its file, and stores uploads again once it returns", func(ctx SpecContext) {
		s := newScenario(ctx)
		s.up(catalogueSpec(3))
		s.requireFault(nemesis.ShareOutage)
		s.apiLoad("ping", 30)
		s.waitOps("ping", 15)
		o := s.uploadOptions(4, 2, min(cfg.uploadSize, 512<<20))
		o.Retries, o.Backoff = 8, 500*time.Millisecond
		uploads := s.uploadInBackground(o)
		s.nodeWithActiveUpload(30 * time.Second)

		By("stopping the share in the middle of uploads")
		outage, err := nemesis.Inject(ctx, s.env, nemesis.ShareOutage, "")
		Expect(err).NotTo(HaveOccurred())
		waitFor(ctx, 4*time.Second)
		By("starting the share again")
		Expect(outage.Recover(ctx)).To(Succeed())

		var sum *traffic.UploadSummary
		Eventually(uploads).WithTimeout(5 * time.Minute).Should(Receive(&sum))
		Expect(sum.Err()).NotTo(HaveOccurred(), "uploads retried after the share returned succeed")

		By("uploading again after the share is back")
		more := s.uploadOptions(1, 1, 32<<20)
		more.Seed = cfg.seed + 1
		after := s.upload(more)
		Expect(after.Err()).NotTo(HaveOccurred(), "a fresh upload after the outage succeeds")
		s.stopBackground()

		By("uploads that met the outage failed with a 5xx")
		f := outage.Fault()
		saw5xx := 0
		for _, op := range s.loadHistory().OpsOfKind(history.KindUpload) {
			if op.Start.After(f.Start.Add(200*time.Millisecond)) && op.Start.Before(f.End) && op.Node != "" {
				Expect(op.Status).To(BeNumerically(">=", 500), "upload attempt %d started while the share was away but got %d", op.Seq, op.Status)
			}
			if op.Status >= 500 && op.End.After(f.Start) {
				saw5xx++
			}
		}
		Expect(saw5xx).To(BeNumerically(">=", 1), "at least one upload attempt met the outage")
		s.figure("upload-5xx-during-outage", float64(saw5xx), "ops")

		By("no temporary file survives (the nodes sweep what the outage left)")
		s.expectNoTempFiles()

		rep := s.check(checker.Options{
			MinOps:      []checker.MinOpsRule{{Kind: "ping", N: 10}},
			ErrorWindow: checker.ErrorWindowOptions{Grace: 5 * time.Second, IgnoreStatus: []int{http.StatusConflict}},
		})
		expectPassed(rep, "history", "min-ops:ping", "durability", "no-leftovers", "error-window", "upload-path")
	}, SpecTimeout(6*time.Minute))
})
