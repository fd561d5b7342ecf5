package reports

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
)

// CompareSchemaVersion names the comparison's JSON form (reports/schema.md).
const CompareSchemaVersion = "octoha.compare/v1"

// DefaultTolerance is how much worse (relative to the base) a figure may
// get before a comparison calls it a regression: 0.2 is 20 %.
const DefaultTolerance = 0.20

// Comparison verdicts of a scenario.
const (
	CompareRegressed   = "regressed"    // its verdict or a figure got worse beyond the tolerance
	CompareImproved    = "improved"     // something got better beyond the tolerance, nothing worse
	CompareUnchanged   = "unchanged"    // nothing moved beyond the tolerance
	CompareNotCompared = "not-compared" // it did not run (skipped) in one of the two runs
	CompareOnlyInBase  = "only-in-base" // the run has no such scenario
	CompareOnlyInRun   = "only-in-run"  // the base has no such scenario
)

// Directions: which way a figure is better. Neutral figures (counts of
// load, phase durations, configured limits) are shown but never flagged.
const (
	LowerIsBetter  = "lower"
	HigherIsBetter = "higher"
)

// CompareOptions says what Compare writes and how much worse is too much.
type CompareOptions struct {
	// Tolerance is the relative change a figure may worsen by before it
	// is a regression (0.2 = 20 %); 0 flags any worsening beyond the
	// noise floors (NoiseFloor). The CLI's default is DefaultTolerance.
	Tolerance float64
	// HTML, Markdown and JSON are the files to write; empty ones are not
	// written.
	HTML     string
	Markdown string
	JSON     string
}

// Comparison puts two runs side by side, scenario by scenario.
type Comparison struct {
	Schema           string               `json:"schema"`
	Base             RunRef               `json:"base"`
	Run              RunRef               `json:"run"`
	TolerancePercent float64              `json:"tolerancePercent"`
	Regressions      int                  `json:"regressions"`
	Improvements     int                  `json:"improvements"`
	Scenarios        []ScenarioComparison `json:"scenarios"`
}

// RunRef names one side of a comparison.
type RunRef struct {
	Name   string `json:"name"`
	Passed bool   `json:"passed"`
	Totals Totals `json:"totals"`
}

// ScenarioComparison is one scenario in both runs (matched by slug, then
// by title, then by name).
type ScenarioComparison struct {
	Slug  string `json:"slug"`
	Title string `json:"title"`
	Claim string `json:"claim,omitempty"`
	// BaseState and RunState are the scenario's states (passed, failed,
	// skipped, incomplete); empty when the run has no such scenario.
	BaseState string `json:"baseState"`
	RunState  string `json:"runState"`
	Verdict   string `json:"verdict"`
	// Regressions says, one line each, what got worse beyond the
	// tolerance; Improvements counts what got better.
	Regressions  []string           `json:"regressions"`
	Improvements int                `json:"improvements"`
	Checks       []CheckComparison  `json:"checks"`
	Figures      []FigureComparison `json:"figures"`
	Notes        []string           `json:"notes"`
	base, run    *ScenarioSummary   // nil when absent
	anchor       string             // HTML id
}

// CheckComparison is one check's verdict in both runs: pass, fail,
// expected (failed as the scenario declares it must), skip, or empty when
// the check did not run.
type CheckComparison struct {
	Name       string `json:"name"`
	Base       string `json:"base"`
	Run        string `json:"run"`
	Regression bool   `json:"regression"`
	Improved   bool   `json:"improved"`
}

// FigureComparison is one figure in both runs.
type FigureComparison struct {
	// Group is where the figure comes from: "scenario", a check's name,
	// "operations", or "latency <source> <kind or file>".
	Group string `json:"group"`
	Name  string `json:"name"`
	Unit  string `json:"unit,omitempty"`
	// Base and Run are absent when that run has no such figure.
	Base *float64 `json:"base"`
	Run  *float64 `json:"run"`
	// Change is Run - Base; ChangePercent is that relative to Base (absent
	// when Base is 0 or either side is missing).
	Change        *float64 `json:"change"`
	ChangePercent *float64 `json:"changePercent"`
	// Better is "lower", "higher" or empty (neutral: never flagged).
	Better      string `json:"better,omitempty"`
	Regression  bool   `json:"regression"`
	Improvement bool   `json:"improvement"`
}

