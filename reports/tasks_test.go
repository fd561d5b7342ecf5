package reports

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/octoha/octoha/harness/history"
)

// A scenario with task ops gets a tasks lane: the queue, each node's
// executing tasks against its cap (raised at run time), its finished
// tasks by end state, and the leader strip moving after a kill.
func TestReportTasksLane(t *testing.T) {
	dir := t.TempDir()
	sc := filepath.Join(dir, ScenariosDir, "tasks")
	if err := os.MkdirAll(sc, 0o755); err != nil {
		t.Fatal(err)
	}
	rec, err := history.Create(filepath.Join(sc, HistoryFile))
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	tp := func(s float64) *time.Time { v := at(s); return &v }
	nodes := func(leader string, cap1 int) []history.NodeView {
		out := []history.NodeView{}
		for _, n := range []string{"Node1", "Node2"} {
			rank, c := "Follower", 2
			if n == leader {
				rank = "Leader"
			}
			if n == "Node1" {
				c = cap1
			}
			out = append(out, history.NodeView{Name: n, Rank: rank, MaxConcurrentTasks: c})
		}
		return out
	}
	rec.Op(history.Op{Kind: history.KindTaskNodes, Start: at(0), End: at(0.01), Outcome: history.OK, Via: "Node2", NodeList: nodes("Node1", 2)})
	for i, id := range []string{"ServerTasks-1", "ServerTasks-2", "ServerTasks-3"} {
		rec.Op(history.Op{Kind: history.KindTaskCreate, Start: at(0.1), End: at(0.2), Outcome: history.OK, Task: id, Node: "Node1"})
		state, node := history.TaskSuccess, "Node2"
		if i == 0 {
			state, node = history.TaskFailed, "Node1"
		}
		rec.Op(history.Op{Kind: history.KindTaskFinal, Start: at(6), End: at(6.01), Outcome: history.OK, Task: id, Tasks: []history.TaskView{{
			ID: id, State: state, Node: node, QueueTime: tp(0.2), StartTime: tp(0.5 + float64(i)), CompletedTime: tp(3 + float64(i)), Error: "node Node1 went offline",
		}}})
	}
	rec.Fault(history.Fault{ID: "kill-1", Kind: "kill", Target: "Node1", Start: at(1)})
	rec.Op(history.Op{Kind: history.KindTaskCap, Start: at(2), End: at(2.01), Outcome: history.OK, NodeList: []history.NodeView{{Name: "Node2", MaxConcurrentTasks: 4}}})
	rec.Op(history.Op{Kind: history.KindTaskNodes, Start: at(4), End: at(4.01), Outcome: history.OK, Via: "Node2", NodeList: nodes("Node2", 2)})
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	writeJSON(t, filepath.Join(sc, ScenarioFile), Scenario{Name: "tasks", State: StatePassed, Start: t0, End: at(7)})
	if _, err := Write(context.Background(), dir, Options{}); err != nil {
		t.Fatal(err)
	}
	page, err := os.ReadFile(filepath.Join(dir, HTMLFile))
	if err != nil {
		t.Fatal(err)
	}
	plot := string(page)
	i := strings.Index(plot, `data-plot="tasks"`)
	if i < 0 {
		t.Fatal("no tasks plot")
	}
	plot = plot[i:]
	plot = plot[:strings.Index(plot, "</svg>")]
	for _, want := range []string{
		`class="task-queued"`, `class="task-running"`, "executing on Node2 (at most 2 at once)",
		"Node2&#39;s task cap: 2 → 4", "ServerTasks-1 Failed on Node1 at t+3.000s: node Node1 went offline",
		"Node1 leader from t+0.010s to t+4.010s", "Node2 leader from t+4.010s to the end", "⚡ kill Node1",
	} {
		if !strings.Contains(plot, want) {
			t.Errorf("the tasks plot lacks %q", want)
		}
	}

	// No task ops: no tasks plot.
	dir2 := t.TempDir()
	sc2 := filepath.Join(dir2, ScenariosDir, "plain")
	writeFile(t, filepath.Join(sc2, HistoryFile), `{"op":{"seq":1,"kind":"ping","start":"2026-01-01T00:00:00Z","end":"2026-01-01T00:00:00.01Z","outcome":"ok","status":200,"node":"Node1"}}`+"\n")
	writeJSON(t, filepath.Join(sc2, ScenarioFile), Scenario{Name: "plain", State: StatePassed, Start: t0, End: at(1)})
	if _, err := Write(context.Background(), dir2, Options{}); err != nil {
		t.Fatal(err)
	}
	page2, _ := os.ReadFile(filepath.Join(dir2, HTMLFile))
	if bytes.Contains(page2, []byte(`data-plot="tasks"`)) {
		t.Error("a history without tasks has a tasks plot")
	}
}
