package reports

// Figures compared one by one: matching them across two runs, their noise
// floors and directions, and the verdict on each change.

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/octoha/octoha/harness/checker"
)

// NoiseFloor is the smallest change of a figure in unit that can count as
// a regression or an improvement, whatever the tolerance: timings jitter
// by tens of milliseconds, latencies by a fraction of a millisecond,
// percentages by a fraction of a point.
func NoiseFloor(unit string) float64 {
	switch unit {
	case "s":
		return 0.1
	case "ms":
		return 1
	case "%":
		return 1
	}
	return 0
}

// neutralFigures are the figures (last dotted segment) that measure the
// load or the setup, not the cluster's quality: shown, never flagged.
var neutralFigures = map[string]bool{
	"duration": true, "span": true, "grace": true, "required": true, "allowed-outside": true,
	"ops": true, "ok-ops": true, "uploads": true, "faults": true, "lb-samples": true,
	"acknowledged": true, "verified": true, "endpoints": true, "bytes-read": true,
	"node-metadata-only": true, "node-faults": true, "upload-attempts": true,
	"expected-during-faults": true, "expected-drop": true, "planned-capacity": true,
	"sticky-share": true, "nodes-reached-with-cookie": true, "nodes-reached-without-cookie": true,
	"uploads-in-flight-at-drain": true, "uploads-retried": true, "files": true, "rows": true,
	"other-files": true, "unknown-present": true, "first-failure": true, "requests": true,
	"rate": true, "max": true,
}

// worseWhenHigher are name fragments of figures that count failures or
// damage: more is worse.
var worseWhenHigher = []string{
	"failure", "missing", "corrupt", "unreadable", "unknown-absent", "not-rejoined", "orphan",
	"temp-files", "rows-without-file", "size-mismatch", "error-rate", "errors", "served-during",
	"body-limit", "5xx", "lost", "outside", "capacity-drop", "unverifiable", "status-",
}

// FigureDirection says which way a figure is better: times, latencies,
// failures and error rates are better lower; throughput and success
// rates better higher; counts of load and setup have no direction ("").
func FigureDirection(name, unit string) string {
	leaf := strings.ToLower(name)
	if i := strings.LastIndex(leaf, "."); i >= 0 {
		leaf = leaf[i+1:]
	}
	if neutralFigures[leaf] {
		return ""
	}
	switch {
	case unit == "ops/s" || unit == "MB/s" || unit == "tasks/s" || strings.Contains(leaf, "throughput") || leaf == "success":
		return HigherIsBetter
	}
	for _, w := range worseWhenHigher {
		if strings.Contains(leaf, w) {
			return LowerIsBetter
		}
	}
	if unit == "s" || unit == "ms" {
		return LowerIsBetter
	}
	return ""
}

// namedFigure is one figure of one side, keyed for matching.
type namedFigure struct {
	group, name string
	fig         checker.Figure
}

// sideFigures lists every figure of a scenario summary: its own figures,
// every check's figures, operation counts and latencies. A name repeated
// within a group gets "#2", "#3", … so both are compared.
func sideFigures(s *ScenarioSummary) []namedFigure {
	var out []namedFigure
	count := map[string]int{}
	add := func(group string, f checker.Figure) {
		k := group + "\x00" + f.Name
		count[k]++
		if n := count[k]; n > 1 {
			f.Name += "#" + strconv.Itoa(n)
		}
		out = append(out, namedFigure{group: group, name: f.Name, fig: f})
	}
	for _, f := range s.Figures {
		add("scenario", f)
	}
	for _, c := range s.Checks {
		if c.Status == string(checker.Skip) {
			continue
		}
		for _, f := range c.Figures {
			add(c.Name, f)
		}
	}
	t := s.Traffic
	if t.Ops > 0 {
		add("operations", checker.Figure{Name: "ops", Value: float64(t.Ops), Unit: "ops"})
		add("operations", checker.Figure{Name: "failures-in-fault-windows", Value: float64(t.InFaultWindows), Unit: "ops"})
		add("operations", checker.Figure{Name: "unexpected-failures", Value: float64(t.Unexpected), Unit: "ops"})
		if t.UploadsAcknowledged > 0 {
			add("operations", checker.Figure{Name: "upload-throughput", Value: t.UploadMBPerSecond, Unit: "MB/s"})
		}
	}
	// History rows repeat what a vegeta file of the same attack says (the
	// same requests); compare the vegeta file's, and history rows only for
	// kinds no results file covers.
	attacked := map[string]bool{}
	for _, l := range s.Latency {
		if l.Source == SourceVegeta {
			for _, k := range strings.Split(l.Kind, ", ") {
				attacked[k] = true
			}
		}
	}
	for _, l := range s.Latency {
		if l.Source == SourceHistory && attacked[l.Kind] {
			continue
		}
		g := "latency " + l.Kind + " (history)"
		if l.Source == SourceVegeta {
			g = "latency " + l.File
		}
		for _, f := range []checker.Figure{
			{Name: "requests", Value: float64(l.Count), Unit: "requests"},
			{Name: "success", Value: l.SuccessPercent, Unit: "%"},
			{Name: "rate", Value: l.RatePerSecond, Unit: "req/s"},
			{Name: "mean", Value: l.MeanMs, Unit: "ms"},
			{Name: "p50", Value: l.P50Ms, Unit: "ms"},
			{Name: "p90", Value: l.P90Ms, Unit: "ms"},
			{Name: "p95", Value: l.P95Ms, Unit: "ms"},
			{Name: "p99", Value: l.P99Ms, Unit: "ms"},
			{Name: "max", Value: l.MaxMs, Unit: "ms"},
		} {
			add(g, f)
		}
	}
	return out
}

