package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/octoha/octoha/reports"
)

// scenariosFailed is returned by report --exit-code when the run it
// reported failed; the reports were written, and the exit code is 1.
type scenariosFailed struct{ failed, total int }

func (e scenariosFailed) Error() string {
	return fmt.Sprintf("%d of %d scenarios failed or did not finish", e.failed, e.total)
}

func (e scenariosFailed) ExitCode() int { return 1 }

// runReport writes the HTML, JSON and Markdown reports of a finished run
// (or of one scenario directory) and prints where they are and what
// failed.
func runReport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("report", stderr)
	var (
		in        = fs.String("in", "", "run directory (reports/out/<ts>) or one scenario directory (required)")
		out       = fs.String("out", "", "HTML report to write (default <in>/"+reports.HTMLFile+"); summary.json and summary.md go beside it")
		jsonOut   = fs.String("json", "", "summary.json to write (default beside the HTML report)")
		mdOut     = fs.String("md", "", "summary.md to write (default beside the HTML report)")
		maxPoints = fs.Int("max-points", reports.DefaultMaxPointsPerLane, "most points per lane of the request timeline (more are sampled, failures first)")
		exitCode  = fs.Bool("exit-code", false, "exit 1 when a scenario failed or did not finish (the reports are written either way)")
	)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: octoha report --in RUN_DIR [--out FILE.html] [flags]")
		fmt.Fprintln(stderr, "\nWrites a self-contained HTML report, summary.json (schema: reports/schema.md) and summary.md\n(for a CI job summary) for a finished run.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
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
	printReportSummary(stdout, sum)
	dir := *in
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	h, j, m := opts.Paths(dir)
	fmt.Fprintf(stdout, "\nHTML:     %s\nJSON:     %s\nMarkdown: %s\n", h, j, m)
	if t := sum.Run.Totals; *exitCode && !sum.Run.Passed {
		return scenariosFailed{failed: t.Failed + t.Incomplete, total: t.Scenarios}
	}
	return nil
}

// printReportSummary prints one line per scenario and, for failures, the
// first failed check.
func printReportSummary(w io.Writer, s *reports.Summary) {
	t := s.Run.Totals
	verdict := "PASSED"
	if !s.Run.Passed {
		verdict = "FAILED"
	}
	fmt.Fprintf(w, "run %s %s: %d passed, %d failed, %d skipped", s.Run.Name, verdict, t.Passed, t.Failed, t.Skipped)
	if t.Incomplete > 0 {
		fmt.Fprintf(w, ", %d did not finish", t.Incomplete)
	}
	fmt.Fprintln(w)
	for _, sc := range s.Scenarios {
		fmt.Fprintf(w, "  %-10s %s", sc.State, sc.Name)
		switch {
		case sc.Failure != nil && sc.Failure.Check != "":
			fmt.Fprintf(w, "\n             %s: %s", sc.Failure.Check, sc.Failure.Summary)
		case sc.Failure != nil && sc.Failure.Message != "":
			fmt.Fprintf(w, "\n             %s", firstLine(sc.Failure.Message))
		case sc.State == reports.StateSkipped && sc.SkipReason != "":
			fmt.Fprintf(w, " (%s)", sc.SkipReason)
		}
		fmt.Fprintln(w)
	}
}

func firstLine(s string) string {
	for i, r := range s {
		if r == '\n' {
			return s[:i]
		}
	}
	return s
}
