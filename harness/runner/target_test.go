package runner

import (
	"testing"
	"time"

	"github.com/octoha/octoha/harness/checker"
	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/history"
)

// The runner's checks and octoha check agree on which faulted nodes are
// down: both ask checker.MarkFaultedDown. A drained node, or one behind a
// slowed link, still serves reads and is read; a killed one is not.
func TestTargetAgreesWithCheckOnDownNodes(t *testing.T) {
	t0 := time.Unix(1000, 0)
	h := &history.History{Faults: []history.Fault{
		{ID: "drain-1", Kind: "drain", Target: "Node1", Start: t0},
		{ID: "kill-2", Kind: "kill", Target: "Node2", Start: t0},
		{ID: "pause-3", Kind: "pause", Target: "Node3", Start: t0, End: t0.Add(time.Second)},
		{ID: "latency-4", Kind: "latency", Target: "Node3", Start: t0, Detail: "latency@db,latency=300ms"},
	}}
	r := &run{c: newFake(cluster.Spec{Nodes: 3})}
	got := r.target(h).Nodes

	// octoha check's path: the nodes it was given, all live until marked.
	byHand := []checker.Endpoint{{Name: "Node1", Live: true}, {Name: "Node2", Live: true}, {Name: "Node3", Live: true}}
	marked := checker.MarkFaultedDown(h, byHand)
	if len(marked) != 1 || marked[0].ID != "kill-2" {
		t.Fatalf("marked = %+v, want only kill-2", marked)
	}
	if len(got) != len(byHand) {
		t.Fatalf("runner target has %d nodes, want %d", len(got), len(byHand))
	}
	for i := range got {
		if got[i].Name != byHand[i].Name || got[i].Live != byHand[i].Live {
			t.Errorf("%s: runner live=%v, octoha check live=%v", got[i].Name, got[i].Live, byHand[i].Live)
		}
	}
	if !got[0].Live || got[1].Live || !got[2].Live {
		t.Errorf("runner target = %+v, want Node1 (drained) and Node3 (slowed) live, Node2 (killed) down", got)
	}
}
