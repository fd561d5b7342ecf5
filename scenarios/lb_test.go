package scenarios_test

import (
	"net/http"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/octoha/octoha/harness/checker"
	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/lb"
	"github.com/octoha/octoha/harness/nemesis"
	"github.com/octoha/octoha/harness/payload"
	"github.com/octoha/octoha/harness/traffic"
)

// What a certification run must tell an operator about a load balancer:
// does a 1 GB upload pass (body limits, timeouts), and does a drained
// node (ping 418) stop getting new requests?
var _ = Describe("Load-balancer limits", Label(LLB, LUpload), func() {
	DescribeTable("the harness detects and names load-balancer misconfiguration for Octopus",
		func(ctx SpecContext, kind lb.Kind, uploadPasses, honoursDrain bool) {
			if err := lb.Available(kind); err != nil {
				Skip(string(kind) + " is not installed here: " + err.Error())
			}
			s := newScenario(ctx)
			spec := cluster.Defaults()
			spec.Nodes = 2
			spec.LB.Kind = string(kind)
			c := s.up(spec)
			spec = c.Spec()

			By("uploading one package of " + payload.FormatSize(cfg.uploadSize) + " through " + string(kind))
			o := s.uploadOptions(1, 1, cfg.uploadSize)
			o.Retries = 0
			sum := s.upload(o)
			if uploadPasses {
				Expect(sum.Err()).NotTo(HaveOccurred(), "a large upload through %s", kind)
			} else {
				Expect(sum.OK).To(Equal(0), "%s should refuse the upload", kind)
			}

			By("draining Node2 under load: does " + string(kind) + " stop sending it new requests?")
			s.apiLoad("ping", 40)
			s.waitOps("ping", 20)
			_, err := nemesis.Hold(ctx, s.env, nemesis.Drain, "Node2", 2*lbBound(spec, spec.LB.Fall)+spec.Node.Heartbeat)
			Expect(err).NotTo(HaveOccurred())
			s.stopBackground()

			rep := s.check(checker.Options{
				Convergence: checker.ConvergenceOptions{EjectWithin: spec.Node.Heartbeat + lbBound(spec, spec.LB.Fall)},
				ErrorWindow: checker.ErrorWindowOptions{IgnoreStatus: []int{http.StatusTeapot, http.StatusRequestEntityTooLarge}},
			})
			diag, _ := rep.Result("upload-path")
			if uploadPasses {
				expectPassed(rep, "durability", "no-leftovers", "upload-path")
			} else {
				Expect(diag.Status).To(Equal(checker.Fail), "the upload-path check must fail through %s", kind)
				Expect(checker.HasFinding(diag, checker.FindingBodyLimit)).To(BeTrue(), "the body limit must be named: %s", diag.Summary)
				s.note("%s: %s", kind, checker.FindingBodyLimit.Explanation)
			}
			conv, _ := rep.Result("convergence")
			if honoursDrain {
				expectPassed(rep, "convergence")
			} else {
				Expect(conv.Status).To(Equal(checker.Fail), "%s keeps sending requests to a draining node", kind)
				s.note("%s does not honour the drain (418): %s", kind, conv.Summary)
			}
			s.figure("eject-after-drain", conv.Value("eject-max"), "s")
		},
		Entry("HAProxy configured for Octopus", lb.HAProxy, true, true, SpecTimeout(4*time.Minute)),
		Entry("nginx tuned for Octopus", lb.Nginx, true, false, SpecTimeout(4*time.Minute)),
		Entry("nginx with its defaults", lb.NginxDefaults, false, false, SpecTimeout(4*time.Minute)),
	)
})

