package main

import (
	"strings"
	"testing"

	"github.com/octoha/octoha/harness/cluster/local"
)

func TestStatusDegradedExitCode(t *testing.T) {
	if (statusDegraded{[]string{"Node2 DEAD"}}).ExitCode() != 3 {
		t.Fatal("degraded must exit 3, as documented")
	}
}

// The Nodes page's columns: rank and running tasks out of the cap; "?"
// where the database could not be read.
func TestPrintStatusTaskColumns(t *testing.T) {
	two, cap := 2, 20
	var b strings.Builder
	printStatus(&b, local.StatusReport{Name: "c", OwnerAlive: true, Nodes: []local.NodeStatus{
		{Name: "Node1", State: "OK", Ping: 200, LBState: "UP", Rank: "Leader", RunningTasks: &two, TaskCap: &cap},
		{Name: "Node2", State: "DEAD", LBState: "DOWN"},
	}})
	out := b.String()
	var node1, node2 string
	for _, l := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(l, "NODE"):
			if !strings.Contains(l, "RANK") || !strings.Contains(l, "TASKS") {
				t.Errorf("header %q", l)
			}
		case strings.HasPrefix(l, "Node1"):
			node1 = l
		case strings.HasPrefix(l, "Node2"):
			node2 = l
		}
	}
	if !strings.Contains(node1, "Leader") || !strings.Contains(node1, "2/20") {
		t.Errorf("Node1 line %q", node1)
	}
	if strings.Contains(node2, "Leader") || strings.Count(node2, "?") < 3 {
		t.Errorf("Node2 line %q", node2)
	}
}