// Compare reads two runs (each a run directory, a scenario directory or a
// summary.json) and compares them scenario by scenario: verdicts, check
// verdicts and every figure. It writes the files opts names and returns
// the comparison; Regressions > 0 means the run is worse than the base.
func Compare(ctx context.Context, baseDir, runDir string, opts CompareOptions) (*Comparison, error) {
	if opts.Tolerance < 0 || math.IsNaN(opts.Tolerance) {
		return nil, fmt.Errorf("compare: tolerance must not be negative, got %v", opts.Tolerance)
	}
	base, err := readSide(ctx, baseDir)
	if err != nil {
		return nil, err
	}
	run, err := readSide(ctx, runDir)
	if err != nil {
		return nil, err
	}
	c := CompareSummaries(base, run, opts.Tolerance)
	var files []struct {
		path string
		b    []byte
	}
	if opts.JSON != "" {
		var b bytes.Buffer
		if err := writeJSONValue(&b, c); err != nil {
			return nil, err
		}
		files = append(files, struct {
			path string
			b    []byte
		}{opts.JSON, b.Bytes()})
	}
	if opts.Markdown != "" {
		var b bytes.Buffer
		if err := WriteCompareMarkdown(&b, c); err != nil {
			return nil, err
		}
		files = append(files, struct {
			path string
			b    []byte
		}{opts.Markdown, b.Bytes()})
	}
	if opts.HTML != "" {
		var b bytes.Buffer
		if err := writeCompareHTML(&b, c); err != nil {
			return nil, err
		}
		files = append(files, struct {
			path string
			b    []byte
		}{opts.HTML, b.Bytes()})
	}
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("write comparison: %w", err)
		}
		if err := writeFileAtomic(f.path, apiKeyRE.ReplaceAll(f.b, []byte("API-"+Redacted))); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// readSide reads one side of a comparison: a summary.json file, or a run
// or scenario directory summarized as Write would.
func readSide(ctx context.Context, path string) (*Summary, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, inputError{fmt.Errorf("read run to compare: %w", err)}
	}
	if !st.IsDir() {
		s, err := ReadSummary(path)
		if err != nil {
			return nil, inputError{err}
		}
		if s.Run.Name == "" {
			s.Run.Name = filepath.Base(filepath.Dir(path))
		}
		return s, nil
	}
	r, err := loadRun(ctx, path)
	if err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		return nil, inputError{err}
	}
	return summarize(r), nil
}

// CompareSummaries compares two summaries; tolerance is as in
// CompareOptions.
func CompareSummaries(base, run *Summary, tolerance float64) *Comparison {
	c := &Comparison{
		Schema:           CompareSchemaVersion,
		Base:             RunRef{Name: base.Run.Name, Passed: base.Run.Passed, Totals: base.Run.Totals},
		Run:              RunRef{Name: run.Run.Name, Passed: run.Run.Passed, Totals: run.Run.Totals},
		TolerancePercent: round3(100 * tolerance),
		Scenarios:        []ScenarioComparison{},
	}
	used := make([]bool, len(run.Scenarios))
	match := func(b ScenarioSummary) int {
		for _, key := range []func(ScenarioSummary) string{
			func(s ScenarioSummary) string { return s.Slug },
			func(s ScenarioSummary) string { return s.Title },
			func(s ScenarioSummary) string { return s.Name },
		} {
			k := key(b)
			if k == "" {
				continue
			}
			for i, r := range run.Scenarios {
				if !used[i] && key(r) == k {
					return i
				}
			}
		}
		return -1
	}
	for i := range base.Scenarios {
		b := &base.Scenarios[i]
		var r *ScenarioSummary
		if j := match(*b); j >= 0 {
			used[j] = true
			r = &run.Scenarios[j]
		}
		c.Scenarios = append(c.Scenarios, compareScenario(b, r, tolerance))
	}
	for j := range run.Scenarios {
		if !used[j] {
			c.Scenarios = append(c.Scenarios, compareScenario(nil, &run.Scenarios[j], tolerance))
		}
	}
	for i := range c.Scenarios {
		s := &c.Scenarios[i]
		s.anchor = "s-" + anchorID(s.Slug)
		c.Regressions += len(s.Regressions)
		c.Improvements += s.Improvements
	}
	return c
}

