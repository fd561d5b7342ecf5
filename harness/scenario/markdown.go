package scenario

import (
	"fmt"
	"slices"
	"strings"
)

// Markdown renders the catalogue as the page docs/catalogue.md: one row per
// scenario with its labels, its claim and the checks it expects to fail.
// The page is generated so that it cannot drift from the code; a test
// compares the two.
func Markdown(cat []Scenario) string {
	var b strings.Builder
	b.WriteString("# The chaos catalogue\n\n")
	b.WriteString("<!-- Generated from harness/scenario by `make docs`; do not edit by hand. -->\n\n")
	fmt.Fprintf(&b, "%d scenarios, in the order they run. Pick them by label with\n", len(cat))
	b.WriteString("`make chaos LABELS='…'` or `octoha chaos --labels '…'` (a Ginkgo label-filter\n")
	b.WriteString("expression), or by title with `FOCUS` / `--focus`; `octoha chaos --list` says\n")
	b.WriteString("which can run on this machine. A check listed under *expected to fail* must\n")
	b.WriteString("fail for its scenario to pass: it is a control proving the harness catches\n")
	b.WriteString("the fault or misconfiguration (shown as \"failed as expected\" in reports).\n\n")
	b.WriteString("| scenario | labels | claim | expected to fail |\n|---|---|---|---|\n")
	for _, sc := range cat {
		var expect []string
		for _, c := range sc.Checks {
			if c.ExpectFail {
				e := "`" + c.Name + "`"
				if c.Finding != "" {
					e += " (" + c.Finding + ")"
				}
				expect = append(expect, e)
			}
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", cell(sc.Title), "`"+strings.Join(sc.Labels(), " ")+"`", cell(sc.Claim), strings.Join(expect, ", "))
	}
	b.WriteString("\n## Labels\n\n")
	b.WriteString("Labels are derived from each scenario's fields (its faults, load, uploads,\n")
	b.WriteString("load balancer and the providers it runs on), never listed by hand.\n\n")
	b.WriteString("| label | scenarios |\n|---|---|\n")
	for _, l := range AllLabels {
		n := 0
		for _, sc := range cat {
			if slices.Contains(sc.Labels(), l) {
				n++
			}
		}
		fmt.Fprintf(&b, "| `%s` | %d |\n", l, n)
	}
	return b.String()
}

func cell(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "|", `\|`), "\n", " ")
}
