package reports

import (
	"fmt"
	"sort"
	"strings"

	"github.com/octoha/octoha/harness/history"
)

// Network faults (latency, bandwidth, blackhole, reset, slow-close,
// partition) record which link they act on in their Detail, as
// "kind@link,param=value,…" (harness/nemesis.Net). The timeline draws them
// as bands on rows of their own, one per link, between the fault labels
// and the node lanes.

const linkRowH = 15.0

// linkBand is one network fault on one link.
type linkBand struct {
	f     history.Fault
	label string // "latency 1500ms"
}

// linkRow is one link with its faults; faults that overlap in time go on
// sub-rows (sub) so neither hides the other.
type linkRow struct {
	name  string // "Node1 → database"
	bands []linkBand
	sub   []int // each band's sub-row
	subs  int
}

// stack assigns sub-rows: each band the first whose last band has ended.
func (r *linkRow) stack() {
	sort.SliceStable(r.bands, func(i, j int) bool { return r.bands[i].f.Start.Before(r.bands[j].f.Start) })
	var ends []history.Fault
	r.sub = make([]int, len(r.bands))
	for i, b := range r.bands {
		k := 0
		for ; k < len(ends); k++ {
			if !ends[k].End.IsZero() && !ends[k].End.After(b.f.Start) {
				break
			}
		}
		if k == len(ends) {
			ends = append(ends, b.f)
		}
		ends[k] = b.f
		r.sub[i] = k
	}
	r.subs = max(len(ends), 1)
}

// faultLinks names the links a fault's Detail says it acts on, and a short
// label of what it does; ok is false for a fault that is not a network
// fault.
func faultLinks(f history.Fault) (links []string, label string, ok bool) {
	spec, params, _ := strings.Cut(f.Detail, ",")
	kind, link, found := strings.Cut(spec, "@")
	if !found || kind != f.Kind {
		return nil, "", false
	}
	node := f.Target
	switch link {
	case "client":
		links = []string{"client → LB"}
	case "lb":
		links = []string{"LB → " + node}
	case "db":
		links = []string{node + " → database"}
	case "share":
		links = []string{node + " → share"}
	case "all":
		links = []string{"LB → " + node, node + " → database", node + " → share"}
	default:
		return nil, "", false
	}
	label = kind
	if params != "" {
		label += " " + strings.ReplaceAll(params, ",", " ")
	}
	return links, label, true
}

// networkRows groups the network faults of a history by link, links in
// name order (client first).
func networkRows(faults []history.Fault) []linkRow {
	byName := map[string]*linkRow{}
	for _, f := range faults {
		links, label, ok := faultLinks(f)
		if !ok {
			continue
		}
		for _, l := range links {
			r := byName[l]
			if r == nil {
				r = &linkRow{name: l}
				byName[l] = r
			}
			r.bands = append(r.bands, linkBand{f: f, label: label})
		}
	}
	out := make([]linkRow, 0, len(byName))
	for _, r := range byName {
		r.stack()
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool {
		ci, cj := strings.HasPrefix(out[i].name, "client"), strings.HasPrefix(out[j].name, "client")
		if ci != cj {
			return ci
		}
		return naturalLess(out[i].name, out[j].name)
	})
	return out
}

// linksHeight is the height of the link rows.
func linksHeight(rows []linkRow) float64 {
	n := 0
	for _, r := range rows {
		n += r.subs
	}
	return float64(n) * linkRowH
}

// linkBands draws the link rows from top.
func linkBands(w *svgw, a timeAxis, rows []linkRow, top float64) {
	y0 := top
	for _, r := range rows {
		h := float64(r.subs) * linkRowH
		w.p(`<text class="tick" x="%s" y="%s" text-anchor="end">%s</text>`, num(a.x0-6), num(y0+linkRowH-4), esc(Scrub(r.name)))
		w.p(`<line class="grid" x1="%s" y1="%s" x2="%s" y2="%s"/>`, num(a.x0), num(y0+h-1), num(a.x1), num(y0+h-1))
		for i, b := range r.bands {
			y := y0 + float64(r.sub[i])*linkRowH
			x0 := a.x(b.f.Start)
			x1 := a.x1
			if !b.f.End.IsZero() {
				x1 = a.x(b.f.End)
			}
			x1 = max(x1, x0+1.5)
			title := fmt.Sprintf("%s on %s; %s", b.label, r.name, faultTitle(b.f, a.base))
			w.p(`<rect class="netfault" x="%s" y="%s" width="%s" height="%s"><title>%s</title></rect>`,
				num(x0), num(y+1), num(x1-x0), num(linkRowH-3), esc(Scrub(title)))
			if x1-x0 > float64(len([]rune(b.label)))*charW+6 {
				w.p(`<text class="netfault-label" x="%s" y="%s">%s</text>`, num(x0+3), num(y+linkRowH-4.5), esc(Scrub(b.label)))
			}
		}
		y0 += h
	}
}
