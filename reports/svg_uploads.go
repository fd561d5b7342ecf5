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
