package reports

// The upload plot: one bar per upload with its size and rate.

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/octoha/octoha/harness/history"
)

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
	items := make([]uploadBar, len(ups))
	unlabelled := 0
	for k, i := range ups {
		var labelled bool
		items[k], labelled = placeUploadBar(h.Ops[i], a, l.blame)
		if !labelled {
			unlabelled++
		}
	}
	// Pack into rows with room for labels; when that needs too many rows,
	// pack the bars alone and label only bars a label fits in.
	row, nrows := packBars(items, true)
	withLabels := true
	if nrows > maxRows {
		row, nrows = packBars(items, false)
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
	var labels []string
	for k, i := range ups {
		if row[k] >= maxRows {
			continue
		}
		if t := drawUploadBar(&w, h.Ops[i], items[k], top+float64(row[k])*uploadRowH+3, withLabels); t != "" {
			labels = append(labels, t)
		}
	}
	for _, t := range labels {
		w.p("%s", t)
	}
	faultLabels(&w, a, h.Faults, frows, 0)
	w.p(`</svg>`)
	info.SVG = w.String()
	return info
}

// uploadBar is one upload's bar and where its label goes: inside the bar
// when it fits, after it otherwise, or before it at the right edge.
type uploadBar struct {
	x0, x1      float64 // the bar
	label       string
	lx          float64 // label position
	anchorEnd   bool
	inside      bool
	left, right float64 // extent of bar and label, for packing
	blamed      bool    // a failed check cites the upload (its label says so first)
	tip         string
}

// placeUploadBar places o's bar on axis a and its label: the full label
// where it fits, else the one without the package (the tooltip keeps
// everything), else none (labelled false): a label never runs over another
// bar, the plot's edge or the lane's name on the left.
func placeUploadBar(o history.Op, a timeAxis, blame map[uint64][]string) (p uploadBar, labelled bool) {
	p = uploadBar{x0: a.x(o.Start), x1: math.Max(a.x(o.End), a.x(o.Start)+2)}
	p.left, p.right = p.x0, p.x1+3
	prefix := ""
	if checks, ok := blame[o.Seq]; ok {
		p.blamed = true
		prefix = "✗ " + strings.Join(checks, ", ") + ": "
	}
	p.tip = opTitle(o, a.base) + "; " + prefix + uploadLabel(o, true)
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
		p.label = lbl
		return p, true
	}
	return p, false
}

// packBars puts each bar (with its label's extent, withLabels) in the first
// row where it does not overlap the one before, and returns each bar's row
// and the number of rows.
func packBars(items []uploadBar, withLabels bool) ([]int, int) {
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

// drawUploadBar draws o's bar at y and returns its label's SVG text, drawn
// later over everything ("" for none: no label, or one outside the bar
// when labels outside bars are off).
func drawUploadBar(w *svgw, o history.Op, p uploadBar, y float64, withLabels bool) string {
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
		return ""
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
	return fmt.Sprintf(`<text class="%s" x="%s" y="%s"%s>%s</text>`, lcls, num(p.lx), num(y+11), anchor, esc(p.label))
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