// figurePairs matches the two sides' figures by group and name, in the
// base's order, then the ones only the run has.
func figurePairs(b, r *ScenarioSummary) []FigureComparison {
	bf, rf := sideFigures(b), sideFigures(r)
	idx := map[string]int{}
	for i, f := range rf {
		idx[f.group+"\x00"+f.name] = i
	}
	used := make([]bool, len(rf))
	var out []FigureComparison
	for _, f := range bf {
		v := f.fig.Value
		fc := FigureComparison{Group: f.group, Name: f.name, Unit: f.fig.Unit, Base: &v}
		if i, ok := idx[f.group+"\x00"+f.name]; ok {
			used[i] = true
			w := rf[i].fig.Value
			fc.Run = &w
			if fc.Unit == "" {
				fc.Unit = rf[i].fig.Unit
			}
		}
		out = append(out, fc)
	}
	for i, f := range rf {
		if !used[i] {
			v := f.fig.Value
			out = append(out, FigureComparison{Group: f.group, Name: f.name, Unit: f.fig.Unit, Run: &v})
		}
	}
	return out
}

// judge fills in a figure's change and says whether it is a regression or
// an improvement: it moved the figure's worse (better) way by more than
// the tolerance relative to the base and more than the unit's noise
// floor. From a base of 0, any move beyond the noise floor counts.
func judge(f FigureComparison, tol float64) FigureComparison {
	f.Better = FigureDirection(f.Name, f.Unit)
	if strings.HasPrefix(f.Group, "latency ") {
		// Latency rows name their figures plainly (p99, success).
		switch f.Name {
		case "success":
			f.Better = HigherIsBetter
		case "mean", "p50", "p90", "p95", "p99":
			f.Better = LowerIsBetter
		default:
			f.Better = ""
		}
	}
	if f.Base == nil || f.Run == nil {
		return f
	}
	d := round3(*f.Run - *f.Base)
	f.Change = &d
	if *f.Base != 0 {
		p := round3(100 * d / math.Abs(*f.Base))
		f.ChangePercent = &p
	}
	if f.Better == "" || d == 0 {
		return f
	}
	worse := (d > 0) == (f.Better == LowerIsBetter)
	mag := math.Abs(d)
	if mag <= NoiseFloor(f.Unit) || mag <= tol*math.Abs(*f.Base)+1e-9 {
		return f
	}
	if worse {
		f.Regression = true
	} else {
		f.Improvement = true
	}
	return f
}

// fmtValue renders a figure's value with its unit.
func fmtValue(v *float64, unit string) string {
	if v == nil {
		return "—"
	}
	n := strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.3f", round3(*v)), "0"), ".")
	if n == "-0" {
		n = "0"
	}
	switch unit {
	case "", "count":
		return n
	case "s", "%":
		return n + unit
	default:
		return n + " " + unit
	}
}

// describeChange is "0.9s → 1.6s (+77.8%)".
func describeChange(f FigureComparison) string {
	out := fmtValue(f.Base, f.Unit) + " → " + fmtValue(f.Run, f.Unit)
	if s := changeText(f); s != "" {
		out += " (" + s + ")"
	}
	return out
}

// changeText is "+77.8%", or "+0.7s" from a base of 0, or "" unchanged.
func changeText(f FigureComparison) string {
	switch {
	case f.Change == nil || *f.Change == 0:
		return ""
	case f.ChangePercent != nil:
		return fmt.Sprintf("%+.1f%%", *f.ChangePercent)
	default:
		sign := "+"
		if *f.Change < 0 {
			sign = ""
		}
		return sign + fmtValue(f.Change, f.Unit) + " from 0"
	}
}
