package scenarios_test

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/types"
	. "github.com/onsi/gomega"
	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/octoha/octoha/fakes/api"
	"github.com/octoha/octoha/harness/checker"
	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/cluster/external"
	"github.com/octoha/octoha/harness/cluster/local"
	"github.com/octoha/octoha/harness/history"
	"github.com/octoha/octoha/harness/lb"
	"github.com/octoha/octoha/harness/nemesis"
	"github.com/octoha/octoha/harness/traffic"
	"github.com/octoha/octoha/reports"
)

// networks hands each cluster of the run its own loopback /24, so a cluster
// that is slow to release its addresses never collides with the next.
var networks atomic.Int32

// scenario is one running spec: its directory, history, cluster and
// background traffic, and what it found.
type scenario struct {
	ctx     context.Context
	name    string
	slug    string
	labels  []string
	dir     string
	rec     *history.Recorder
	c       cluster.Cluster
	env     nemesis.Env
	start   time.Time
	figures []checker.Figure
	notes   []string
	checks  *checker.Report
	results []string

	lbNoted  bool
	bgCancel context.CancelFunc
	bgCtx    context.Context
	bg       sync.WaitGroup
	log      *slog.Logger
}

var slugRE = regexp.MustCompile(`[^a-z0-9]+`)

// newScenario opens the spec's scenario directory and history; everything
// is written out when the spec ends, whatever happens.
func newScenario(ctx context.Context) *scenario {
	rep := CurrentSpecReport()
	name := rep.FullText()
	slug := strings.Trim(slugRE.ReplaceAllString(strings.ToLower(name), "-"), "-")
	if len(slug) > 72 {
		// Table entries share long prefixes: keep names apart with a hash.
		sum := sha1.Sum([]byte(name)) //nolint:gosec // a name, not a secret
		slug = strings.Trim(slug[:64], "-") + "-" + hex.EncodeToString(sum[:4])
	}
	s := &scenario{
		ctx: ctx, name: name, slug: slug, labels: rep.Labels(),
		dir:   filepath.Join(cfg.reportDir, reports.ScenariosDir, slug),
		start: time.Now(),
		log:   slog.New(slog.NewTextHandler(GinkgoWriter, &slog.HandlerOptions{Level: slog.LevelInfo})),
	}
	// A reused report directory must not mix two runs of one scenario.
	Expect(os.RemoveAll(s.dir)).To(Succeed())
	Expect(os.MkdirAll(s.dir, 0o755)).To(Succeed())
	var err error
	s.rec, err = history.Create(filepath.Join(s.dir, reports.HistoryFile))
	Expect(err).NotTo(HaveOccurred())
	s.rec.Meta(history.Meta{Scenario: name, Seed: cfg.seed})
	DeferCleanup(s.finish)
	if cfg.provider == "docker" && !slices.Contains(s.labels, LDocker) {
		Skip("this scenario runs on the local provider only (it needs a load balancer or a process control the docker provider does not offer)")
	}
	if cfg.provider == "external" && !slices.Contains(s.labels, LExternal) {
		Skip("this scenario needs a simulated cluster (it chooses the load balancer or the cluster's size)")
	}
	By(fmt.Sprintf("scenario %q (seed %d; history in %s)", name, cfg.seed, s.dir))
	return s
}

// catalogueSpec is the default cluster of the catalogue: real components
// where installed (the local provider falls back to embedded ones and says
// so, and scenarios needing a real part skip with the reason).
func catalogueSpec(nodes int) cluster.Spec {
	s := cluster.Defaults()
	s.Nodes = nodes
	s.DB.Kind = cluster.DBPostgres
	s.Storage.Kind = cluster.StorageSMB
	return s
}

