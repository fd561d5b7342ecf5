package reports

import (
	"fmt"
	"io"
	"strings"
)

// WriteConsole writes the run's verdict line, then one line per scenario
// and, for a failure, its first failed check (or the first line of its
// message): what `octoha report` prints.
func (s *Summary) WriteConsole(w io.Writer) {
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
			first, _, _ := strings.Cut(sc.Failure.Message, "\n")
			fmt.Fprintf(w, "\n             %s", first)
		case sc.State == StateSkipped && sc.SkipReason != "":
			fmt.Fprintf(w, " (%s)", sc.SkipReason)
		}
		fmt.Fprintln(w)
	}
}

// maxConsoleRegressions is how many of a scenario's regressions the
// console lists; the comparison's files list them all.
const maxConsoleRegressions = 8

// WriteConsole writes the comparison's verdict and each scenario's
// verdict with its regressions (the first few): what `octoha report
// --compare` prints.
func (c *Comparison) WriteConsole(w io.Writer) {
	fmt.Fprintf(w, "comparison %s → %s: %s, %d improvements (tolerance %g%%)\n", c.Base.Name, c.Run.Name, c.Heading(), c.Improvements, c.TolerancePercent)
	for _, s := range c.Scenarios {
		fmt.Fprintf(w, "  %-13s %s\n", s.Verdict, s.Title)
		for i, r := range s.Regressions {
			if i == maxConsoleRegressions && len(s.Regressions) > i+1 {
				fmt.Fprintf(w, "                … and %d more (see the comparison)\n", len(s.Regressions)-i)
				break
			}
			fmt.Fprintf(w, "                worse: %s\n", r)
		}
	}
}
