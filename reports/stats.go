package reports

import (
	"math"
	"sort"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/octoha/octoha/harness/history"
)

// Status classes of a request, as the timeline colours them.
const (
	class2xx       = "2xx"
	class4xx       = "4xx"
	class5xx       = "5xx"
	classTransport = "error"
)

// statusClass puts an op into a colour class: 1xx–3xx count with 2xx (they
// are answers, not failures); no status at all is a transport error.
func statusClass(o history.Op) string {
	switch {
	case o.Status == 0:
		if o.Outcome == history.OK {
			return class2xx
		}
		return classTransport
	case o.Status < 400:
		return class2xx
	case o.Status < 500:
		return class4xx
	default:
		return class5xx
	}
}

// latencyFromHistory computes per-kind latency figures from the history
// with vegeta's own Metrics (each op fed in as a vegeta Result), so they
// match what `vegeta report` prints for the same requests. Kinds are
// sorted.
func latencyFromHistory(h *history.History, grace time.Duration) []LatencySummary {
	if h == nil || len(h.Ops) == 0 {
		return nil
	}
	type acc struct {
		m                   vegeta.Metrics
		ok, failed, unknown int
		inFaults, unexpect  int
	}
	byKind := map[string]*acc{}
	for i := range h.Ops {
		o := &h.Ops[i]
		if o.Start.IsZero() || o.End.IsZero() {
			continue
		}
		a := byKind[o.Kind]
		if a == nil {
			a = &acc{}
			byKind[o.Kind] = a
		}
		d := o.Duration()
		if d < 0 {
			d = 0
		}
		a.m.Add(&vegeta.Result{Code: uint16(o.Status), Timestamp: o.Start, Latency: d, Error: o.Error})
		switch o.Outcome {
		case history.OK:
			a.ok++
		case history.Failed:
			a.failed++
		default:
			a.unknown++
		}
		if o.Outcome != history.OK {
			if inFaultWindow(h, *o, grace) {
				a.inFaults++
			} else {
				a.unexpect++
			}
		}
	}
	kinds := make([]string, 0, len(byKind))
	for k := range byKind {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	out := make([]LatencySummary, 0, len(kinds))
	for _, k := range kinds {
		a := byKind[k]
		a.m.Close()
		ls := latencySummary(&a.m)
		ls.Kind, ls.Source = k, SourceHistory
		ls.OK, ls.Failed, ls.Unknown = a.ok, a.failed, a.unknown
		ls.InFaultWindows, ls.OutsideFaultWindows = a.inFaults, a.unexpect
		out = append(out, ls)
	}
	return out
}

// latencySummary copies vegeta's figures.
func latencySummary(m *vegeta.Metrics) LatencySummary {
	return LatencySummary{
		Count:          int(m.Requests),
		SuccessPercent: round3(100 * m.Success),
		RatePerSecond:  round3(m.Rate),
		MeanMs:         ms(m.Latencies.Mean),
		P50Ms:          ms(m.Latencies.P50),
		P90Ms:          ms(m.Latencies.P90),
		P95Ms:          ms(m.Latencies.P95),
		P99Ms:          ms(m.Latencies.P99),
		MaxMs:          ms(m.Latencies.Max),
	}
}

// latencyFromVegeta lists each results file's metrics.
func latencyFromVegeta(files []vegetaFile) []LatencySummary {
	out := make([]LatencySummary, 0, len(files))
	for i := range files {
		f := &files[i]
		ls := latencySummary(&f.Metrics)
		ls.Source, ls.File = SourceVegeta, f.Name
		ls.Kind = joinComma(f.Attacks)
		ls.StatusCodes = f.Metrics.StatusCodes
		if len(ls.StatusCodes) == 0 {
			ls.StatusCodes = nil
		}
		out = append(out, ls)
	}
	return out
}

// bucket is one second of a throughput plot.
type bucket struct {
	ok, bad int // ops that ended in it, acknowledged and not
}

// maxBuckets bounds a throughput plot's buckets; longer runs get wider
// buckets than a second.
const maxBuckets = 3600

// bucketWidth is 1 s, or a round number of seconds that keeps a run of
// this span within maxBuckets.
func bucketWidth(span time.Duration) time.Duration {
	w := time.Second
	for _, s := range []time.Duration{2, 5, 10, 30, 60, 300, 600, 1800, 3600, 6 * 3600, 24 * 3600} {
		if span/w <= maxBuckets {
			break
		}
		w = s * time.Second
	}
	return w
}

// buckets counts ops by the bucket of width w (since base) they ended in.
func buckets(ops []history.Op, base time.Time, span, w time.Duration) []bucket {
	n := int(math.Ceil(float64(span) / float64(w)))
	if n < 1 {
		n = 1
	}
	out := make([]bucket, n)
	for i := range ops {
		o := &ops[i]
		if o.End.IsZero() {
			continue
		}
		b := int(o.End.Sub(base) / w)
		if b < 0 || b >= n {
			if b == n { // an op ending exactly at the end
				b = n - 1
			} else {
				continue
			}
		}
		if o.Outcome == history.OK {
			out[b].ok++
		} else {
			out[b].bad++
		}
	}
	return out
}

func ms(d time.Duration) float64 { return round3(float64(d) / float64(time.Millisecond)) }

func round3(f float64) float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0
	}
	return math.Round(f*1000) / 1000
}

func secsSince(t, base time.Time) float64 {
	if t.IsZero() || base.IsZero() {
		return 0
	}
	return round3(t.Sub(base).Seconds())
}

func joinComma(ss []string) string {
	out := ""
	for i, s := range ss {
		if i > 0 {
			out += ", "
		}
		out += s
	}
	return out
}