// up brings the scenario's cluster up through the configured provider,
// registers its teardown, and records the load balancer's view of every
// node into the history.
func (s *scenario) up(spec cluster.Spec) cluster.Cluster {
	n := networks.Add(1)
	Expect(n).To(BeNumerically("<", 200), "too many clusters in one run")
	spec.Network = fmt.Sprintf("127.0.%d", 40+n)
	spec.Name = fmt.Sprintf("scn-%d-%d", os.Getpid(), n)
	By(fmt.Sprintf("bringing up %d nodes behind %s, %s database, %s share (provider %s)", spec.Nodes, spec.LB.Kind, spec.DB.Kind, spec.Storage.Kind, cfg.provider))
	ctx, cancel := context.WithTimeout(s.ctx, 3*time.Minute)
	defer cancel()
	var c cluster.Cluster
	var err error
	switch cfg.provider {
	case "external":
		By("connecting to the external cluster at " + cfg.external.External.LBURL)
		var ec *external.Cluster
		ec, err = external.Connect(ctx, cfg.external, external.Options{Logger: s.log})
		if ec != nil {
			c = ec
		}
	case "docker":
		c, err = upDocker(ctx, spec, s.log, s.dir)
	default:
		var lc *local.Cluster
		lc, err = local.Up(ctx, spec, local.Options{Binary: cfg.binary, Logger: s.log})
		if lc != nil {
			c = lc
		}
	}
	Expect(err).NotTo(HaveOccurred(), "bring the cluster up")
	DeferCleanup(func(ctx SpecContext) {
		s.stopBackground()
		if CurrentSpecReport().Failed() {
			s.keepLogs(c)
		}
		if cfg.provider == "external" {
			s.deleteUploadedPackages(ctx)
		}
		Expect(c.Down(ctx)).To(Succeed(), "tear the cluster down")
	}, NodeTimeout(2*time.Minute))
	s.c = c
	s.env = nemesis.Env{Cluster: c, Recorder: s.rec, Logger: s.log}
	for _, comp := range c.Components() {
		if comp.Embedded {
			s.note("EMBEDDED %s: %s", comp.Part, comp.Description)
		}
	}
	watchCtx, stop := context.WithCancel(context.WithoutCancel(s.ctx))
	done := make(chan struct{})
	go func() { defer close(done); cluster.WatchLB(watchCtx, c, s.rec, 50*time.Millisecond) }()
	DeferCleanup(func() { stop(); <-done })
	return c
}

// keepLogs copies the cluster's logs into the scenario directory.
func (s *scenario) keepLogs(c cluster.Cluster) {
	type runDirer interface{ RunDir() string }
	rd, ok := c.(runDirer)
	if !ok {
		return
	}
	src := filepath.Join(rd.RunDir(), "logs")
	entries, err := os.ReadDir(src)
	if err != nil {
		return
	}
	dst := filepath.Join(s.dir, "logs")
	_ = os.MkdirAll(dst, 0o755)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err == nil {
			_ = os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644)
		}
	}
	for _, f := range []string{"lb/haproxy.cfg", "lb/haproxy.log", "lb/nginx.conf", "lb/error.log"} {
		if b, err := os.ReadFile(filepath.Join(rd.RunDir(), f)); err == nil {
			_ = os.WriteFile(filepath.Join(dst, strings.ReplaceAll(f, "/", "-")), b, 0o644)
		}
	}
}

// figure records a scenario measurement for the reports and JUnit.
func (s *scenario) figure(name string, value float64, unit string) {
	s.figures = append(s.figures, checker.Figure{Name: name, Value: value, Unit: unit})
	AddReportEntry(name, fmt.Sprintf("%.3f %s", value, unit), ReportEntryVisibilityFailureOrVerbose)
	fmt.Fprintf(GinkgoWriter, "figure %s = %.3f %s\n", name, value, unit)
}

func (s *scenario) note(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	s.notes = append(s.notes, msg)
	fmt.Fprintln(GinkgoWriter, "note: "+msg)
}

