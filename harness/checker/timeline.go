package checker

import (
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/octoha/octoha/harness/history"
	"github.com/octoha/octoha/octopusapi"
)

// clock renders times relative to the start of a history, which is how
// people read a run ("t+12.304s") and what stays comparable across runs.
type clock struct{ base time.Time }

func newClock(h *history.History) clock {
	start, _ := h.Span()
	return clock{base: start}
}

func (c clock) at(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return fmt.Sprintf("t+%.3fs", t.Sub(c.base).Seconds())
}

func secs(d time.Duration) float64 { return d.Seconds() }

// fmtDur renders a duration in seconds with millisecond precision.
func fmtDur(d time.Duration) string { return fmt.Sprintf("%.3fs", d.Seconds()) }

// opLabel names an op in evidence: "op #12 upload Acme@1.0.0".
func opLabel(o history.Op) string {
	s := fmt.Sprintf("op #%d %s", o.Seq, o.Kind)
	if o.ID != "" {
		s = fmt.Sprintf("op #%d [%s] %s", o.Seq, o.ID, o.Kind)
	}
	if o.PackageID != "" {
		s += " " + PackageKey{o.PackageID, o.Version}.String()
	}
	if o.Attempt > 1 {
		s += fmt.Sprintf(" (attempt %d)", o.Attempt)
	}
	return s
}

// opResult describes how an op ended: "failed HTTP 503 via lb from Node2: msg".
func opResult(o history.Op) string {
	var b strings.Builder
	b.WriteString(string(o.Outcome))
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
		e := o.Error
		if len(e) > 160 {
			e = e[:160] + "…"
		}
		b.WriteString(": " + e)
	}
	return b.String()
}

// viaLB reports whether the load balancer routed the op: ops sent straight
// to a node (Via = node name) say nothing about the balancer.
func viaLB(o history.Op) bool { return o.Via == "" || o.Via == ViaLB }

// overwriteMode returns the overwriteMode (or legacy replace) of an upload
// op's URL, "" when unknown.
func overwriteMode(o history.Op) string {
	if o.URL == "" {
		return ""
	}
	u, err := url.Parse(o.URL)
	if err != nil {
		return ""
	}
	q := u.Query()
	if m := q.Get("overwriteMode"); m != "" {
		return m
	}
	if strings.EqualFold(q.Get("replace"), "true") {
		return octopusapi.OverwriteExisting
	}
	return ""
}

// nodeNames returns every node name the history knows: from ops' serving
// nodes, direct targets and load-balancer samples.
func nodeNames(h *history.History) map[string]bool {
	names := map[string]bool{}
	for _, o := range h.Ops {
		if o.Node != "" {
			names[o.Node] = true
		}
		if o.Via != "" && o.Via != ViaLB {
			names[o.Via] = true
		}
	}
	for _, s := range h.LB {
		if s.Server != "" {
			names[s.Server] = true
		}
	}
	return names
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}
