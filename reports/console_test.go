package reports

import (
	"fmt"
	"strings"
	"testing"
)

// The console lines of a run: the verdict, then each scenario with the
// first failed check, the first line of a message, or why it was skipped.
func TestSummaryWriteConsole(t *testing.T) {
	s := &Summary{Run: RunSummary{Name: "r1", Totals: Totals{Scenarios: 4, Passed: 1, Failed: 2, Skipped: 1, Incomplete: 1}},
		Scenarios: []ScenarioSummary{
			{Name: "a", State: StatePassed},
			{Name: "b", State: StateFailed, Failure: &Failure{Check: "durability", Summary: "2 lost"}},
			{Name: "c", State: StateFailed, Failure: &Failure{Message: "first\nsecond"}},
			{Name: "d", State: StateSkipped, SkipReason: "no docker"},
		}}
	var b strings.Builder
	s.WriteConsole(&b)
	want := "run r1 FAILED: 1 passed, 2 failed, 1 skipped, 1 did not finish\n" +
		"  passed     a\n" +
		"  failed     b\n             durability: 2 lost\n" +
		"  failed     c\n             first\n" +
		"  skipped    d (no docker)\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

// A comparison lists a scenario's first regressions and says how many
// more there are.
func TestComparisonWriteConsole(t *testing.T) {
	var regs []string
	for i := range 10 {
		regs = append(regs, fmt.Sprintf("figure %d", i))
	}
	c := &Comparison{TolerancePercent: 20, Regressions: 10, Scenarios: []ScenarioComparison{{Title: "Kill", Verdict: "regressed", Regressions: regs}}}
	c.Base.Name, c.Run.Name = "base", "run"
	var b strings.Builder
	c.WriteConsole(&b)
	out := b.String()
	if !strings.HasPrefix(out, "comparison base → run: ") || !strings.Contains(out, "(tolerance 20%)") {
		t.Errorf("heading: %q", out)
	}
	if strings.Count(out, "worse: ") != 8 || !strings.Contains(out, "… and 2 more (see the comparison)") {
		t.Errorf("want 8 regressions and 2 more:\n%s", out)
	}
}
