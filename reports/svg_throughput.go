package reports

// Throughput and error rate per second.

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

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
