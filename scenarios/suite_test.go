package scenarios_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/payload"
	"github.com/octoha/octoha/harness/runner"
	"github.com/octoha/octoha/harness/scenario"
	"github.com/octoha/octoha/internal/testbin"
	"github.com/octoha/octoha/reports"
)

// opts are the runner's options, from the environment (the same variables
// `make chaos` has always passed).
var opts runner.Options

func TestScenarios(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "octoha chaos catalogue")
}

var _ = BeforeSuite(func(ctx SpecContext) {
	provider, why, err := runner.ResolveProvider(ctx, envOr("OCTOHA_PROVIDER", "local"))
	Expect(err).NotTo(HaveOccurred(), "OCTOHA_PROVIDER")
	if why != "" {
		fmt.Fprintln(GinkgoWriter, "octoha chaos: "+why)
	}
	opts.Provider = provider
	if provider == cluster.ProviderExternal {
		path := os.Getenv("OCTOHA_CLUSTER")
		Expect(path).NotTo(BeEmpty(), "OCTOHA_PROVIDER=external needs OCTOHA_CLUSTER=<cluster.yaml> describing the real cluster")
		spec, err := cluster.LoadSpec(path)
		Expect(err).NotTo(HaveOccurred(), "read %s", path)
		Expect(spec.External).NotTo(BeNil(), "%s has no external: section", path)
		if os.Getenv("OCTOHA_ALLOW_DESTRUCTIVE") == "1" {
			spec.External.AllowDestructive = true
		}
		opts.External = &spec
	}
	size := envOr("OCTOHA_UPLOAD_SIZE", "1GiB")
	opts.UploadSize, err = payload.ParseSize(size)
	Expect(err).NotTo(HaveOccurred(), "OCTOHA_UPLOAD_SIZE=%q", size)
	Expect(opts.UploadSize).To(BeNumerically(">", 0), "OCTOHA_UPLOAD_SIZE must be positive")
	opts.Seed = runner.NewSeed()
	if s := os.Getenv("OCTOHA_SEED"); s != "" {
		opts.Seed, err = strconv.ParseInt(s, 10, 64)
		Expect(err).NotTo(HaveOccurred(), "OCTOHA_SEED=%q must be an integer", s)
	}
	dir := os.Getenv("OCTOHA_REPORT_DIR")
	if dir == "" {
		dir = filepath.Join("..", "reports", "out", time.Now().Format("20060102-150405")) // git-ignored
	}
	opts.OutDir, err = filepath.Abs(dir)
	Expect(err).NotTo(HaveOccurred())
	Expect(os.MkdirAll(opts.OutDir, 0o755)).To(Succeed())
	if provider == cluster.ProviderLocal {
		opts.Binary, err = testbin.Octoha()
		Expect(err).NotTo(HaveOccurred(), "build the octoha binary")
	}
	opts.Logger = slog.New(slog.NewTextHandler(GinkgoWriter, &slog.HandlerOptions{Level: slog.LevelInfo}))
	opts.Console = GinkgoWriter
	opts.Progress = GinkgoWriter
	opts.Replay = func(sc scenario.Scenario) string {
		return runner.Replay("chaos", sc, opts, os.Getenv("OCTOHA_CLUSTER"))
	}
	fmt.Fprintf(GinkgoWriter, "octoha chaos: provider=%s upload size=%s seed=%d (replay with OCTOHA_SEED=%d) reports in %s\n",
		opts.Provider, payload.FormatSize(opts.UploadSize), opts.Seed, opts.Seed, opts.OutDir)
	AddReportEntry("seed", opts.Seed)
	AddReportEntry("upload size", payload.FormatSize(opts.UploadSize))
	AddReportEntry("provider", opts.Provider)
	AddReportEntry("reports", opts.OutDir)
})

var _ = AfterSuite(func() {
	testbin.Cleanup()
})

// The reports people read are written once, after every scenario, from the
// directory the scenarios filled.
var _ = ReportAfterSuite("reports", func(ctx SpecContext, _ Report) {
	if opts.OutDir == "" {
		return
	}
	if _, err := reports.Write(ctx, opts.OutDir, reports.Options{}); err != nil {
		fmt.Fprintf(GinkgoWriter, "octoha: no report written: %v\n", err)
		return
	}
	fmt.Fprintf(os.Stdout, "\noctoha: reports in %s (index.html, summary.md, summary.json)\n", opts.OutDir)
})

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// runScenario runs one catalogue entry through the runner and asserts on
// its result.
func runScenario(ctx context.Context, sc scenario.Scenario) {
	res := runner.Run(ctx, opts, sc)
	for _, f := range res.Figures {
		AddReportEntry(f.Name, f.String(), ReportEntryVisibilityFailureOrVerbose)
	}
	switch res.State {
	case runner.Skipped:
		Skip(res.Reason)
	case runner.Failed:
		Fail(fmt.Sprintf("%s (history and logs in %s)", res.Reason, res.Dir))
	}
}
