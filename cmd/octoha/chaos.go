package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/octoha/octoha/harness/azure"
	"github.com/octoha/octoha/harness/azure/azcert"
	"github.com/octoha/octoha/harness/certificate"
	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/payload"
	"github.com/octoha/octoha/harness/rundir"
	"github.com/octoha/octoha/harness/runner"
	"github.com/octoha/octoha/harness/scenario"
	"github.com/octoha/octoha/internal/confirm"
	"github.com/octoha/octoha/reports"
)

// catalogueFlags are the flags `octoha chaos` and `octoha certify` share.
type catalogueFlags struct {
	labels, focus, provider, clusterFile, uploadSize, out string
	seed                                                  int64
	list, allowDestructive, yes, verbose                  bool
	abortRate                                             string
	// certify only: Azure configuration rows and the plan.
	plan                   bool
	maxPackage, uploadRate string
}

func (f *catalogueFlags) register(fs *flag.FlagSet, certify bool) {
	fs.StringVar(&f.labels, "labels", "", "run the scenarios whose labels match this Ginkgo label-filter expression, e.g. 'health || drain', '!slow'")
	fs.StringVar(&f.focus, "focus", "", "run the scenarios whose title matches this regular expression")
	fs.StringVar(&f.uploadSize, "upload-size", "1GiB", "size of each large upload (e.g. 256MiB, 1GiB)")
	fs.Int64Var(&f.seed, "seed", 0, "seed of uploads and fault schedules (default: random; printed, so a run can be replayed)")
	fs.StringVar(&f.out, "out", "", "directory for histories and reports (default ./octoha-runs/<timestamp>)")
	fs.BoolVar(&f.list, "list", false, "print the catalogue (title, labels, needs, whether it can run here and why not) and exit")
	fs.BoolVar(&f.verbose, "v", false, "also print the detailed log on the console (it is always in <out>/octoha.log)")
	fs.StringVar(&f.clusterFile, "cluster", "", "YAML file describing a real cluster (external: lbURL, nodes, apiKeyEnv, hooks)")
	fs.BoolVar(&f.allowDestructive, "allow-destructive", false, "external clusters: allow destructive faults (each still needs its hook in the YAML)")
	fs.BoolVar(&f.yes, "yes", false, "external clusters: do not ask before destructive faults")
	if certify {
		fs.StringVar(&f.abortRate, "abort-error-rate", "5%", "stop a scenario and undo its faults when more than this share of requests through the load balancer fail outside fault windows")
		fs.BoolVar(&f.plan, "plan", false, "print what would be read from Azure and which faults would run against which resource, and exit (touches nothing, needs no credential)")
		fs.StringVar(&f.maxPackage, "max-package", "", "the largest package the cluster must take (default: --upload-size); judged against the gateway's request timeout and WAF limits")
		fs.StringVar(&f.uploadRate, "upload-rate", "", "the rate packages are uploaded at, e.g. 10MiB/s: the largest package's upload time is judged against the request timeout")
		f.provider = cluster.ProviderExternal
	} else {
		fs.StringVar(&f.provider, "provider", "local", "local (processes), docker (containers), auto (docker when an engine and the images are there) or external (--cluster)")
		fs.StringVar(&f.abortRate, "abort-error-rate", "0", "stop a scenario when more than this share of requests through the load balancer fail outside fault windows (0: never; certify defaults to 5%)")
	}
}

// runChaos runs the catalogue from the compiled binary.
func runChaos(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("chaos", stderr)
	var f catalogueFlags
	f.register(fs, false)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: octoha chaos [--labels EXPR] [--focus REGEX] [--provider local|docker|auto|external] [flags]")
		fmt.Fprintln(stderr, "\nRuns the chaos catalogue: each scenario brings up its cluster, drives load, injects faults,\nundoes them whatever happens, checks the history and writes junit.xml, ginkgo.json,\nindex.html, summary.json and summary.md into --out. Exit 0: every scenario passed (or was\nskipped, saying why); 1: a scenario failed; 2: usage or setup error.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	return runCatalogue(ctx, "chaos", f, stdout, stderr)
}

// runCertify runs the scenarios that apply to a real cluster and writes
// the certificate.
func runCertify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("certify", stderr)
	var f catalogueFlags
	f.register(fs, true)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: octoha certify --cluster FILE.yaml [--labels EXPR] [--allow-destructive] [--yes] [flags]")
		fmt.Fprintln(stderr, "\nCertifies a real Octopus HA cluster before an upgrade: runs the catalogue's scenarios that\napply to it (read-only and drain-only unless destructive faults are allowed AND hooked),\nundoes every fault however the run ends, and writes certificate.md and certificate.json\nbesides the usual reports. Exit 0: certified; 1: a requirement failed or a scenario\nfailed; 2: usage or setup error. The API key is read from the variable the YAML names\n(apiKeyEnv, default OCTOHA_API_KEY) and never printed.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if f.clusterFile == "" {
		return fmt.Errorf("%w: --cluster FILE.yaml (the real cluster) is required", errUsage)
	}
	return runCatalogue(ctx, "certify", f, stdout, stderr)
}

