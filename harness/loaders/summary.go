package loaders

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteSummary prints each worker's figures next to the merged ones, the
// workers that died or limited the load, the clock offsets and what the
// merge cost.
func (r *Result) WriteSummary(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	upload := r.Upload != nil
	if upload {
		fmt.Fprintln(tw, "LOADER\tHOST\tPACKAGES\tOK\tFAILED\tUNKNOWN\tOPS\tSENT\tCPU\tCLOCK OFFSET (JOIN → END)\tSTATE")
	} else {
		fmt.Fprintln(tw, "LOADER\tHOST\tREQUESTS\tRATE\tP50\tP99\tERRORS\tOPS\tCPU\tCLOCK OFFSET (JOIN → END)\tSTATE")
	}
	for _, x := range r.Workers {
		state := "done"
		switch {
		case x.Died != "":
			state = "DIED: " + x.Died
		case x.Bottleneck() != "":
			state = "done, BOTTLENECK"
		}
		cpu := "-"
		if x.Loader != nil {
			cpu = fmt.Sprintf("%.0f%%", 100*x.Loader.CPUShare)
		}
		clock := x.Offset.String() + " → " + x.EndOffset.String()
		if upload {
			n, sent := 0, int64(0)
			if x.Upload != nil {
				n, sent = len(x.Upload.Packages), x.Upload.BytesSent
			}
			fmt.Fprintf(tw, "%d\t%s\t%d\t%d\t%d\t%d\t%d\t%d B\t%s\t%s\t%s\n", x.Index, orDash(x.Host), n, x.OK, x.Failed, x.Unknown, x.Ops, sent, cpu, clock, state)
			continue
		}
		m := x.Metrics
		fmt.Fprintf(tw, "%d\t%s\t%d\t%.1f/s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\n", x.Index, orDash(x.Host), m.Requests, m.Rate,
			round(m.Latencies.P50), round(m.Latencies.P99), x.Errors(), x.Ops, cpu, clock, state)
	}
	if upload {
		u := r.Upload
		fmt.Fprintf(tw, "all\t\t%d\t%d\t%d\t%d\t%d\t%d B\t\t\t\n", len(u.Packages), u.OK, u.Failed, u.Unknown, r.Ops, u.BytesSent)
	} else {
		m := r.Metrics
		all := WorkerReport{Metrics: m}
		fmt.Fprintf(tw, "all\t\t%d\t%.1f/s\t%s\t%s\t%d\t%d\t\t\t\n", m.Requests, m.Rate, round(m.Latencies.P50), round(m.Latencies.P99), all.Errors(), r.Ops)
	}
	tw.Flush()
	for _, x := range r.Dead() {
		fmt.Fprintf(w, "loader %d died: %s; its records up to its last report are merged", x.Index, x.Died)
		if upload {
			fmt.Fprintf(w, ", its %d unfinished packages recorded as unknown", x.Unknown)
		}
		fmt.Fprintln(w)
	}
	for _, x := range r.Workers {
		if x.Log != "" {
			fmt.Fprintf(w, "loader %d's output ends:\n%s\n", x.Index, indent(x.Log))
		}
	}
	for _, b := range r.Bottlenecks() {
		fmt.Fprintln(w, b)
	}
	fmt.Fprintf(w, "%d loaders on %s (run %s); clock offsets are the coordinator's time minus the loader's, ± half the best round trip; merged timestamps are corrected by the join offset\n",
		len(r.Workers), r.Engine, r.RunID)
	fmt.Fprintf(w, "merged %d ops and %d results (%d recorded as unknown for dead loaders) in %s of coordinator time over %s\n",
		r.Ops-r.Synthesized, r.Results, r.Synthesized, r.MergeBusy.Round(time.Microsecond), r.Wall.Round(time.Millisecond))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func round(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}

func indent(s string) string { return "  " + strings.ReplaceAll(s, "\n", "\n  ") }
