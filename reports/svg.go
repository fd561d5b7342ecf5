package reports

import (
	"fmt"
	"html"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/octoha/octoha/harness/history"
)

// Plot geometry, in SVG user units (the SVG scales to the page width).
const (
	plotW      = 1200.0
	plotLeft   = 150.0 // lane labels and y ticks
	plotRight  = 60.0  // right axis of the throughput plot
	axisH      = 26.0
	laneH      = 116.0
	stripH     = 12.0
	faultRowH  = 16.0
	uploadRowH = 20.0
	charW      = 6.2 // average width of an 11px sans-serif character
)

// DefaultMaxPointsPerLane bounds the points the timeline draws per lane;
// above it points are sampled (every failure is kept first) and the lane
// says so.
const DefaultMaxPointsPerLane = 4000

// DefaultMaxUploadRows bounds the rows of the upload plot.
const DefaultMaxUploadRows = 40

// maxTitledPoints bounds the failed requests drawn with their own tooltip
// per scenario; the rest are drawn as plain points.
const maxTitledPoints = 2000

// Colours, shared with the CSS legend.
var (
	outcomeColour = map[history.Outcome]string{
		history.OK:      "#2f9e44",
		history.Failed:  "#e03131",
		history.Unknown: "#f59f00",
	}
)

// lbColour colours a load balancer state.
func lbColour(state string) string {
	switch s := strings.ToUpper(state); {
	case s == "UP":
		return "#2f9e44"
	case s == "DOWN" || strings.HasPrefix(s, "DOWN"):
		return "#e03131"
	case s == "DRAIN" || s == "NOLB":
		return "#f59f00"
	case s == "MAINT":
		return "#868e96"
	default:
		return "#ced4da"
	}
}

// svgw writes SVG markup; every text and attribute value from a run goes
// through esc.
type svgw struct{ b strings.Builder }

func (w *svgw) p(format string, args ...any) { fmt.Fprintf(&w.b, format, args...) }
func (w *svgw) String() string               { return w.b.String() }

func esc(s string) string { return html.EscapeString(s) }

// num renders a coordinate with at most one decimal, keeping the markup
// small on plots with thousands of points.
func num(f float64) string {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return "0"
	}
	return strconv.FormatFloat(math.Round(f*10)/10, 'f', -1, 64)
}

// timeAxis maps seconds since the scenario's base to x.
type timeAxis struct {
	base time.Time
	span float64 // seconds
	x0   float64
	x1   float64
}

func newTimeAxis(base, end time.Time) timeAxis {
	span := end.Sub(base).Seconds()
	if span < 1 {
		span = 1
	}
	return timeAxis{base: base, span: span, x0: plotLeft, x1: plotW - plotRight}
}

func (a timeAxis) xs(sec float64) float64 {
	if sec < 0 {
		sec = 0
	}
	if sec > a.span {
		sec = a.span
	}
	return a.x0 + sec/a.span*(a.x1-a.x0)
}

func (a timeAxis) x(t time.Time) float64 {
	if t.IsZero() {
		return a.x1
	}
	return a.xs(t.Sub(a.base).Seconds())
}

// open writes the <svg> element with the data the hover script needs to
// turn a mouse position into a time.
func (a timeAxis) open(w *svgw, height float64, label string) {
	w.p(`<svg viewBox="0 0 %s %s" preserveAspectRatio="xMinYMin meet" role="img" aria-label="%s" data-x0="%s" data-x1="%s" data-span="%s">`,
		num(plotW), num(height), esc(label), num(a.x0), num(a.x1), num(a.span))
}

// ticks draws the time axis at y with grid lines from top.
func (a timeAxis) ticks(w *svgw, top, y float64) {
	step := niceStep(a.span / 10)
	w.p(`<g class="axis">`)
	w.p(`<line x1="%s" y1="%s" x2="%s" y2="%s"/>`, num(a.x0), num(y), num(a.x1), num(y))
	for t := 0.0; t <= a.span+1e-9; t += step {
		x := a.xs(t)
		w.p(`<line class="grid" x1="%s" y1="%s" x2="%s" y2="%s"/>`, num(x), num(top), num(x), num(y))
		// The first label starts at the axis, clear of "time since start"
		// on its left.
		anchor := "middle"
		if t == 0 {
			anchor = "start"
		}
		w.p(`<text x="%s" y="%s" text-anchor="%s">%s</text>`, num(x), num(y+15), anchor, esc(fmtTick(t, step)))
	}
	w.p(`<text x="%s" y="%s" text-anchor="end">time since start</text>`, num(a.x0-8), num(y+15))
	w.p(`</g>`)
}

// niceStep rounds a raw tick step up to 1, 2 or 5 times a power of ten
// (or a round number of minutes).
func niceStep(raw float64) float64 {
	for _, s := range []float64{0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200} {
		if raw <= s {
			return s
		}
	}
	return math.Ceil(raw/3600) * 3600
}