// resultsFile creates a vegeta results file in the scenario directory.
func (s *scenario) resultsFile(name string) io.WriteCloser {
	f, err := os.Create(filepath.Join(s.dir, name+".results.gob"))
	Expect(err).NotTo(HaveOccurred())
	s.results = append(s.results, name+".results.gob")
	return f
}

// background runs fn until stopBackground (or the spec ends).
func (s *scenario) background(fn func(ctx context.Context)) {
	if s.bgCancel == nil {
		ctx, cancel := context.WithCancel(context.WithoutCancel(s.ctx))
		s.bgCancel = cancel
		s.bgCtx = ctx
	}
	s.bg.Add(1)
	go func() {
		defer GinkgoRecover()
		defer s.bg.Done()
		fn(s.bgCtx)
	}()
}

func (s *scenario) stopBackground() {
	if s.bgCancel != nil {
		s.bgCancel()
	}
	s.bg.Wait()
}

// apiLoad attacks an API target through the load balancer at rate/s in
// the background, recording every request.
func (s *scenario) apiLoad(target string, rate int, opts ...func(*traffic.AttackOptions)) {
	out := s.resultsFile("attack-" + target)
	o := traffic.AttackOptions{
		URL: s.c.URL(), APIKey: s.c.APIKey(), Target: target, Rate: vegeta.Rate{Freq: rate, Per: time.Second},
		Timeout: 3 * time.Second, Recorder: s.rec, Results: out, Via: "lb", Logger: s.log,
	}
	for _, f := range opts {
		f(&o)
	}
	s.background(func(ctx context.Context) {
		defer out.Close()
		_, err := traffic.Attack(ctx, o)
		Expect(err).NotTo(HaveOccurred(), "API load")
	})
}

// uploadOptions are the catalogue's upload defaults through the load
// balancer: retries with backoff, as a careful client does.
func (s *scenario) uploadOptions(count, concurrency int, size int64) uploadOpts {
	return uploadOpts{
		URL: s.c.URL(), APIKey: s.c.APIKey(), Size: size, Count: count, Concurrency: concurrency,
		PackageIDPrefix: "Octoha-" + strings.Trim(s.slug[:min(60, len(s.slug))], "-"),
		Seed:            cfg.seed, Retries: 5, Backoff: 500 * time.Millisecond, StallTimeout: 20 * time.Second,
		Recorder: s.rec, Via: "lb", Logger: s.log, Progress: GinkgoWriter, ProgressInterval: 2 * time.Second,
	}
}

// uploadOpts are upload options with helpers for scenarios.
type uploadOpts traffic.UploadOptions

// upload runs uploads to completion, writing their vegeta results.
func (s *scenario) upload(oo uploadOpts) *traffic.UploadSummary {
	o := traffic.UploadOptions(oo)
	out := s.resultsFile(fmt.Sprintf("upload-%d", len(s.results)))
	defer out.Close()
	o.Results = out
	sum, err := traffic.Upload(s.ctx, o)
	Expect(err).NotTo(HaveOccurred(), "run uploads")
	s.figure("upload-throughput", sum.Throughput/1e6, "MB/s")
	return sum
}

// uploadInBackground starts uploads and returns a channel that yields
// their summary.
func (s *scenario) uploadInBackground(oo uploadOpts) <-chan *traffic.UploadSummary {
	o := traffic.UploadOptions(oo)
	ch := make(chan *traffic.UploadSummary, 1)
	out := s.resultsFile(fmt.Sprintf("upload-%d", len(s.results)))
	o.Results = out
	s.background(func(ctx context.Context) {
		defer out.Close()
		// Uploads run on the spec's context, not the background one: they
		// finish on their own and the scenario waits for them.
		sum, err := traffic.Upload(s.ctx, o)
		Expect(err).NotTo(HaveOccurred(), "run uploads")
		ch <- sum
	})
	return ch
}