// runFailed is the error of a run in which a scenario failed: exit 1.
type runFailed struct{ msg string }

func (e runFailed) Error() string { return e.msg }
func (e runFailed) ExitCode() int { return 1 }

func parseRate(s string) (float64, error) {
	v, pct, err := parsePercent(s)
	if err != nil {
		return 0, fmt.Errorf("%w: --abort-error-rate %q: want a share such as 5%% or 0.05", errUsage, s)
	}
	if pct || v > 1 {
		v /= 100
	}
	if v > 1 {
		return 0, fmt.Errorf("%w: --abort-error-rate %q is more than 100%%", errUsage, s)
	}
	return v, nil
}

func runCatalogue(ctx context.Context, command string, f catalogueFlags, stdout, stderr io.Writer) error {
	size, err := payload.ParseSize(f.uploadSize)
	if err != nil || size <= 0 {
		return fmt.Errorf("%w: --upload-size %q: want a positive size such as 256MiB or 1GiB", errUsage, f.uploadSize)
	}
	rate, err := parseRate(f.abortRate)
	if err != nil {
		return err
	}
	if f.clusterFile != "" && f.provider != cluster.ProviderExternal {
		if command == "chaos" && (f.provider == "local" || f.provider == "") {
			f.provider = cluster.ProviderExternal
		} else {
			return fmt.Errorf("%w: --cluster describes a real cluster: use it with --provider external", errUsage)
		}
	}
	if f.provider == cluster.ProviderExternal && f.clusterFile == "" {
		return fmt.Errorf("%w: --provider external needs --cluster FILE.yaml", errUsage)
	}
	seed := f.seed
	if seed == 0 {
		seed = runner.NewSeed()
	}
	// Nodes run as this very binary, whatever the release calls it.
	opts := runner.Options{UploadSize: size, Seed: seed, AbortErrorRate: rate, Binary: nodeBinary()}
	ext, err := loadExternal(f)
	if err != nil {
		return err
	}
	opts.External = ext
	if f.plan {
		return printPlan(stdout, ext, f.allowDestructive)
	}
	azSettings, err := azureSettings(f, size)
	if err != nil {
		return err
	}
	provider, why, err := runner.ResolveProvider(ctx, f.provider)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	opts.Provider = provider

	all := scenario.Catalogue()
	selected, err := selectScenarios(all, f, command)
	if err != nil {
		return err
	}
	if f.list {
		return listCatalogue(ctx, stdout, opts, all, selected)
	}
	if len(selected) == 0 {
		return fmt.Errorf("%w: no scenario matches --labels %q --focus %q (octoha %s --list shows them)", errUsage, f.labels, f.focus, command)
	}

	out, logger, closeLog, err := openRunDir(f.out, f.verbose, stderr)
	if err != nil {
		return err
	}
	defer closeLog()
	opts.Logger = logger
	opts.OutDir = out
	opts.Console = stdout
	opts.Progress = stdout
	opts.Replay = func(sc scenario.Scenario) string { return runner.Replay(command, sc, opts, f.clusterFile) }
	if provider == cluster.ProviderExternal {
		opts.Confirm = confirm.Terminal(f.yes, stdout, os.Stdin)
	}

	fmt.Fprintf(stdout, "octoha %s: %d of %d scenarios selected; provider %s; upload size %s; seed %d (replay with --seed %d)\n",
		command, len(selected), len(all), provider, runner.SizeArg(size), seed, seed)
	if why != "" {
		fmt.Fprintf(stdout, "octoha %s: %s\n", command, why)
	}
	fmt.Fprintf(stdout, "octoha %s: output in %s\n", command, out)

	configRows, err := azureRows(ctx, command, ext, azSettings, opts.Logger, stdout)
	if err != nil {
		return err
	}
	// An interrupt cancels ctx: the scenario in progress stops, undoes its
	// faults and tears down; no further scenario starts. Further signals
	// are held by the caller's handler while that happens.
	suite := runner.RunSuite(ctx, opts, command, selected)
	start, results, counts := suite.Start, suite.Results, suite.Counts
	if err := runner.WriteSuiteReports(ctx, out, "octoha "+command, start, all, results); err != nil {
		fmt.Fprintf(stderr, "octoha %s: %v\n", command, err)
	}
	if len(results) > 0 {
		if _, err := reports.Write(context.WithoutCancel(ctx), out, reports.Options{}); err != nil {
			fmt.Fprintf(stderr, "octoha %s: no HTML report: %v\n", command, err)
		}
	}
	certFailed := false
	if command == "certify" {
		c := certificateFor(ctx, opts, ext, all, results, configRows)
		if err := c.Write(out); err != nil {
			return err
		}
		c.WriteConsole(stdout)
		certFailed = c.Verdict == "FAIL"
	}
	fmt.Fprintf(stdout, "\noctoha %s: %d passed, %d failed, %d skipped in %s\n", command,
		counts[runner.Passed], counts[runner.Failed], counts[runner.Skipped], time.Since(start).Round(time.Second))
	fmt.Fprintf(stdout, "octoha %s: reports in %s (index.html, summary.md, junit.xml)\n", command, out)
	switch {
	case ctx.Err() != nil:
		return runFailed{fmt.Sprintf("interrupted after %d of %d scenarios; every fault of the scenario in progress was undone", len(results), len(selected))}
	case counts[runner.Failed] > 0:
		return runFailed{fmt.Sprintf("%d of %d scenarios failed — open %s to see why", counts[runner.Failed], len(results), filepath.Join(out, reports.HTMLFile))}
	case certFailed:
		return runFailed{"the cluster is not certified: see certificate.md"}
	}
	return nil
}

