package reports

import (
	"fmt"
	"io"
	"strings"

	"github.com/octoha/octoha/harness/checker"
)

// headlineChecks are the check figures summary.md lists under "Key
// figures" beside each scenario's own figures: the ones that answer "was
// anything lost, and how fast did the cluster fail over?".
var headlineChecks = []struct{ check, figure string }{
	{"durability", "acknowledged"},
	{"durability", "missing"},
	{"durability", "corrupt"},
	{"convergence", "eject-max"},
	{"convergence", "rejoin-max"},
	{"error-window", "failures"},
}

// mdEvidenceLines is how many evidence lines each failed check shows.
const mdEvidenceLines = 5

// stateIcon is the Markdown marker of a scenario state.
func stateIcon(state string) string {
	switch state {
	case StatePassed:
		return "✅"
	case StateFailed:
		return "❌"
	case StateSkipped:
		return "⏭"
	default:
		return "⚠️"
	}
}

// WriteMarkdown writes the summary as Markdown for a CI job page (GitHub's
// $GITHUB_STEP_SUMMARY and the like): a table of scenarios, then each
// failure's failing checks with figures and top evidence, then key figures.
func WriteMarkdown(w io.Writer, s *Summary) error {
	var b strings.Builder
	t := s.Run.Totals
	verdict := "✅ passed"
	if !s.Run.Passed {
		verdict = "❌ failed"
	}
	fmt.Fprintf(&b, "## octoha run %s: %s\n\n", mdText(s.Run.Name), verdict)
	counts := []string{fmt.Sprintf("%d passed", t.Passed), fmt.Sprintf("%d failed", t.Failed), fmt.Sprintf("%d skipped", t.Skipped)}
	if t.Incomplete > 0 {
		counts = append(counts, fmt.Sprintf("%d incomplete", t.Incomplete))
	}
	fmt.Fprintf(&b, "%d scenarios: %s, in %s.\n\n", t.Scenarios, strings.Join(counts, ", "), fmtSeconds(s.Run.DurationSeconds))

	b.WriteString("| | Scenario | Duration | Seed | Result |\n|---|---|---|---|---|\n")
	for _, sc := range s.Scenarios {
		fmt.Fprintf(&b, "| %s | %s | %s | %d | %s |\n", stateIcon(sc.State), mdScenarioCell(sc), fmtSeconds(sc.DurationSeconds), sc.Seed, mdCell(resultLine(sc)))
	}

	for _, sc := range s.Scenarios {
		if !sc.Failed() {
			continue
		}
		fmt.Fprintf(&b, "\n### %s %s\n\n", stateIcon(sc.State), mdText(sc.Heading()))
		if sc.Claim != "" {
			fmt.Fprintf(&b, "*%s*\n\n", mdText(sc.Claim))
		}
		if sc.Cluster != "" {
			fmt.Fprintf(&b, "Cluster: %s. ", mdText(sc.Cluster))
		}
		fmt.Fprintf(&b, "Replay: `%s`\n\n", strings.ReplaceAll(sc.Replay, "`", "'"))
		failedChecks := 0
		for _, c := range sc.Checks {
			if c.Expected() {
				fmt.Fprintf(&b, "**%s** failed as expected ✓ (the scenario declares it must): %s\n\n", mdText(c.Name), mdText(c.Summary))
				continue
			}
			if !c.Unexpected() {
				continue
			}
			fmt.Fprintf(&b, "**%s** failed: %s\n\n", mdText(c.Name), mdText(c.Summary))
			if len(c.Figures) > 0 {
				fmt.Fprintf(&b, "Figures: %s\n\n", mdText(figureList(c.Figures)))
			}
			if len(c.Evidence) > 0 {
				ev := c.Evidence[:min(len(c.Evidence), mdEvidenceLines)]
				more := ""
				if n := len(c.Evidence) - len(ev); n > 0 {
					more = fmt.Sprintf("\n… %d more lines in the HTML report", n)
				}
				b.WriteString(codeBlock(strings.Join(ev, "\n") + more))
			}
			failedChecks++
		}
		if sc.Failure != nil && sc.Failure.Message != "" {
			// The failed checks say it already; the assertion message stays
			// one click away.
			msg := codeBlock(firstLines(sc.Failure.Message, 10))
			if failedChecks > 0 {
				msg = "<details><summary>Assertion message</summary>\n\n" + msg + "</details>\n\n"
			}
			b.WriteString(msg)
		}
		for _, wn := range sc.Warnings {
			fmt.Fprintf(&b, "> ⚠️ %s\n\n", mdText(wn))
		}
	}

	var rows []string
	for _, sc := range s.Scenarios {
		if sc.State == StateSkipped {
			continue
		}
		figs := append([]checker.Figure{}, sc.Figures...)
		for _, hc := range headlineChecks {
			for _, c := range sc.Checks {
				if c.Name != hc.check {
					continue
				}
				for _, f := range c.Figures {
					if f.Name == hc.figure {
						f.Name = hc.check + "." + f.Name
						figs = append(figs, f)
					}
				}
			}
		}
		ops := mdOperations(sc.Traffic)
		rows = append(rows, fmt.Sprintf("| %s | %s | %s |", mdCell(sc.Heading()), ops, mdCell(figureList(figs))))
	}
	if len(rows) > 0 {
		b.WriteString("\n### Key figures\n\nFailed or unknown operations that overlap a fault's window (its start to a few seconds after its end: the error-window check's grace) are what the fault was expected to cause; only the others are unexpected.\n\n| Scenario | Operations | Figures |\n|---|---|---|\n")
		b.WriteString(strings.Join(rows, "\n") + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// mdOperations is the Key figures cell for a scenario's operations: the
// failed and unknown ones split into those inside fault windows
// (expected) and the unexpected rest, which alone are marked.
func mdOperations(t TrafficSummary) string {
	out := fmt.Sprintf("%d (%d ok", t.Ops, t.OK)
	if t.Failures() == 0 {
		return out + ")"
	}
	if t.InFaultWindows > 0 {
		out += fmt.Sprintf("; %d failed inside fault windows, expected", t.InFaultWindows)
	}
	if t.AcceptedOutsideFaultWindows > 0 {
		out += fmt.Sprintf("; %d outside them with a status the scenario declares is not a failure", t.AcceptedOutsideFaultWindows)
	}
	if t.Unexpected > 0 {
		return out + fmt.Sprintf("; ❗ **%d failed unexpectedly**)", t.Unexpected)
	}
	return out + "; 0 unexpected)"
}

// resultLine is the one-line outcome of a scenario in the table.
func resultLine(sc ScenarioSummary) string {
	switch sc.State {
	case StateSkipped:
		if sc.SkipReason != "" {
			return "skipped: " + sc.SkipReason
		}
		return "skipped"
	case StateIncomplete:
		return "did not finish"
	}
	n := sc.CountChecks()
	if sc.Failure != nil {
		if sc.Failure.Check != "" {
			return fmt.Sprintf("%s: %s", sc.Failure.Check, sc.Failure.Summary)
		}
		return firstLines(sc.Failure.Message, 1)
	}
	out := fmt.Sprintf("%d of %d checks passed", n.Pass, len(sc.Checks))
	if n.Expected > 0 {
		var names []string
		for _, c := range sc.Checks {
			if c.Expected() {
				names = append(names, c.Name)
			}
		}
		out += ", " + strings.Join(names, ", ") + " failed as expected ✓"
	}
	if n.Fail > 0 {
		out += fmt.Sprintf(", %d failed", n.Fail)
	}
	if n.Skip > 0 {
		out += fmt.Sprintf(", %d skipped", n.Skip)
	}
	if len(sc.Checks) == 0 {
		out = "passed (no checker verdicts)"
	}
	return out
}

// mdScenarioCell is the scenario's table cell: its heading, and its claim
// on a second line when it has one.
func mdScenarioCell(sc ScenarioSummary) string {
	if sc.Claim == "" {
		return mdCell(sc.Heading())
	}
	return "**" + mdCell(sc.Heading()) + "**<br>*" + mdCell(sc.Claim) + "*"
}

// codeBlock fences text, keeping fences inside it from closing the block.
func codeBlock(text string) string {
	return "```text\n" + strings.ReplaceAll(text, "```", "'''") + "\n```\n\n"
}

// figureList renders figures compactly: "name=1.2s, other=3".
func figureList(fs []checker.Figure) string {
	parts := make([]string, len(fs))
	for i, f := range fs {
		parts[i] = f.String()
	}
	return strings.Join(parts, ", ")
}

// fmtSeconds renders a duration in seconds for people: 950ms, 12.3s, 4m05s.
func fmtSeconds(s float64) string {
	switch {
	case s <= 0:
		return "0s"
	case s < 1:
		return fmt.Sprintf("%.0fms", s*1000)
	case s < 60:
		return fmt.Sprintf("%.1fs", s)
	case s < 3600:
		return fmt.Sprintf("%dm%02ds", int(s)/60, int(s)%60)
	default:
		return fmt.Sprintf("%dh%02dm", int(s)/3600, (int(s)%3600)/60)
	}
}

// firstLines returns the first n lines of s.
func firstLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = append(lines[:n], fmt.Sprintf("… (%d more lines)", len(lines)-n))
	}
	return strings.Join(lines, "\n")
}

// mdText escapes text for Markdown outside tables: characters that would
// start markup or HTML.
func mdText(s string) string {
	r := strings.NewReplacer("\\", "\\\\", "<", "&lt;", ">", "&gt;", "*", "\\*", "_", "\\_", "`", "\\`", "[", "\\[", "]", "\\]", "\n", " ")
	return r.Replace(s)
}

// mdCell escapes text for a table cell.
func mdCell(s string) string {
	return strings.ReplaceAll(mdText(s), "|", "\\|")
}