// nodeWithActiveUpload polls every node's details until one is receiving
// an upload, and returns its name. Real Octopus nodes do not report their
// uploads (ActiveUploads is the fake's extension): then it returns "" at
// once and the caller picks a node without knowing what it serves.
func (s *scenario) nodeWithActiveUpload(within time.Duration) string {
	var found string
	reported := false
	Eventually(func() bool {
		for _, n := range s.c.Nodes() {
			active, known := activeUploads(s.ctx, n, s.c.APIKey())
			reported = reported || known
			if active > 0 {
				found = n.Name
				return true
			}
		}
		return !reported
	}).WithTimeout(within).WithPolling(20*time.Millisecond).Should(BeTrue(), "no node started receiving an upload")
	if !reported {
		s.note("the nodes do not report their uploads in progress: the faulted node was chosen without knowing whether it was receiving one")
	}
	return found
}

// activeUploads reads a node's ActiveUploads; known is false when the node
// does not report it.
func activeUploads(ctx context.Context, n cluster.Node, key string) (active int, known bool) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, n.URL+api.NodeDetailsPath(n.ID), nil)
	req.Header.Set(api.HeaderAPIKey, key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	var d struct{ ActiveUploads *int }
	if json.NewDecoder(resp.Body).Decode(&d) != nil || d.ActiveUploads == nil {
		return 0, false
	}
	return *d.ActiveUploads, true
}

// ping returns a base URL's ping status (0 if nothing answered).
func ping(ctx context.Context, base string) int {
	client := &http.Client{Timeout: time.Second}
	code, _, _ := cluster.PingStatus(ctx, client, base)
	return code
}

func (s *scenario) node(name string) cluster.Node {
	for _, n := range s.c.Nodes() {
		if n.Name == name {
			return n
		}
	}
	Fail("no node " + name)
	return cluster.Node{}
}

// waitLB waits until the load balancer reports node as want ("OUT" means
// anything but UP). A load balancer the harness cannot observe (an
// external cluster's) is judged from the requests it routes by the
// convergence check instead; the wait is then skipped with a note.
func (s *scenario) waitLB(node, want string, within time.Duration) {
	GinkgoHelper()
	if !s.lbObservable() {
		return
	}
	Eventually(func() string {
		st := s.lbState(node)
		if want == "OUT" && st != "UP" && !strings.HasPrefix(st, "ERROR") {
			return "OUT"
		}
		return st
	}).WithTimeout(within).WithPolling(20*time.Millisecond).Should(Equal(want), "load balancer state of %s", node)
}

// lbObservable reports whether the load balancer tells the harness each
// node's state.
func (s *scenario) lbObservable() bool {
	states, err := s.c.LBStates(s.ctx)
	if err != nil {
		return true // an error is worth failing on
	}
	for _, st := range states {
		if st.State != lb.StateUnknown {
			return true
		}
	}
	if !s.lbNoted {
		s.lbNoted = true
		s.note("the load balancer's own view is not observable here: ejection and rejoin are judged from the requests it routes")
	}
	return false
}

// requireFault skips the scenario, saying why, when the cluster cannot take
// the fault (SQLite has no outage, an external cluster has no hook, …).
func (s *scenario) requireFault(f nemesis.Fault) {
	if err := f.Available(s.c); err != nil {
		Skip(f.Name() + " cannot run on this cluster: " + err.Error())
	}
}

// lbState returns the load balancer's view of one node.
func (s *scenario) lbState(name string) string {
	states, err := s.c.LBStates(s.ctx)
	if err != nil {
		return "ERROR: " + err.Error()
	}
	for _, st := range states {
		if st.Name == name {
			return string(st.State)
		}
	}
	return "MISSING"
}

// lbBound is how long the load balancer may take to act on a health-check
// change: interval × fall (or rise), plus one interval, plus a margin for
// a loaded 2-core machine.
func lbBound(spec cluster.Spec, checks int) time.Duration {
	return time.Duration(checks+1)*spec.LB.Interval + 750*time.Millisecond
}

