package reports

import (
	"fmt"
	"html"
	"math"
	"slices"
	"sort"
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
type lane struct {
	name   string
	label  string
	ops    []int // indexes into the history's ops
	lb     []history.LBState
	noNode bool
}

const noNodeLane = "\x00no node"

// timelineLanes groups ops by serving node. Nodes sort naturally (Node2
// before Node10); requests no node answered come last.
func timelineLanes(h *history.History) []*lane {
	byName := map[string]*lane{}
	get := func(name string) *lane {
		l := byName[name]
		if l == nil {
			l = &lane{name: name, label: name}
			if name == noNodeLane {
				l.noNode, l.label = true, "no node answered"
			}
			byName[name] = l
		}
		return l
	}
	for i, o := range h.Ops {
		if o.Start.IsZero() || o.End.IsZero() {
			continue
		}
		n := o.Node
		if n == "" {
			n = noNodeLane
		}
		get(n).ops = append(get(n).ops, i)
	}
	for _, s := range h.LB {
		if s.Server != "" && !s.Time.IsZero() {
			get(s.Server).lb = append(get(s.Server).lb, s)
		}
	}
	out := make([]*lane, 0, len(byName))
	for _, l := range byName {
		out = append(out, l)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].noNode != out[j].noNode {
			return out[j].noNode
		}
		return naturalLess(out[i].name, out[j].name)
	})
	return out
}

// naturalLess compares strings with digit runs as numbers.
func naturalLess(a, b string) bool {
	for a != "" && b != "" {
		da, db := digitPrefix(a), digitPrefix(b)
		if da != "" && db != "" {
			na, _ := strconv.Atoi(da)
			nb, _ := strconv.Atoi(db)
			if na != nb {
				return na < nb
			}
			a, b = a[len(da):], b[len(db):]
			continue
		}
		if a[0] != b[0] {
			return a[0] < b[0]
		}
		a, b = a[1:], b[1:]
	}
	return len(a) < len(b)
}

func digitPrefix(s string) string {
	i := 0
	for i < len(s) && i < 9 && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return s[:i]
}

// logAxis maps latencies to y on a log scale spanning whole decades.
type logAxis struct {
	lo, hi float64 // log10 of milliseconds
}

func newLogAxis(h *history.History) logAxis {
	minMs, maxMs := math.Inf(1), 0.0
	for _, o := range h.Ops {
		if o.Start.IsZero() || o.End.IsZero() {
			continue
		}
		v := latMs(o)
		minMs = math.Min(minMs, v)
		maxMs = math.Max(maxMs, v)
	}
	if maxMs == 0 {
		return logAxis{lo: 0, hi: 3}
	}
	lo, hi := math.Floor(math.Log10(minMs)), math.Ceil(math.Log10(maxMs))
	if hi <= lo {
		hi = lo + 1
	}
	return logAxis{lo: lo, hi: hi}
}

// latMs is an op's latency in milliseconds, floored at 10µs so a log scale
// can show it.
func latMs(o history.Op) float64 {
	return math.Max(float64(o.Duration())/float64(time.Millisecond), 0.01)
}

// y maps a latency to a fraction of the lane's height from the bottom.
func (a logAxis) frac(v float64) float64 {
	f := (math.Log10(v) - a.lo) / (a.hi - a.lo)
	return math.Max(0, math.Min(1, f))
}

func decadeLabel(d float64) string {
	ms := math.Pow(10, d)
	switch {
	case ms < 1:
		return fmt.Sprintf("%gµs", ms*1000)
	case ms < 1000:
		return fmt.Sprintf("%gms", ms)
	default:
		return fmt.Sprintf("%gs", ms/1000)
	}
}

// plotInfo is what a plot tells the page besides its SVG.
type plotInfo struct {
	SVG   string
	Notes []string
}

