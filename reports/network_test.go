package reports

import (
	"strings"
	"testing"
	"time"

	"github.com/octoha/octoha/harness/history"
)

// Network faults are drawn as bands on the links they affect, one row per
// link; other faults get no link row.
func TestTimelineShowsNetworkFaultsOnTheirLinks(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	h := &history.History{
		Ops: []history.Op{{Seq: 1, Kind: "ping", Start: t0, End: t0.Add(10 * time.Millisecond), Status: 200, Node: "Node1", Outcome: history.OK}},
		Faults: []history.Fault{
			{ID: "latency-1", Kind: "latency", Target: "Node1", Detail: "latency@db,latency=1500ms", Start: t0.Add(time.Second), End: t0.Add(4 * time.Second)},
			{ID: "partition-2", Kind: "partition", Target: "Node2", Detail: "partition@all", Start: t0.Add(5 * time.Second), End: t0.Add(7 * time.Second)},
			{ID: "bandwidth-3", Kind: "bandwidth", Detail: "bandwidth@client,rate=1000000", Start: t0.Add(2 * time.Second), End: t0.Add(3 * time.Second)},
			{ID: "kill-4", Kind: "kill", Target: "Node3", Start: t0.Add(8 * time.Second), End: t0.Add(9 * time.Second)},
			{ID: "bandwidth-5", Kind: "bandwidth", Target: "Node1", Detail: "bandwidth@db,rate=1000000", Start: t0.Add(2 * time.Second), End: t0.Add(3 * time.Second)},
		},
	}
	rows := networkRows(h.Faults)
	var names []string
	for _, r := range rows {
		names = append(names, r.name)
	}
	want := []string{"client → LB", "LB → Node2", "Node1 → database", "Node2 → database", "Node2 → share"}
	if strings.Join(names, "|") != strings.Join(want, "|") {
		t.Fatalf("link rows %q, want %q", names, want)
	}
	l := &loaded{Scenario: Scenario{Name: "net", Start: t0, End: t0.Add(10 * time.Second)}, History: h}
	p := timelinePlot(l, DefaultMaxPointsPerLane)
	if p == nil {
		t.Fatal("no timeline")
	}
	if n := strings.Count(p.SVG, `class="netfault"`); n != 6 {
		t.Errorf("%d network bands, want 6 (one per link a fault touches)", n)
	}
	// Two faults at once on Node1's database link: two sub-rows.
	for _, r := range rows {
		if r.name == "Node1 → database" && (r.subs != 2 || r.sub[0] == r.sub[1]) {
			t.Errorf("overlapping faults on one link share a row: %+v", r)
		}
	}
	for _, s := range []string{"Node1 → database", "latency latency=1500ms", "client → LB", "Node2 → share"} {
		if !strings.Contains(p.SVG, s) {
			t.Errorf("timeline lacks %q", s)
		}
	}
}

func TestFaultSummaryNamesTheLink(t *testing.T) {
	f := history.Fault{ID: "reset-1", Kind: "reset", Target: "Node2", Detail: "reset@lb,after=0s"}
	links, what, ok := faultLinks(f)
	if !ok || strings.Join(links, ",") != "LB → Node2" || what != "reset after=0s" {
		t.Fatalf("faultLinks = %v %q %v", links, what, ok)
	}
	if _, _, ok := faultLinks(history.Fault{Kind: "kill", Target: "Node1"}); ok {
		t.Fatal("a kill has no link")
	}
	// A detail that names another kind is not taken for a network fault's.
	if _, _, ok := faultLinks(history.Fault{Kind: "drain", Detail: "latency@db"}); ok {
		t.Fatal("mismatched detail taken for a link")
	}
}