// target describes the cluster for the checkers; down lists nodes that are
// not expected to serve.
func (s *scenario) target(down ...string) checker.Target {
	t := checker.Target{LBURL: s.c.URL(), APIKey: s.c.APIKey()}
	for _, n := range s.c.Nodes() {
		live := true
		for _, d := range down {
			if d == n.Name {
				live = false
			}
		}
		t.Nodes = append(t.Nodes, checker.Endpoint{Name: n.Name, URL: n.URL, Live: live})
	}
	return t
}

// fileListing lists the Packages store when the provider can.
func (s *scenario) fileListing() *checker.FileListing {
	fl, ok := s.c.(cluster.FileLister)
	if !ok {
		return nil
	}
	files, err := fl.PackageFiles(s.ctx)
	Expect(err).NotTo(HaveOccurred(), "list the Packages store")
	out := &checker.FileListing{Source: "Packages store of " + s.c.Spec().Name}
	for _, f := range files {
		out.Files = append(out.Files, checker.FileInfo{Name: f.Name, Size: f.Size})
	}
	return out
}

// check runs the checkers on the history so far and what the cluster
// serves now, keeps the report for the scenario file, and returns it.
func (s *scenario) check(opts checker.Options, down ...string) *checker.Report {
	By("checking the history against what the cluster serves")
	h, err := history.Load(filepath.Join(s.dir, reports.HistoryFile))
	Expect(err).NotTo(HaveOccurred())
	if opts.Collect.Files == nil {
		opts.Collect.Files = s.fileListing()
	}
	rep, err := checker.Run(s.ctx, h, s.target(down...), opts)
	Expect(err).NotTo(HaveOccurred(), "collect the cluster's state")
	rep.Results = append(rep.Results, checker.DiagnoseUploads(h))
	s.checks = rep
	for _, r := range rep.Results {
		fmt.Fprintf(GinkgoWriter, "check %-13s %-4s %s\n", r.Name, strings.ToUpper(string(r.Status)), r.Summary)
		for _, e := range r.Evidence {
			fmt.Fprintf(GinkgoWriter, "    %s\n", e)
		}
		figs := make([]string, 0, len(r.Figures))
		for _, f := range r.Figures {
			figs = append(figs, f.String())
		}
		AddReportEntry("check "+r.Name, fmt.Sprintf("%s: %s [%s]", strings.ToUpper(string(r.Status)), r.Summary, strings.Join(figs, " ")), ReportEntryVisibilityFailureOrVerbose)
	}
	return rep
}

// waitOps waits until the history holds at least n acknowledged ops of
// kind: load is flowing before a fault is injected, so the before-phase
// is not empty.
func (s *scenario) waitOps(kind string, n int) {
	Eventually(func() int {
		count := 0
		for _, op := range s.loadHistory().Ops {
			if op.Kind == kind && op.Outcome == history.OK {
				count++
			}
		}
		return count
	}).WithTimeout(30*time.Second).WithPolling(100*time.Millisecond).Should(BeNumerically(">=", n), "waiting for %d %s ops before injecting faults", n, kind)
}

// expectPassed asserts that the named checks passed (or, with none named,
// that every check did), quoting their evidence on failure.
func expectPassed(rep *checker.Report, names ...string) {
	GinkgoHelper()
	if len(names) == 0 {
		for _, r := range rep.Results {
			names = append(names, r.Name)
		}
	}
	for _, n := range names {
		r, ok := rep.Result(n)
		Expect(ok).To(BeTrue(), "check %s did not run", n)
		Expect(r.Status).NotTo(Equal(checker.Fail), "check %s failed: %s\n  %s", n, r.Summary, strings.Join(r.Evidence, "\n  "))
	}
}