// timelinePlot draws every request as a point (latency against time, log
// scale), one lane per node that served it, with each node's load balancer
// state as a strip under its lane and faults as shaded bands.
func timelinePlot(l *loaded, maxPoints int) *plotInfo {
	h := l.History
	lanes := timelineLanes(h)
	if len(lanes) == 0 && len(h.Faults) == 0 {
		return nil
	}
	a := newTimeAxis(l.base(), l.finish())
	ya := newLogAxis(h)
	rows, nrows := faultLabelRows(a, h.Faults)
	top := float64(nrows)*faultRowH + 4
	links := networkRows(h.Faults)
	lanesTop := top + linksHeight(links)
	if len(links) > 0 {
		lanesTop += 4
	}
	height := lanesTop + float64(max(len(lanes), 1))*laneH + axisH
	var w svgw
	a.open(&w, height, "request timeline of "+l.Name)
	info := &plotInfo{}
	lanesBot := lanesTop + float64(max(len(lanes), 1))*laneH
	// Backgrounds, grids and labels first, then fault bands, then points
	// and strips on top so the bands never hide a request.
	for i, ln := range lanes {
		y0 := lanesTop + float64(i)*laneH
		ptTop, ptBot := y0+8, y0+laneH-stripH-12
		if i%2 == 0 {
			w.p(`<rect class="lane-bg" x="0" y="%s" width="%s" height="%s"/>`, num(y0), num(plotW), num(laneH))
		}
		// Label every decade while they are at least 14 units apart,
		// every other one otherwise.
		every := 1
		if (ptBot-ptTop)/(ya.hi-ya.lo) < 14 {
			every = 2
		}
		for d := ya.lo; d <= ya.hi+1e-9; d++ {
			y := ptBot - ya.frac(math.Pow(10, d))*(ptBot-ptTop)
			w.p(`<line class="grid" x1="%s" y1="%s" x2="%s" y2="%s"/>`, num(a.x0), num(y), num(a.x1), num(y))
			if (int(ya.hi-d))%every == 0 {
				w.p(`<text class="tick" x="%s" y="%s" text-anchor="end">%s</text>`, num(a.x0-6), num(y+3), esc(decadeLabel(d)))
			}
		}
		w.p(`<text class="lane-name" x="8" y="%s">%s</text>`, num(y0+18), esc(Scrub(ln.label)))
		w.p(`<text class="lane-count" x="8" y="%s">%d requests</text>`, num(y0+33), len(ln.ops))
	}
	faultBands(&w, a, h.Faults, lanesTop, lanesBot)
	// A fault aimed at a node shades that node's lane more.
	for _, f := range h.Faults {
		for i, ln := range lanes {
			if f.Target != "" && f.Target == ln.name {
				x0, x1 := a.x(f.Start), a.x(f.End)
				w.p(`<rect class="fault-target" x="%s" y="%s" width="%s" height="%s"/>`, num(x0), num(lanesTop+float64(i)*laneH), num(math.Max(x1-x0, 1.5)), num(laneH))
			}
		}
	}
	titled := 0
	for i, ln := range lanes {
		y0 := lanesTop + float64(i)*laneH
		ptTop, ptBot := y0+8, y0+laneH-stripH-12
		drawn, note := lanePoints(&w, h, ln, a, ya, ptTop, ptBot, maxPoints, &titled, l.blame)
		if note != "" {
			w.p(`<text class="lane-note" x="8" y="%s">%s<title>%s</title></text>`, num(y0+47), esc(fmt.Sprintf("%d points drawn", drawn)), esc(note))
			info.Notes = append(info.Notes, Scrub(ln.label)+": "+note)
		}
		if !ln.noNode {
			laneStrip(&w, a, ln, y0+laneH-stripH-6)
		}
	}
	faultLabels(&w, a, h.Faults, rows, 0)
	linkBands(&w, a, links, top)
	a.ticks(&w, lanesTop, height-axisH)
	w.p(`</svg>`)
	info.SVG = w.String()
	return info
}