// azureRows reads a real Azure cluster's configuration rows for certify
// (none for chaos, or without an azure: section).
func azureRows(ctx context.Context, command string, ext *cluster.Spec, settings azure.Settings, logger *slog.Logger, stdout io.Writer) ([]certificate.Row, error) {
	if command != "certify" || ext == nil || ext.Azure == nil {
		return nil, nil
	}
	fmt.Fprintf(stdout, "octoha certify: reading the Azure configuration of %s\n", ext.Azure.ResourceGroup)
	rows, err := azcert.Rows(ctx, ext, settings, azure.Options{Logger: logger})
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(stdout, "octoha certify: ejection bound from the probe: %s × %d\n", ext.LB.Interval, ext.LB.Fall)
	return rows, nil
}

// printPlan says what certify would read and inject, touching nothing.
func printPlan(stdout io.Writer, ext *cluster.Spec, allowDestructive bool) error {
	if ext == nil {
		return fmt.Errorf("%w: --plan needs --cluster FILE.yaml", errUsage)
	}
	if err := azcert.Plan(stdout, *ext, allowDestructive); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	return nil
}

// loadExternal reads --cluster's spec of a real cluster (nil without one).
func loadExternal(f catalogueFlags) (*cluster.Spec, error) {
	if f.clusterFile == "" {
		return nil, nil
	}
	spec, err := cluster.LoadSpec(f.clusterFile)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	if spec.External == nil {
		return nil, fmt.Errorf("%w: %s has no external: section (lbURL, nodes, apiKeyEnv, hooks)", errUsage, f.clusterFile)
	}
	if f.allowDestructive {
		spec.External.AllowDestructive = true
	}
	return &spec, nil
}

// selectScenarios filters the catalogue by --labels and --focus; certify
// keeps only the scenarios that apply to a real cluster.
func selectScenarios(all []scenario.Scenario, f catalogueFlags, command string) ([]scenario.Scenario, error) {
	selected, err := runner.Select(all, f.labels, f.focus)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	if command != "certify" {
		return selected, nil
	}
	var applicable []scenario.Scenario
	for _, sc := range selected {
		if sc.RunsOn(cluster.ProviderExternal) == nil {
			applicable = append(applicable, sc)
		}
	}
	return applicable, nil
}

// openRunDir makes the run's output directory (default
// ./octoha-runs/<timestamp>) and its octoha.log, also on stderr with -v.
func openRunDir(dir string, verbose bool, stderr io.Writer) (string, *slog.Logger, func(), error) {
	if dir == "" {
		dir = filepath.Join("octoha-runs", time.Now().Format("20060102-150405"))
	}
	if verbose {
		return rundir.Create(dir, stderr)
	}
	return rundir.Create(dir, nil)
}

// listCatalogue prints every scenario with whether it can run here.
func listCatalogue(ctx context.Context, w io.Writer, opts runner.Options, all, selected []scenario.Scenario) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "SCENARIO\tLABELS\tNEEDS\tRUNS HERE (%s)\n", opts.Provider)
	sel := map[string]bool{}
	for _, sc := range selected {
		sel[sc.Title] = true
	}
	for _, sc := range all {
		if !sel[sc.Title] {
			continue
		}
		needs := make([]string, len(sc.Needs))
		for i, n := range sc.Needs {
			needs[i] = string(n)
		}
		here := "yes"
		if err := runner.Preflight(ctx, opts, sc); err != nil {
			here = "no: " + strings.ReplaceAll(err.Error(), "\n", "; ")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", sc.Title, strings.Join(sc.Labels(), ","), strings.Join(needs, ","), here)
	}
	return tw.Flush()
}