// loadHistory reads the scenario's history so far.
func (s *scenario) loadHistory() *history.History {
	h, err := history.Load(filepath.Join(s.dir, reports.HistoryFile))
	Expect(err).NotTo(HaveOccurred())
	return h
}

// finish writes scenario.json, whatever the spec's outcome.
func (s *scenario) finish() {
	s.stopBackground()
	_ = s.rec.Close()
	rep := CurrentSpecReport()
	sc := reports.Scenario{
		Name: s.name, Slug: s.slug, Labels: s.labels, Seed: cfg.seed, Provider: cfg.provider,
		Start: s.start, End: time.Now(), Figures: s.figures, Checks: s.checks, Results: s.results, Notes: s.notes,
		State: reports.StatePassed,
		// Exactly this scenario, with the same seed and sizes.
		Replay: fmt.Sprintf("make chaos FOCUS=%s OCTOHA_SEED=%d OCTOHA_UPLOAD_SIZE=%d PROVIDER=%s",
			shellQuote(regexp.QuoteMeta(s.name)), cfg.seed, cfg.uploadSize, cfg.provider),
	}
	switch {
	case rep.State.Is(types.SpecStateSkipped):
		sc.State, sc.SkipReason = reports.StateSkipped, rep.Failure.Message
	case rep.Failed():
		sc.State, sc.Failure = reports.StateFailed, rep.Failure.Message
	}
	if s.c != nil {
		spec := s.c.Spec()
		sc.Spec = &spec
		sc.Components = s.c.Components()
	}
	if err := reports.WriteScenario(s.dir, sc); err != nil {
		fmt.Fprintf(GinkgoWriter, "write scenario file: %v\n", err)
	}
	for _, e := range reports.Entries(sc) {
		AddReportEntry(e.Name, e.Value, ReportEntryVisibilityNever)
	}
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// expectServesAgain waits until node answers a request (acknowledged)
// that started after t: the load balancer sends it work again.
func (s *scenario) expectServesAgain(node string, after time.Time) {
	GinkgoHelper()
	Eventually(func() bool {
		for _, op := range s.loadHistory().Ops {
			if op.Node == node && op.Start.After(after) && op.Outcome == history.OK {
				return true
			}
		}
		return false
	}).WithTimeout(10*time.Second).WithPolling(100*time.Millisecond).Should(BeTrue(), "%s serves requests again", node)
}

// expectNoTempFiles waits until the Packages store holds no temporary or
// partial file (nodes sweep what a crash or an outage left).
func (s *scenario) expectNoTempFiles() {
	GinkgoHelper()
	Eventually(func() []string {
		var tmp []string
		for _, f := range s.fileListing().Files {
			if checker.IsTempFile(f.Name) {
				tmp = append(tmp, f.Name)
			}
		}
		return tmp
	}).WithTimeout(30 * time.Second).WithPolling(250 * time.Millisecond).Should(BeEmpty())
}

// deleteUploadedPackages removes, through the API, the packages this
// scenario stored in a real cluster's built-in feed, so certification runs
// leave the staging feed as they found it.
func (s *scenario) deleteUploadedPackages(ctx context.Context) {
	h, err := history.Load(filepath.Join(s.dir, reports.HistoryFile))
	if err != nil {
		return
	}
	seen := map[string]bool{}
	for _, op := range h.OpsOfKind(history.KindUpload) {
		if op.Outcome == history.Failed || op.PackageID == "" {
			continue
		}
		id := api.PackageResourceID(op.PackageID, op.Version)
		if seen[id] {
			continue
		}
		seen[id] = true
		req, err := http.NewRequestWithContext(ctx, http.MethodDelete, s.c.URL()+api.PackagePath(api.DefaultSpaceID, id), nil)
		if err != nil {
			continue
		}
		req.Header.Set(api.HeaderAPIKey, s.c.APIKey())
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			fmt.Fprintf(GinkgoWriter, "deleted test package %s from the external cluster: %s\n", id, resp.Status)
		}
	}
}
