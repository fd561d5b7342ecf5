package scenarios_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/cluster/docker"
	"github.com/octoha/octoha/harness/payload"
	"github.com/octoha/octoha/internal/testbin"
	"github.com/octoha/octoha/reports"
)

// Labels users pick scenarios with (--label-filter / make chaos LABELS=…).
const (
	LHealth   = "health"
	LDrain    = "drain"
	LFailover = "failover"
	LUpload   = "upload"
	LDatabase = "database"
	LStorage  = "storage"
	LLB       = "lb"
	LCapacity = "capacity"
	LChaos    = "chaos"
	LBroken   = "broken"
	LSlow     = "slow"
	LDocker   = "docker"
	LExternal = "external"
	LCertify  = "certify"
)

// config is the suite's configuration, from the environment.
type config struct {
	provider   string
	external   cluster.Spec // provider external: the real cluster, from OCTOHA_CLUSTER
	uploadSize int64
	seed       int64
	reportDir  string
	binary     string
}

var cfg config

func TestScenarios(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "octoha chaos catalogue")
}

var _ = BeforeSuite(func() {
	cfg.provider = envOr("OCTOHA_PROVIDER", "local")
	Expect(cfg.provider).To(BeElementOf("local", "docker", "auto", "external"), "OCTOHA_PROVIDER must be local, docker, auto or external")
	if cfg.provider == "external" {
		path := os.Getenv("OCTOHA_CLUSTER")
		Expect(path).NotTo(BeEmpty(), "OCTOHA_PROVIDER=external needs OCTOHA_CLUSTER=<cluster.yaml> describing the real cluster")
		var err error
		cfg.external, err = cluster.LoadSpec(path)
		Expect(err).NotTo(HaveOccurred(), "read %s", path)
		Expect(cfg.external.External).NotTo(BeNil(), "%s has no external: section", path)
		if os.Getenv("OCTOHA_ALLOW_DESTRUCTIVE") == "1" {
			cfg.external.External.AllowDestructive = true
		}
	}
	if cfg.provider == "auto" {
		// auto: containers when a Docker engine and the images are there.
		cfg.provider = "local"
		actx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		if err := docker.Available(actx); err == nil {
			cfg.provider = "docker"
		} else {
			fmt.Fprintf(GinkgoWriter, "octoha chaos: provider auto → local (%v)\n", err)
		}
		cancel()
	}
	size := envOr("OCTOHA_UPLOAD_SIZE", "1GiB")
	var err error
	cfg.uploadSize, err = payload.ParseSize(size)
	Expect(err).NotTo(HaveOccurred(), "OCTOHA_UPLOAD_SIZE=%q", size)
	Expect(cfg.uploadSize).To(BeNumerically(">", 0), "OCTOHA_UPLOAD_SIZE must be positive")
	cfg.seed = time.Now().UnixNano() % 1_000_000_000
	if s := os.Getenv("OCTOHA_SEED"); s != "" {
		cfg.seed, err = strconv.ParseInt(s, 10, 64)
		Expect(err).NotTo(HaveOccurred(), "OCTOHA_SEED=%q must be an integer", s)
	}
	cfg.reportDir = os.Getenv("OCTOHA_REPORT_DIR")
	if cfg.reportDir == "" {
		cfg.reportDir = filepath.Join("..", "reports", "out", time.Now().Format("20060102-150405"))
	}
	cfg.reportDir, err = filepath.Abs(cfg.reportDir)
	Expect(err).NotTo(HaveOccurred())
	Expect(os.MkdirAll(cfg.reportDir, 0o755)).To(Succeed())
	cfg.binary, err = testbin.Octoha()
	Expect(err).NotTo(HaveOccurred(), "build the octoha binary")
	fmt.Fprintf(GinkgoWriter, "octoha chaos: provider=%s upload size=%s seed=%d (replay with OCTOHA_SEED=%d) reports in %s\n",
		cfg.provider, payload.FormatSize(cfg.uploadSize), cfg.seed, cfg.seed, cfg.reportDir)
	AddReportEntry("seed", cfg.seed)
	AddReportEntry("upload size", payload.FormatSize(cfg.uploadSize))
	AddReportEntry("provider", cfg.provider)
	AddReportEntry("reports", cfg.reportDir)
})

var _ = AfterSuite(func() {
	testbin.Cleanup()
})

// The reports people read are written once, after every scenario, from the
// run directory the scenarios filled.
var _ = ReportAfterSuite("reports", func(ctx SpecContext, _ Report) {
	if cfg.reportDir == "" {
		return
	}
	sum, err := reports.Write(ctx, cfg.reportDir, reports.Options{})
	if err != nil {
		fmt.Fprintf(GinkgoWriter, "octoha: no report written: %v\n", err)
		return
	}
	_ = sum
	fmt.Fprintf(os.Stdout, "\noctoha: reports in %s (index.html, summary.md, summary.json)\n", cfg.reportDir)
})

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
