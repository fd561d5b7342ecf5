package reports

// The request timeline: one lane per node, every request a point on a
// log latency scale, with fault bands and each node's load-balancer strip.

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/octoha/octoha/harness/history"
)

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