// The same questions asked of a real cluster (OCTOHA_PROVIDER=external):
// a certification run before an upgrade fails, naming the problem, when
// the load balancer limits uploads or ignores the drain.
var _ = Describe("Load-balancer certification", Label(LLB, LUpload, LExternal, LCertify), func() {
	It("passes a large upload and stops sending new requests to a drained node", func(ctx SpecContext) {
		if cfg.provider != "external" {
			Skip("certifies an external cluster (OCTOHA_PROVIDER=external); the load-balancer limits table covers the simulated load balancers")
		}
		s := newScenario(ctx)
		c := s.up(catalogueSpec(3))
		spec := c.Spec()
		drained := c.Nodes()[len(c.Nodes())-1].Name

		By("uploading one package of " + payload.FormatSize(cfg.uploadSize) + " through the load balancer")
		o := s.uploadOptions(1, 1, cfg.uploadSize)
		o.Retries = 0
		sum := s.upload(o)

		By("draining " + drained + " under ping load")
		s.apiLoad("ping", 20)
		s.waitOps("ping", 20)
		_, err := nemesis.Hold(ctx, s.env, nemesis.Drain, drained, 2*lbBound(spec, spec.LB.Fall)+spec.Node.Heartbeat)
		Expect(err).NotTo(HaveOccurred())
		s.stopBackground()

		rep := s.check(checker.Options{
			Convergence: checker.ConvergenceOptions{EjectWithin: spec.Node.Heartbeat + lbBound(spec, spec.LB.Fall)},
			ErrorWindow: checker.ErrorWindowOptions{IgnoreStatus: []int{http.StatusTeapot}},
		})
		Expect(sum.Err()).NotTo(HaveOccurred(), "a %s upload through the load balancer", payload.FormatSize(cfg.uploadSize))
		expectPassed(rep, "durability", "upload-path", "convergence")
	}, SpecTimeout(10*time.Minute))
})

var _ = Describe("Broken cluster", Label(LBroken, LUpload), func() {
	It("is caught by the durability check: a node that acknowledges uploads before storing them loses one when killed", func(ctx SpecContext) {
		s := newScenario(ctx)
		spec := cluster.Defaults()
		spec.Nodes = 2
		spec.Node.UnsafeAckBeforeStore = true
		c := s.up(spec)
		s.requireFault(nemesis.Kill)
		s.note("deliberately broken nodes: uploads are acknowledged before the file and its row are stored")

		By("uploading one package; the node acknowledges it at once")
		o := s.uploadOptions(1, 1, 16<<20)
		o.Retries = 0
		sum := s.upload(o)
		Expect(sum.Err()).NotTo(HaveOccurred())
		acked := sum.Packages[0]

		By("SIGKILL " + acked.Node + " before it stores what it acknowledged")
		kill, err := nemesis.Inject(ctx, s.env, nemesis.Kill, acked.Node)
		Expect(err).NotTo(HaveOccurred())
		Expect(kill.Recover(ctx)).To(Succeed())
		_ = c

		rep := s.check(checker.Options{})
		dur, _ := rep.Result("durability")
		Expect(dur.Status).To(Equal(checker.Fail), "the durability check must catch the lost acknowledged upload")
		Expect(strings.Join(dur.Evidence, "\n")).To(ContainSubstring(acked.Spec.Version), "the evidence names the lost package")
		s.note("durability check failed as it must: %s", dur.Summary)
	}, SpecTimeout(2*time.Minute))
})

var _ = Describe("Random chaos", Label(LChaos, LFailover, LUpload), func() {
	It("survives a seeded schedule of faults under load with every acknowledged upload intact", func(ctx SpecContext) {
		s := newScenario(ctx)
		c := s.up(catalogueSpec(3))
		sched, err := nemesis.Plan(cfg.seed, nemesis.PlanOptions{Cluster: c, Count: 4, Start: 2 * time.Second, Gap: 3 * time.Second, MinHold: 2 * time.Second, MaxHold: 4 * time.Second})
		Expect(err).NotTo(HaveOccurred())
		s.note("schedule (seed %d): %s", cfg.seed, sched)
		By("schedule: " + sched.String())

		s.apiLoad("ping", 30)
		s.apiLoad("nodes", 10)
		s.waitOps("ping", 15)
		o := s.uploadOptions(8, 2, min(cfg.uploadSize, 256<<20))
		o.Retries, o.Backoff = 10, 500*time.Millisecond
		uploads := s.uploadInBackground(o)

		faults, err := sched.Run(ctx, s.env)
		Expect(err).NotTo(HaveOccurred(), "run the schedule")
		Expect(faults).To(HaveLen(len(sched.Steps)))
		var sum *traffic.UploadSummary
		Eventually(uploads).WithTimeout(8 * time.Minute).Should(Receive(&sum))
		s.stopBackground()
		Expect(sum.Err()).NotTo(HaveOccurred(), "uploads retried through the faults succeed")

		rep := s.check(checker.Options{
			MinOps:      []checker.MinOpsRule{{Kind: "ping", N: 10}},
			ErrorWindow: checker.ErrorWindowOptions{Grace: 6 * time.Second, IgnoreStatus: []int{http.StatusConflict, http.StatusTeapot}},
		})
		expectPassed(rep, "history", "min-ops:ping", "durability", "no-leftovers", "error-window")
	}, SpecTimeout(10*time.Minute))
})