// laneStrip draws a server's load balancer states from each sample to the
// next (the last one to the end of the plot).
func laneStrip(w *svgw, a timeAxis, ln *lane, y float64) {
	w.p(`<text class="tick" x="%s" y="%s" text-anchor="end">LB state</text>`, num(a.x0-6), num(y+stripH-2))
	if len(ln.lb) == 0 {
		w.p(`<rect class="strip-none" x="%s" y="%s" width="%s" height="%s"><title>no load balancer state recorded for %s</title></rect>`,
			num(a.x0), num(y), num(a.x1-a.x0), num(stripH), esc(Scrub(ln.name)))
		return
	}
	for i, s := range ln.lb {
		x0 := a.x(s.Time)
		x1 := a.x1
		endT := "the end"
		if i+1 < len(ln.lb) {
			x1 = a.x(ln.lb[i+1].Time)
			endT = fmt.Sprintf("t+%.3fs", ln.lb[i+1].Time.Sub(a.base).Seconds())
		}
		if x1 <= x0 {
			continue
		}
		title := fmt.Sprintf("%s %s from t+%.3fs to %s", ln.name, s.State, s.Time.Sub(a.base).Seconds(), endT)
		if s.Detail != "" {
			title += " (" + s.Detail + ")"
		}
		w.p(`<rect x="%s" y="%s" width="%s" height="%s" fill="%s"><title>%s</title></rect>`,
			num(x0), num(y), num(x1-x0), num(stripH), lbColour(s.State), esc(Scrub(title)))
		if lbl := strings.ToUpper(s.State); x1-x0 > float64(len(lbl))*charW+6 {
			w.p(`<text class="strip-label" x="%s" y="%s">%s</text>`, num(x0+3), num(y+stripH-2.5), esc(Scrub(lbl)))
		}
	}
}

// lanePoints draws a lane's requests. Points falling on the same pixel
// with the same colour are drawn once (nothing visible is lost); above
// maxPoints, failures are kept first and the rest sampled evenly, and the
// returned note says so.
func lanePoints(w *svgw, h *history.History, ln *lane, a timeAxis, ya logAxis, top, bot float64, maxPoints int, titled *int, blame map[uint64][]string) (int, string) {
	type cell struct {
		x, y int
		op   int
	}
	classes := []string{class2xx, class4xx, class5xx, classTransport}
	seen := map[[3]int]bool{}
	byClass := map[string][]cell{}
	for _, i := range ln.ops {
		o := h.Ops[i]
		cls := statusClass(o)
		c := cell{x: int(math.Round(a.x(o.Start))), y: int(math.Round(bot - ya.frac(latMs(o))*(bot-top))), op: i}
		k := [3]int{c.x, c.y, slices.Index(classes, cls)}
		if seen[k] {
			continue
		}
		seen[k] = true
		byClass[cls] = append(byClass[cls], c)
	}
	total := 0
	for _, cs := range byClass {
		total += len(cs)
	}
	note := ""
	if maxPoints > 0 && total > maxPoints {
		// Failures first: they are what a reader looks for.
		budget := maxPoints
		for _, cls := range []string{classTransport, class5xx, class4xx, class2xx} {
			cs := byClass[cls]
			keep := min(len(cs), budget)
			if cls != class2xx {
				keep = min(keep, maxPoints/2)
			}
			byClass[cls] = sample(cs, keep)
			budget -= len(byClass[cls])
		}
		drawn := 0
		for _, cs := range byClass {
			drawn += len(cs)
		}
		note = fmt.Sprintf("downsampled: %d of %d distinct points drawn (failures kept first)", drawn, total)
		total = drawn
	}
	for _, cls := range classes {
		cs := byClass[cls]
		if len(cs) == 0 {
			continue
		}
		var d strings.Builder
		for _, c := range cs {
			if cls != class2xx && *titled < maxTitledPoints {
				*titled++
				w.p(`<circle class="pt-%s" cx="%d" cy="%d" r="2.6"><title>%s</title></circle>`, cls, c.x, c.y, esc(opTitle(h.Ops[c.op], a.base)))
				continue
			}
			fmt.Fprintf(&d, "M%d %dh0", c.x, c.y)
		}
		if d.Len() > 0 {
			w.p(`<path class="pts pt-%s" d="%s"/>`, cls, d.String())
		}
	}
	// Ring every op a failed check cites, whether or not its point was
	// sampled: these are the requests the reader is looking for.
	for _, i := range ln.ops {
		o := h.Ops[i]
		if checks, ok := blame[o.Seq]; ok {
			x, y := a.x(o.Start), bot-ya.frac(latMs(o))*(bot-top)
			w.p(`<circle class="blame" cx="%s" cy="%s" r="6"><title>%s</title></circle>`, num(x), num(y),
				esc("cited by failed check "+strings.Join(checks, ", ")+": "+opTitle(o, a.base)))
		}
	}
	return total, note
}

