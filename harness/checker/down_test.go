package checker

import (
	"testing"
	"time"

	"github.com/octoha/octoha/harness/history"
)

// Only an unrecovered fault that keeps a node from answering marks it
// down; a node already down stays so and is not named twice.
func TestMarkFaultedDown(t *testing.T) {
	t0 := time.Unix(1000, 0)
	h := &history.History{Faults: []history.Fault{
		{ID: "kill-1", Kind: "kill", Target: "Node2", Start: t0},
		{ID: "pause-2", Kind: "pause", Target: "Node3", Start: t0, End: t0.Add(time.Second)},
		{ID: "drain-3", Kind: "drain", Target: "Node1", Start: t0},
		{ID: "partition-4", Kind: "partition", Target: "Node4", Start: t0, Detail: "partition@lb"},
		{ID: "restart-5", Kind: "restart", Target: "Node5", Start: t0},
		{ID: "db-outage-6", Kind: "db-outage", Start: t0},
	}}
	nodes := []Endpoint{{Name: "Node1", Live: true}, {Name: "Node2", Live: true}, {Name: "Node3", Live: true}, {Name: "Node4", Live: true}, {Name: "Node5"}}
	marked := MarkFaultedDown(h, nodes)
	var ids []string
	for _, f := range marked {
		ids = append(ids, f.ID)
	}
	if len(ids) != 2 || ids[0] != "kill-1" || ids[1] != "partition-4" {
		t.Fatalf("marked %v, want kill-1 and partition-4", ids)
	}
	want := []bool{true, false, true, false, false}
	for i, n := range nodes {
		if n.Live != want[i] {
			t.Errorf("%s live = %v, want %v", n.Name, n.Live, want[i])
		}
	}
	if KeepsNodeDown(history.Fault{Kind: "kill"}) {
		t.Error("a kill with no target keeps no node down")
	}
}
