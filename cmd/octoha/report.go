package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/octoha/octoha/reports"
)

// scenariosFailed is returned by report --exit-code when the run it
// reported failed; the reports were written, and the exit code is 1.
type scenariosFailed struct{ failed, total int }

func (e scenariosFailed) Error() string {
	return fmt.Sprintf("%d of %d scenarios failed or did not finish", e.failed, e.total)
}

func (e scenariosFailed) ExitCode() int { return 1 }

// regressionsFound is returned by report --compare when the run is worse
// than the base; the comparison was written, and the exit code is 1.
type regressionsFound struct{ n int }

func (e regressionsFound) Error() string {
	if e.n == 1 {
		return "1 regression against the base"
	}
	return fmt.Sprintf("%d regressions against the base", e.n)
}

func (e regressionsFound) ExitCode() int { return 1 }

const reportUsage = `Usage:
  octoha report --in RUN_DIR [--out FILE.html] [--json FILE.json] [--md FILE.md] [flags]
  octoha report --compare BASE_DIR RUN_DIR [--out FILE.html] [--md FILE.md] [--json FILE.json] [--tolerance 20%]

The first form writes the reports of a finished run (or of one scenario
directory). With none of --out, --json and --md it writes index.html,
summary.json (schema: reports/schema.md) and summary.md into RUN_DIR; with
any of them it writes exactly those files and nothing else (--out one.html
never touches a summary.json beside it).

The second form puts two runs side by side, scenario by scenario (matched by
slug, then title): verdicts, check verdicts and every figure (scenario and
check figures, operations, upload throughput, latency percentiles) with its
change. A figure regresses when it gets worse by more than the tolerance
relative to the base (times, latencies, failures, error rates up; throughput
and success down) and by more than its noise floor (0.1s, 1 ms, 1 point); a
verdict from pass to fail always regresses. BASE_DIR and RUN_DIR may also be
summary.json files. Without --out, --md or --json it writes RUN_DIR/compare.html.
It prints the regressions and exits 1 when there is any.

Flags:
`

// runReport writes the HTML, JSON and Markdown reports of a finished run
// (or of one scenario directory), or compares two runs, and prints where
// they are and what failed or regressed.
func runReport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("report", stderr)
	var (
		in        = fs.String("in", "", "run directory (reports/out/<ts>) or one scenario directory")
		compare   = fs.String("compare", "", "base run directory (or summary.json) to compare RUN_DIR, the next argument, with")
		out       = fs.String("out", "", "HTML file to write (default <in>/"+reports.HTMLFile+" with the summaries beside it; given, only this file unless --json/--md ask for more)")
		jsonOut   = fs.String("json", "", "summary.json (or, with --compare, the comparison as JSON) to write")
		mdOut     = fs.String("md", "", "summary.md (or, with --compare, the comparison as Markdown) to write")
		tolerance = fs.String("tolerance", "20%", "with --compare: how much worse than the base a figure may get before it is a regression (20% or 0.2)")
		maxPoints = fs.Int("max-points", reports.DefaultMaxPointsPerLane, "most points per lane of the request timeline (more are sampled, failures first)")
		exitCode  = fs.Bool("exit-code", false, "exit 1 when a scenario failed or did not finish (the reports are written either way)")
	)
	fs.Usage = func() {
		fmt.Fprint(stderr, reportUsage)
		fs.PrintDefaults()
	}
	rest, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if *compare != "" {
		if *in != "" {
			return fmt.Errorf("%w: --compare BASE_DIR RUN_DIR takes the run as an argument, not --in", errUsage)
		}
		if len(rest) != 1 {
			return fmt.Errorf("%w: --compare BASE_DIR RUN_DIR: want the run directory after the base, got %d arguments", errUsage, len(rest))
		}
		tol, err := parseTolerance(*tolerance)
		if err != nil {
			return fmt.Errorf("%w: --tolerance: %v", errUsage, err)
		}
		return runCompare(ctx, *compare, rest[0], reports.CompareOptions{Tolerance: tol, HTML: *out, Markdown: *mdOut, JSON: *jsonOut}, stdout)
	}
	if len(rest) > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, rest[0])
	}
	if *in == "" {
		return fmt.Errorf("%w: --in (the run directory) is required", errUsage)
	}
	if *maxPoints < 1 {
		return fmt.Errorf("%w: --max-points must be positive", errUsage)
	}
	opts := reports.Options{HTML: *out, JSON: *jsonOut, Markdown: *mdOut, MaxPointsPerLane: *maxPoints}
	sum, err := reports.Write(ctx, *in, opts)
	if err != nil {
		if errors.Is(err, reports.ErrBadInput) {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		return err
	}
	sum.WriteConsole(stdout)
	dir := *in
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	h, j, m := opts.Paths(dir)
	fmt.Fprintln(stdout)
	for _, f := range []struct{ what, path string }{{"HTML", h}, {"JSON", j}, {"Markdown", m}} {
		if f.path != "" {
			fmt.Fprintf(stdout, "%-9s %s\n", f.what+":", f.path)
		}
	}
	if t := sum.Run.Totals; *exitCode && !sum.Run.Passed {
		return scenariosFailed{failed: t.Failed + t.Incomplete, total: t.Scenarios}
	}
	return nil
}

// runCompare writes the comparison of two runs and prints its verdict and
// regressions.
func runCompare(ctx context.Context, base, run string, opts reports.CompareOptions, stdout io.Writer) error {
	if opts.HTML == "" && opts.Markdown == "" && opts.JSON == "" {
		dir := run
		if st, err := os.Stat(run); err == nil && !st.IsDir() {
			dir = filepath.Dir(run)
		}
		opts.HTML = filepath.Join(dir, "compare.html")
	}
	c, err := reports.Compare(ctx, base, run, opts)
	if err != nil {
		if errors.Is(err, reports.ErrBadInput) {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		return err
	}
	c.WriteConsole(stdout)
	fmt.Fprintln(stdout)
	for _, f := range []struct{ what, path string }{{"HTML", opts.HTML}, {"JSON", opts.JSON}, {"Markdown", opts.Markdown}} {
		if f.path != "" {
			p := f.path
			if abs, err := filepath.Abs(p); err == nil {
				p = abs
			}
			fmt.Fprintf(stdout, "%-9s %s\n", f.what+":", p)
		}
	}
	if c.Regressions > 0 {
		return regressionsFound{n: c.Regressions}
	}
	return nil
}

// parseInterspersed parses flags that may come before, between or after
// positional arguments (--compare BASE RUN --out x.html) and returns the
// positional ones.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var rest []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, fmt.Errorf("%w: %v", errUsage, err)
		}
		if fs.NArg() == 0 {
			return rest, nil
		}
		rest = append(rest, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// parseTolerance reads "20%" (or "20": a percentage) or "0.2" (a fraction
// below 1) as a fraction.
func parseTolerance(s string) (float64, error) {
	v, pct, err := parsePercent(s)
	if err != nil {
		return 0, fmt.Errorf("want a percentage such as 20%%, got %q", s)
	}
	if pct || v >= 1 {
		v /= 100
	}
	return v, nil
}

// parsePercent reads "20%" or a bare number (pct false): finite and not
// negative. Callers decide what a bare number means.
func parsePercent(s string) (v float64, pct bool, err error) {
	t := strings.TrimSpace(s)
	pct = strings.HasSuffix(t, "%")
	v, err = strconv.ParseFloat(strings.TrimSuffix(t, "%"), 64)
	if err == nil && (v < 0 || math.IsNaN(v) || math.IsInf(v, 0)) {
		err = errors.New("not a finite share")
	}
	return v, pct, err
}