// sample keeps n of cs evenly spread, in order.
func sample[T any](cs []T, n int) []T {
	if n >= len(cs) {
		return cs
	}
	if n <= 0 {
		return nil
	}
	out := make([]T, 0, n)
	for i := range n {
		out = append(out, cs[i*len(cs)/n])
	}
	return out
}

// throughputPlot draws acknowledged and failed ops per second as stacked
// step areas and the error rate as a line on the right axis.
func throughputPlot(l *loaded) *plotInfo {
	h := l.History
	if len(h.Ops) == 0 {
		return nil
	}
	base, end := l.base(), l.finish()
	a := newTimeAxis(base, end)
	bw := bucketWidth(end.Sub(base))
	bs := buckets(h.Ops, base, end.Sub(base), bw)
	bws := bw.Seconds()
	peak := 0
	for _, b := range bs {
		peak = max(peak, b.ok+b.bad)
	}
	ymax := niceCeil(math.Max(float64(peak)/bws, 1))
	rows, nrows := faultLabelRows(a, h.Faults)
	top := float64(nrows)*faultRowH + 10
	plotH := 150.0
	bot := top + plotH
	height := bot + axisH
	var w svgw
	a.open(&w, height, "throughput and error rate of "+l.Name)
	// y maps a bucket's count to the height of its rate in ops/s.
	y := func(count float64) float64 { return bot - count/bws/ymax*plotH }
	// Left axis: ops per second.
	for _, v := range []float64{0, ymax / 2, ymax} {
		yv := bot - v/ymax*plotH
		w.p(`<line class="grid" x1="%s" y1="%s" x2="%s" y2="%s"/>`, num(a.x0), num(yv), num(a.x1), num(yv))
		w.p(`<text class="tick" x="%s" y="%s" text-anchor="end">%s/s</text>`, num(a.x0-6), num(yv+3), esc(strconv.FormatFloat(v, 'f', -1, 64)))
	}
	w.p(`<text class="lane-name" x="8" y="%s">ops per second</text>`, num(top+14))
	w.p(`<text class="lane-count" x="8" y="%s">%s buckets, by end time</text>`, num(top+29), esc(bw.String()))
	xb := func(i int) float64 { return a.xs(float64(i) * bws) }
	// Stacked step areas: acknowledged, then failed/unknown on top.
	var ok, bad strings.Builder
	ok.WriteString("M" + num(xb(0)) + " " + num(bot))
	for i, b := range bs {
		ok.WriteString("L" + num(xb(i)) + " " + num(y(float64(b.ok))) + "L" + num(xb(i+1)) + " " + num(y(float64(b.ok))))
	}
	ok.WriteString("L" + num(xb(len(bs))) + " " + num(bot) + "Z")
	w.p(`<path class="area-ok" d="%s"/>`, ok.String())
	anyBad := false
	for i, b := range bs {
		if b.bad == 0 {
			continue
		}
		anyBad = true
		fmt.Fprintf(&bad, "M%s %sL%s %sL%s %sL%s %sZ", num(xb(i)), num(y(float64(b.ok))), num(xb(i)), num(y(float64(b.ok+b.bad))),
			num(xb(i+1)), num(y(float64(b.ok+b.bad))), num(xb(i+1)), num(y(float64(b.ok))))
	}
	if anyBad {
		w.p(`<path class="area-bad" d="%s"/>`, bad.String())
	}
	// Error rate on the right axis, 0–100 %, broken where no op ended.
	yr := func(p float64) float64 { return bot - p/100*plotH }
	for _, p := range []float64{0, 50, 100} {
		w.p(`<text class="tick" x="%s" y="%s">%s%%</text>`, num(a.x1+6), num(yr(p)+3), strconv.Itoa(int(p)))
	}
	var er strings.Builder
	pen := false
	for i, b := range bs {
		n := b.ok + b.bad
		if n == 0 {
			pen = false
			continue
		}
		p := 100 * float64(b.bad) / float64(n)
		cmd := "L"
		if !pen {
			cmd = "M"
		}
		pen = true
		er.WriteString(cmd + num((xb(i)+xb(i+1))/2) + " " + num(yr(p)))
	}
	w.p(`<path class="err-rate" d="%s"/>`, er.String())
	// Hover targets per bucket with exact counts, only while they stay few.
	if len(bs) <= 600 {
		for i, b := range bs {
			if b.ok+b.bad == 0 {
				continue
			}
			w.p(`<rect class="hover" x="%s" y="%s" width="%s" height="%s"><title>t+%gs–%gs: %d ops (%d acknowledged, %d failed or unknown, %.0f%% errors)</title></rect>`,
				num(xb(i)), num(top), num(math.Max(xb(i+1)-xb(i), 1)), num(plotH), float64(i)*bws, float64(i+1)*bws, b.ok+b.bad, b.ok, b.bad, 100*float64(b.bad)/float64(b.ok+b.bad))
		}
	}
	faultBands(&w, a, h.Faults, top, bot)
	faultLabels(&w, a, h.Faults, rows, 0)
	a.ticks(&w, top, bot)
	w.p(`</svg>`)
	return &plotInfo{SVG: w.String()}
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

// uploadPlot draws each upload attempt as a bar from start to end,
// coloured by outcome and labelled with its package, size and rate. Bars
// are packed into rows; past maxRows the rest are counted, not drawn.
func uploadPlot(l *loaded, maxRows int) *plotInfo {
	h := l.History
	var ups []int
	for i, o := range h.Ops {
		if o.Kind == history.KindUpload && !o.Start.IsZero() && !o.End.IsZero() {
			ups = append(ups, i)
		}
	}
	if len(ups) == 0 {
		return nil
	}
	sort.SliceStable(ups, func(i, j int) bool { return h.Ops[ups[i]].Start.Before(h.Ops[ups[j]].Start) })
	a := newTimeAxis(l.base(), l.finish())
	// Each bar's label goes inside it when it fits, after it otherwise, or
	// before it at the right edge; an upload a failed check cites says so
	// first.
	type placed struct {
		x0, x1      float64 // the bar
		label       string
		lx          float64 // label position
		anchorEnd   bool
		inside      bool
		left, right float64 // extent of bar and label, for packing
		blamed      bool
		tip         string
	}
	items := make([]placed, len(ups))
	unlabelled := 0
	for k, i := range ups {
		o := h.Ops[i]
		p := placed{x0: a.x(o.Start), x1: math.Max(a.x(o.End), a.x(o.Start)+2)}
		p.left, p.right = p.x0, p.x1+3
		prefix := ""
		if checks, ok := l.blame[o.Seq]; ok {
			p.blamed = true
			prefix = "✗ " + strings.Join(checks, ", ") + ": "
		}
		// The full label where it fits, else the one without the package
		// (the tooltip keeps everything), else none: a label never runs
		// over another bar, the plot's edge or the lane's name on the left.
		placedLabel := false
		for _, lbl := range []string{uploadLabel(o, true), uploadLabel(o, false)} {
			lbl = prefix + lbl
			lw := float64(len([]rune(lbl)))*charW + 8
			switch {
			case p.x1-p.x0 >= lw:
				p.inside, p.lx = true, p.x0+4
			case p.x1+lw <= plotW-4:
				p.lx = p.x1 + 4
				p.right = p.x1 + lw + 4
			case p.x0-lw-4 >= plotLeft:
				p.lx, p.anchorEnd = p.x0-4, true
				p.left = p.x0 - lw - 4
			default:
				continue
			}
			p.label, placedLabel = lbl, true
			break
		}
		if !placedLabel {
			unlabelled++
		}
		p.tip = opTitle(o, a.base) + "; " + prefix + uploadLabel(o, true)
		items[k] = p
	}
	// Pack into rows with room for labels; when that needs too many rows,
	// pack the bars alone and label only bars a label fits in.
	pack := func(withLabels bool) ([]int, int) {
		var ends []float64
		row := make([]int, len(items))
		for k, p := range items {
			left, right := p.x0, p.x1+3
			if withLabels {
				left, right = p.left, p.right
			}
			r := 0
			for ; r < len(ends); r++ {
				if ends[r] <= left {
					break
				}
			}
			if r == len(ends) {
				ends = append(ends, 0)
			}
			ends[r] = right
			row[k] = r
		}
		return row, len(ends)
	}
	row, nrows := pack(true)
	withLabels := true
	if nrows > maxRows {
		row, nrows = pack(false)
		withLabels = false
	}
	info := &plotInfo{}
	if nrows > maxRows {
		hidden := 0
		for _, r := range row {
			if r >= maxRows {
				hidden++
			}
		}
		info.Notes = append(info.Notes, fmt.Sprintf("%d of %d upload attempts not drawn (more than %d rows)", hidden, len(ups), maxRows))
		nrows = maxRows
	}
	if unlabelled > 0 {
		info.Notes = append(info.Notes, fmt.Sprintf("%d of %d upload bars are too close to the edges for a label: hover them for the upload", unlabelled, len(ups)))
	}
	frows, fn := faultLabelRows(a, h.Faults)
	top := float64(fn)*faultRowH + 8
	// Tall enough for the lane's name and count above the axis, whatever
	// the number of rows.
	bot := top + math.Max(float64(nrows)*uploadRowH+6, 40)
	height := bot + axisH
	var w svgw
	a.open(&w, height, "uploads of "+l.Name)
	w.p(`<text class="lane-name" x="8" y="%s">uploads</text>`, num(top+14))
	w.p(`<text class="lane-count" x="8" y="%s">%s</text>`, num(top+29), plural(len(ups), "attempt", "attempts"))
	// Fault bands and grid under the bars, labels over everything.
	faultBands(&w, a, h.Faults, top, bot)
	a.ticks(&w, top, bot)
	type text struct {
		cls, anchor, label string
		x, y               float64
	}
	var texts []text
	for k, i := range ups {
		if row[k] >= maxRows {
			continue
		}
		o, p := h.Ops[i], items[k]
		y := top + float64(row[k])*uploadRowH + 3
		col := outcomeColour[o.Outcome]
		if col == "" {
			col = outcomeColour[history.Unknown]
		}
		cls := "bar"
		if p.blamed {
			cls = "bar blamed"
		}
		w.p(`<rect class="%s" x="%s" y="%s" width="%s" height="14" rx="2" fill="%s"><title>%s</title></rect>`,
			cls, num(p.x0), num(y), num(p.x1-p.x0), col, esc(p.tip))
		if p.label == "" || !p.inside && !withLabels {
			continue
		}
		lcls := "bar-label"
		switch {
		case p.inside:
			lcls += " inside"
		case p.blamed:
			lcls += " blamed"
		}
		anchor := ""
		if p.anchorEnd && !p.inside {
			anchor = ` text-anchor="end"`
		}
		texts = append(texts, text{cls: lcls, anchor: anchor, label: p.label, x: p.lx, y: y + 11})
	}
	for _, t := range texts {
		w.p(`<text class="%s" x="%s" y="%s"%s>%s</text>`, t.cls, num(t.x), num(t.y), t.anchor, esc(t.label))
	}
	faultLabels(&w, a, h.Faults, frows, 0)
	w.p(`</svg>`)
	info.SVG = w.String()
	return info
}

// uploadLabel is "Pkg@1.0.3 · 100 MB · 85.1 MB/s" (plus the status of a
// failure); without the package, "100 MB · 85.1 MB/s".
func uploadLabel(o history.Op, withPackage bool) string {
	var parts []string
	if withPackage && o.PackageID != "" {
		p := o.PackageID + "@" + o.Version
		if o.Attempt > 1 {
			p += fmt.Sprintf(" #%d", o.Attempt)
		}
		parts = append(parts, p)
	}
	size := o.Bytes
	if size == 0 && o.Outcome == history.OK {
		size = o.Size
	}
	if size > 0 {
		parts = append(parts, fmtBytes(size))
		if d := o.Duration().Seconds(); d > 0 {
			parts = append(parts, fmt.Sprintf("%.1f MB/s", float64(size)/1e6/d))
		}
	}
	switch {
	case o.Outcome == history.OK:
	case o.Status != 0:
		parts = append(parts, fmt.Sprintf("%s %d", o.Outcome, o.Status))
	default:
		parts = append(parts, string(o.Outcome))
	}
	return Scrub(strings.Join(parts, " · "))
}

// fmtBytes renders a size in decimal units, as upload rates are.
func fmtBytes(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2f GB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1f kB", float64(n)/1e3)
	default:
		return fmt.Sprintf("%d B", n)
	}
}

// plural is "1 attempt", "3 attempts".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}
