package reports

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"strings"
)

// compareIcon marks a scenario's comparison verdict.
func compareIcon(v string) string {
	switch v {
	case CompareRegressed:
		return "❌"
	case CompareImproved:
		return "⬆️"
	case CompareUnchanged:
		return "✅"
	default:
		return "⚠️"
	}
}

// compareHTMLIcon marks a verdict on the page with characters every
// font has (no emoji).
func compareHTMLIcon(v string) string {
	switch v {
	case CompareRegressed:
		return "✗"
	case CompareImproved:
		return "↑"
	case CompareUnchanged:
		return "✓"
	default:
		return "⚠"
	}
}

// compareVerdictWord is how a verdict reads in a table.
func compareVerdictWord(s ScenarioComparison) string {
	switch s.Verdict {
	case CompareRegressed:
		if len(s.Regressions) == 1 {
			return "1 regression"
		}
		return fmt.Sprintf("%d regressions", len(s.Regressions))
	case CompareImproved:
		return "improved"
	case CompareUnchanged:
		return "no regression"
	case CompareNotCompared:
		return "not compared (skipped)"
	case CompareOnlyInBase:
		return "missing from this run"
	case CompareOnlyInRun:
		return "new in this run"
	}
	return s.Verdict
}

func stateWord(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

// Heading is the verdict line of a comparison.
func (c *Comparison) Heading() string {
	switch c.Regressions {
	case 0:
		return "no regressions"
	case 1:
		return "1 regression"
	}
	return fmt.Sprintf("%d regressions", c.Regressions)
}

// WriteCompareMarkdown writes a comparison as Markdown for a CI job page:
// the verdict, a table of scenarios, then per scenario with a regression
// what got worse, and per compared scenario every figure folded away.
func WriteCompareMarkdown(w io.Writer, c *Comparison) error {
	var b strings.Builder
	icon := "✅"
	if c.Regressions > 0 {
		icon = "❌"
	}
	fmt.Fprintf(&b, "## octoha comparison: %s → %s: %s %s\n\n", mdText(c.Base.Name), mdText(c.Run.Name), icon, c.Heading())
	fmt.Fprintf(&b, "Base `%s` (%s), run `%s` (%s). A figure regresses when it gets worse by more than %s of the base "+
		"(times, latencies and failures up; throughput and success down) and by more than its noise floor "+
		"(0.1s, 1 ms, 1 point); a verdict from pass to fail always regresses. %d improvements.\n\n",
		strings.ReplaceAll(c.Base.Name, "`", "'"), runWord(c.Base), strings.ReplaceAll(c.Run.Name, "`", "'"), runWord(c.Run),
		fmtPercent(c.TolerancePercent), c.Improvements)
	b.WriteString("| | Scenario | Base | Run | Comparison |\n|---|---|---|---|---|\n")
	for _, s := range c.Scenarios {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", compareIcon(s.Verdict), mdCell(s.Title), stateWord(s.BaseState), stateWord(s.RunState), compareVerdictWord(s))
	}
	for _, s := range c.Scenarios {
		if len(s.Regressions) == 0 && len(s.Figures) == 0 && len(s.Notes) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n### %s %s\n\n", compareIcon(s.Verdict), mdText(s.Title))
		for _, r := range s.Regressions {
			fmt.Fprintf(&b, "- ❌ %s\n", mdText(r))
		}
		if len(s.Regressions) > 0 {
			b.WriteString("\n")
		}
		for _, n := range s.Notes {
			fmt.Fprintf(&b, "> %s\n\n", mdText(n))
		}
		if len(s.Checks) > 0 || len(s.Figures) > 0 {
			fmt.Fprintf(&b, "<details><summary>%d checks and %d figures side by side</summary>\n\n", len(s.Checks), len(s.Figures))
			if len(s.Checks) > 0 {
				b.WriteString("| Check | Base | Run | |\n|---|---|---|---|\n")
				for _, ck := range s.Checks {
					fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", mdCell(ck.Name), verdictWord(stateWord(ck.Base)), verdictWord(stateWord(ck.Run)), markOf(ck.Regression, ck.Improved))
				}
				b.WriteString("\n")
			}
			if len(s.Figures) > 0 {
				b.WriteString("| Figure | Base | Run | Change | |\n|---|---|---|---|---|\n")
				for _, f := range s.Figures {
					fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", mdCell(figureLabel(f)), fmtValue(f.Base, f.Unit), fmtValue(f.Run, f.Unit), changeText(f), markOf(f.Regression, f.Improvement))
				}
				b.WriteString("\n")
			}
			b.WriteString("</details>\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func runWord(r RunRef) string {
	t := r.Totals
	v := "passed"
	if !r.Passed {
		v = "failed"
	}
	return fmt.Sprintf("%s: %d passed, %d failed, %d skipped", v, t.Passed, t.Failed+t.Incomplete, t.Skipped)
}

func markOf(regression, improvement bool) string {
	switch {
	case regression:
		return "❌ worse"
	case improvement:
		return "⬆️ better"
	}
	return ""
}

func fmtPercent(p float64) string {
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.2f", p), "0"), ".") + "%"
}

//go:embed assets/compare.html.tmpl
var compareTemplate string

var compareTmpl = template.Must(template.New("compare").Funcs(template.FuncMap{
	"icon":    compareHTMLIcon,
	"verdict": compareVerdictWord,
	"state":   stateWord,
	"check":   func(v string) string { return verdictWord(stateWord(v)) },
	"val":     fmtValue,
	"change":  changeText,
	"label":   figureLabel,
	"pct":     fmtPercent,
	"runword": runWord,
	"head":    func(ss []string, n int) []string { return ss[:min(len(ss), n)] },
	"tail": func(ss []string, n int) []string {
		if len(ss) <= n {
			return nil
		}
		return ss[n:]
	},
}).Parse(compareTemplate))

// compareSection is one scenario on the comparison page.
type compareSection struct {
	ScenarioComparison
	Anchor   string
	Directed []FigureComparison // figures with a better direction
	Neutral  []FigureComparison // the rest
}

type comparePage struct {
	C        *Comparison
	Sections []compareSection
	CSS      template.CSS
	JS       template.JS
}

func writeCompareHTML(w io.Writer, c *Comparison) error {
	p := comparePage{C: c, CSS: template.CSS(pageCSS), JS: template.JS(pageJS)}
	for _, s := range c.Scenarios {
		sec := compareSection{ScenarioComparison: s, Anchor: s.anchor}
		for _, f := range s.Figures {
			if f.Better != "" {
				sec.Directed = append(sec.Directed, f)
			} else {
				sec.Neutral = append(sec.Neutral, f)
			}
		}
		p.Sections = append(p.Sections, sec)
	}
	if err := compareTmpl.Execute(w, p); err != nil {
		return fmt.Errorf("render comparison: %w", err)
	}
	return nil
}
