package reports

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/octoha/octoha/harness/checker"
)

var (
	//go:embed assets/report.html.tmpl
	pageTemplate string
	//go:embed assets/report.css
	pageCSS string
	//go:embed assets/report.js
	pageJS string
)

var pageTmpl = template.Must(template.New("report").Funcs(template.FuncMap{
	"secs":  fmtSeconds,
	"fig":   func(f checker.Figure) string { return f.String() },
	"icon":  stateIcon,
	"msf":   func(v float64) string { return fmtMs(v) },
	"pct":   func(v float64) string { return fmt.Sprintf("%.1f%%", v) },
	"lines": func(s string, n int) string { return firstLines(s, n) },
	"head": func(ss []string, n int) []string {
		return ss[:min(len(ss), n)]
	},
	"tail": func(ss []string, n int) []string {
		if len(ss) <= n {
			return nil
		}
		return ss[n:]
	},
	"offset": func(f FaultSummary) string {
		s := fmt.Sprintf("t+%.3fs", f.StartOffset)
		if f.EndOffset == nil {
			return s + " → never recovered"
		}
		return s + fmt.Sprintf(" → t+%.3fs (%.3fs)", *f.EndOffset, *f.EndOffset-f.StartOffset)
	},
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "unknown"
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"bytes": fmtBytes,
}).Parse(pageTemplate))

// page is what the template renders.
type page struct {
	Run       RunSummary
	Failures  []*scenarioView
	Scenarios []*scenarioView
	CSS       template.CSS
	JS        template.JS
}

type scenarioView struct {
	S          ScenarioSummary
	Anchor     string
	SpecYAML   string
	Timeline   *plotView
	Throughput *plotView
	Uploads    *plotView
	Tasks      *plotView
	HasHistory bool
	HasBlame   bool
	Logs       []link
	CheckCount CheckCounts
	// Expected lists the checks that failed as the scenario declared.
	Expected   []CheckSummary
	Components []ComponentSummary
	Embedded   int
}

type plotView struct {
	SVG   template.HTML
	Notes []string
}

type link struct{ Href, Name string }

// writeHTML renders the self-contained page: every style, script and plot
// is inline, so the file works offline and can be attached anywhere.
func writeHTML(w io.Writer, r *run, sum *Summary, htmlDir string, opts Options) error {
	p := page{Run: sum.Run, CSS: template.CSS(pageCSS), JS: template.JS(pageJS)}
	for i, l := range r.Scenarios {
		s := sum.Scenarios[i]
		v := &scenarioView{S: s, Anchor: "s-" + anchorID(s.Slug), HasHistory: l.History != nil, HasBlame: len(l.blame) > 0, Components: s.Components}
		for _, c := range s.Components {
			if c.Embedded {
				v.Embedded++
			}
		}
		v.CheckCount = s.CountChecks()
		for _, c := range s.Checks {
			if c.Expected() {
				v.Expected = append(v.Expected, c)
			}
		}
		if l.Spec != nil {
			rs := l.Spec.Redacted()
			b, err := yaml.Marshal(rs)
			if err != nil {
				return fmt.Errorf("render cluster spec of %s: %w", l.Slug, err)
			}
			v.SpecYAML = Scrub(string(b))
		}
		if l.History != nil {
			v.Timeline = toView(timelinePlot(l, opts.maxPoints()))
			v.Throughput = toView(throughputPlot(l))
			v.Uploads = toView(uploadPlot(l, opts.maxUploadRows()))
			v.Tasks = toView(tasksPlot(l))
		}
		for _, lg := range l.Logs {
			abs := filepath.Join(l.Dir, filepath.FromSlash(lg))
			rel, err := filepath.Rel(htmlDir, abs)
			if err != nil {
				rel = abs
			}
			v.Logs = append(v.Logs, link{Href: (&url.URL{Path: filepath.ToSlash(rel)}).String(), Name: lg})
		}
		p.Scenarios = append(p.Scenarios, v)
		if s.Failed() {
			p.Failures = append(p.Failures, v)
		}
	}
	if err := pageTmpl.Execute(w, p); err != nil {
		return fmt.Errorf("render HTML report: %w", err)
	}
	return nil
}

func toView(p *plotInfo) *plotView {
	if p == nil {
		return nil
	}
	// The SVG is built by svg.go, which escapes every value from the run.
	return &plotView{SVG: template.HTML(p.SVG), Notes: p.Notes}
}

// anchorID keeps an HTML id to safe characters.
func anchorID(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	return b.String()
}

func fmtMs(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v < 1:
		return fmt.Sprintf("%.0fµs", v*1000)
	case v < 1000:
		return fmt.Sprintf("%.1fms", v)
	default:
		return fmt.Sprintf("%.2fs", v/1000)
	}
}