func fmtTick(t, step float64) string {
	switch {
	case step < 1:
		return strconv.FormatFloat(t, 'f', 1, 64) + "s"
	case t < 60 || step < 60 && t < 600:
		if t >= 60 {
			return fmt.Sprintf("%dm%02ds", int(t)/60, int(t)%60)
		}
		return strconv.FormatFloat(t, 'f', 0, 64) + "s"
	default:
		return fmt.Sprintf("%dm", int(math.Round(t))/60)
	}
}

// faultBands draws each fault as a shaded band from top to bottom, with a
// title saying what it was. Labels are drawn separately (faultLabels).
func faultBands(w *svgw, a timeAxis, faults []history.Fault, top, bottom float64) {
	for _, f := range faults {
		x0, x1 := a.x(f.Start), a.x(f.End)
		if x1-x0 < 1.5 {
			x1 = x0 + 1.5
		}
		w.p(`<rect class="fault" x="%s" y="%s" width="%s" height="%s"><title>%s</title></rect>`,
			num(x0), num(top), num(x1-x0), num(bottom-top), esc(faultTitle(f, a.base)))
		w.p(`<line class="fault-edge" x1="%s" y1="%s" x2="%s" y2="%s"/>`, num(x0), num(top), num(x0), num(bottom))
	}
}

// faultLabelRows places fault labels in rows so they do not overlap and
// returns each fault's row and the number of rows.
func faultLabelRows(a timeAxis, faults []history.Fault) ([]int, int) {
	rows := []float64{} // right end of the last label in each row
	out := make([]int, len(faults))
	for i, f := range faults {
		x := a.x(f.Start)
		wdt := float64(len([]rune(faultLabel(f))))*charW + 8
		r := 0
		for ; r < len(rows); r++ {
			if rows[r] <= x {
				break
			}
		}
		if r == len(rows) {
			rows = append(rows, 0)
		}
		rows[r] = x + wdt
		out[i] = r
	}
	return out, len(rows)
}

func faultLabels(w *svgw, a timeAxis, faults []history.Fault, rows []int, top float64) {
	for i, f := range faults {
		y := top + float64(rows[i])*faultRowH + 12
		w.p(`<text class="fault-label" x="%s" y="%s">%s<title>%s</title></text>`,
			num(a.x(f.Start)+3), num(y), esc(faultLabel(f)), esc(faultTitle(f, a.base)))
	}
}

func faultLabel(f history.Fault) string {
	s := "⚡ " + f.Kind
	if f.Target != "" {
		s += " " + f.Target
	}
	if f.End.IsZero() {
		s += " (no recovery)"
	}
	if f.Error != "" {
		s += " ⚠"
	}
	return Scrub(s)
}

func faultTitle(f history.Fault, base time.Time) string {
	s := fmt.Sprintf("fault %s: %s", f.ID, f.Kind)
	if f.Target != "" {
		s += " " + f.Target
	}
	s += fmt.Sprintf(" from t+%.3fs", f.Start.Sub(base).Seconds())
	if f.End.IsZero() {
		s += ", never recovered"
	} else {
		s += fmt.Sprintf(" to t+%.3fs (%.3fs)", f.End.Sub(base).Seconds(), f.End.Sub(f.Start).Seconds())
	}
	if f.Detail != "" {
		s += "; " + f.Detail
	}
	if f.Error != "" {
		s += "; error: " + f.Error
	}
	return Scrub(s)
}

// opTitle describes one op in a tooltip.
func opTitle(o history.Op, base time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "op #%d", o.Seq)
	if o.ID != "" {
		fmt.Fprintf(&b, " [%s]", o.ID)
	}
	b.WriteString(" " + o.Kind)
	if o.PackageID != "" {
		fmt.Fprintf(&b, " %s@%s", o.PackageID, o.Version)
	}
	if o.Attempt > 1 {
		fmt.Fprintf(&b, " (attempt %d)", o.Attempt)
	}
	fmt.Fprintf(&b, " at t+%.3fs took %s: %s", o.Start.Sub(base).Seconds(), fmtLatency(o.Duration()), o.Outcome)
	if o.Status != 0 {
		fmt.Fprintf(&b, " HTTP %d", o.Status)
	}
	if o.Via != "" {
		b.WriteString(" via " + o.Via)
	}
	if o.Node != "" {
		b.WriteString(" from " + o.Node)
	}
	if o.Error != "" {
		b.WriteString("; " + o.Error)
	}
	if o.Note != "" {
		b.WriteString("; " + o.Note)
	}
	return Scrub(b.String())
}

func fmtLatency(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%.0fµs", float64(d)/float64(time.Microsecond))
	case d < time.Second:
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.3fs", d.Seconds())
	}
}

// lane is one row of the request timeline: a node that served requests,
// a server the load balancer watched, or the requests no node answered.