// checkVerdict is how a comparison names a check's outcome.
func checkVerdict(c CheckSummary) string {
	if c.Expected() {
		return "expected"
	}
	return c.Status
}

func compareScenario(b, r *ScenarioSummary, tol float64) ScenarioComparison {
	s := ScenarioComparison{base: b, run: r, Regressions: []string{}, Checks: []CheckComparison{}, Figures: []FigureComparison{}, Notes: []string{}}
	one := r
	if b != nil {
		one = b
		s.BaseState = b.State
	}
	if r != nil {
		s.RunState = r.State
	}
	s.Slug, s.Title, s.Claim = one.Slug, one.Heading(), one.Claim
	switch {
	case b == nil:
		s.Verdict = CompareOnlyInRun
		s.Notes = append(s.Notes, "new in this run: the base has no such scenario")
		return s
	case r == nil:
		s.Verdict = CompareOnlyInBase
		s.Notes = append(s.Notes, "missing from this run: nothing to compare with the base")
		return s
	}
	regress := func(format string, args ...any) { s.Regressions = append(s.Regressions, fmt.Sprintf(format, args...)) }
	switch {
	case !b.Failed() && b.State != StateSkipped && r.Failed():
		regress("verdict: %s → %s", b.State, r.State)
	case b.Failed() && r.State == StatePassed:
		s.Improvements++
	}
	if b.State == StateSkipped || r.State == StateSkipped {
		s.Notes = append(s.Notes, fmt.Sprintf("%s in the base, %s in this run: figures of a skipped scenario are not compared", b.State, r.State))
	}

	// Checks, in the base's order, then the ones only the run has.
	runChecks := map[string]CheckSummary{}
	for _, c := range r.Checks {
		runChecks[c.Name] = c
	}
	seen := map[string]bool{}
	for _, bc := range b.Checks {
		seen[bc.Name] = true
		cc := CheckComparison{Name: bc.Name, Base: checkVerdict(bc)}
		if rc, ok := runChecks[bc.Name]; ok {
			cc.Run = checkVerdict(rc)
		}
		switch {
		case (cc.Base == "pass" || cc.Base == "expected") && cc.Run == "fail":
			cc.Regression = true
			regress("check %s: %s → fail", bc.Name, verdictWord(cc.Base))
		case cc.Base == "fail" && (cc.Run == "pass" || cc.Run == "expected"):
			cc.Improved = true
			s.Improvements++
		}
		s.Checks = append(s.Checks, cc)
	}
	for _, rc := range r.Checks {
		if !seen[rc.Name] {
			cc := CheckComparison{Name: rc.Name, Run: checkVerdict(rc)}
			s.Checks = append(s.Checks, cc)
		}
	}
	sort.SliceStable(s.Checks, func(i, j int) bool { return s.Checks[i].Regression && !s.Checks[j].Regression })

	if b.State != StateSkipped && r.State != StateSkipped {
		for _, f := range figurePairs(b, r) {
			f = judge(f, tol)
			if f.Regression {
				regress("%s: %s", figureLabel(f), describeChange(f))
			}
			if f.Improvement {
				s.Improvements++
			}
			s.Figures = append(s.Figures, f)
		}
	}
	switch {
	case len(s.Regressions) > 0:
		s.Verdict = CompareRegressed
	case b.State == StateSkipped || r.State == StateSkipped:
		s.Verdict = CompareNotCompared
	case s.Improvements > 0:
		s.Verdict = CompareImproved
	default:
		s.Verdict = CompareUnchanged
	}
	return s
}

func verdictWord(v string) string {
	if v == "expected" {
		return "failed as expected"
	}
	return v
}

// figureLabel is "group.name" ("convergence.eject-max"), or the name
// alone for the scenario's own figures.
func figureLabel(f FigureComparison) string {
	if f.Group == "scenario" {
		return f.Name
	}
	return f.Group + " " + f.Name
}
