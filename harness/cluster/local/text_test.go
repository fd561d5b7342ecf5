package local

import (
	"strings"
	"testing"
	"time"

	"github.com/octoha/octoha/harness/cluster"
)

// The Nodes page's columns: rank and running tasks out of the cap; "?"
// where the database could not be read.
func TestStatusTextTaskColumns(t *testing.T) {
	two, cap := 2, 20
	var b strings.Builder
	StatusReport{Name: "c", OwnerAlive: true, Nodes: []NodeStatus{
		{Name: "Node1", State: "OK", Ping: 200, LBState: "UP", Rank: "Leader", RunningTasks: &two, TaskCap: &cap},
		{Name: "Node2", State: "DEAD", LBState: "DOWN"},
	}}.WriteText(&b)
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

// The endpoint table names every endpoint once, marks embedded stand-ins,
// and lists the load balancer's driver after the other components.
func TestWriteEndpoints(t *testing.T) {
	st := &State{RunDir: "/run/c", LBURL: "http://127.0.0.10:8080", LBKind: "haproxy",
		Nodes: []cluster.Node{{Name: "Node1", URL: "http://127.0.0.11:8080", ID: "OctopusServerNodes-1"}},
		Components: []cluster.Component{
			{Part: "load balancer", Description: "embedded proxy", Embedded: true},
			{Part: "node Node1", Description: "octoha node"},
			{Part: "database", Description: "SQLite", Location: "/run/c/db.sqlite"},
		}}
	var b strings.Builder
	st.WriteEndpoints(&b)
	want := []string{
		"load balancer  http://127.0.0.10:8080  haproxy",
		"Node1          http://127.0.0.11:8080  OctopusServerNodes-1",
		"API key        in /run/c/api-key (mode 0600)",
		"database       /run/c/db.sqlite        SQLite",
		"lb driver      embedded proxy  [EMBEDDED]",
		"run dir        /run/c",
	}
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(want), b.String())
	}
	for i, w := range want {
		if strings.Join(strings.Fields(lines[i]), " ") != strings.Join(strings.Fields(w), " ") {
			t.Errorf("line %d = %q, want %q", i, lines[i], w)
		}
	}
	if got := lastLines("a\nb\nc\n", 2); got != "b\nc" {
		t.Errorf("lastLines = %q", got)
	}
}

// With no cluster in the directory, a status and a watch say so at once,
// and a watch shows nothing.
func TestStatusOfNoCluster(t *testing.T) {
	dir := t.TempDir()
	if _, err := StatusOf(t.Context(), dir); err == nil || !strings.Contains(err.Error(), "no cluster in "+dir) {
		t.Errorf("StatusOf: err = %v", err)
	}
	shown := 0
	_, err := WatchStatus(t.Context(), dir, time.Millisecond, func(StatusReport) error { shown++; return nil })
	if err == nil || shown != 0 {
		t.Errorf("WatchStatus: err = %v, shown %d times", err, shown)
	}
}
