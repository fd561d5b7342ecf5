package history

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestRecordAndLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history.jsonl")
	r, err := Create(path)
	if err != nil {
		t.Fatal(err)
	}
	r.Meta(Meta{Scenario: "kill", Seed: 42})
	t0 := time.Now()
	f := r.FaultStart("kill", "Node2", "SIGKILL")
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.Op(Op{Kind: KindUpload, Start: t0, End: t0.Add(time.Duration(i) * time.Millisecond), Outcome: OK, Status: 201, Node: "Node1", PackageID: "Pkg", Version: "1.0." + string(rune('a'+i%26)), Hash: "abc", Size: 10})
		}()
	}
	wg.Wait()
	r.LB(LBState{Time: time.Now(), Server: "Node2", State: "DOWN"})
	r.FaultEnd(f, errors.New("restart failed"))
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}

	h, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Ops) != 50 {
		t.Fatalf("ops = %d, want 50", len(h.Ops))
	}
	for i, o := range h.Ops {
		if o.Seq != uint64(i+1) {
			t.Fatalf("op %d has seq %d", i, o.Seq)
		}
	}
	if len(h.Faults) != 1 {
		t.Fatalf("faults = %d, want 1 (start and end merged)", len(h.Faults))
	}
	if h.Faults[0].End.IsZero() || h.Faults[0].Error != "restart failed" || h.Faults[0].Target != "Node2" {
		t.Fatalf("fault not merged: %+v", h.Faults[0])
	}
	if len(h.LB) != 1 || h.LB[0].State != "DOWN" {
		t.Fatalf("lb = %+v", h.LB)
	}
	if len(h.Meta) != 1 || h.Meta[0].Seed != 42 {
		t.Fatalf("meta = %+v", h.Meta)
	}
	if h.Truncated {
		t.Fatal("complete file reported as truncated")
	}
}

func TestDecodeTruncatedLastLine(t *testing.T) {
	good := `{"op":{"seq":1,"kind":"ping","start":"2026-01-01T00:00:00Z","end":"2026-01-01T00:00:01Z","outcome":"ok"}}` + "\n"
	h, err := Decode(strings.NewReader(good + `{"op":{"seq":2,"kind":"pi`))
	if err != nil {
		t.Fatal(err)
	}
	if !h.Truncated || len(h.Ops) != 1 {
		t.Fatalf("truncated=%v ops=%d", h.Truncated, len(h.Ops))
	}
}

func TestDecodeCorruptMiddleLineIsAnError(t *testing.T) {
	good := `{"op":{"seq":1,"kind":"ping","start":"2026-01-01T00:00:00Z","end":"2026-01-01T00:00:01Z","outcome":"ok"}}` + "\n"
	_, err := Decode(strings.NewReader(good + "garbage\n" + good))
	if err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("err = %v, want a line-2 error", err)
	}
}

func TestNilRecorderDiscards(t *testing.T) {
	var r *Recorder
	op := r.Op(Op{Kind: KindPing})
	if op.Kind != KindPing {
		t.Fatal("nil recorder lost the op")
	}
	r.LB(LBState{})
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestAppendAcrossRecorders(t *testing.T) {
	path := filepath.Join(t.TempDir(), "h.jsonl")
	for range 2 {
		r, err := Create(path)
		if err != nil {
			t.Fatal(err)
		}
		r.Op(Op{Kind: KindPing, Outcome: OK})
		r.Close()
	}
	b, _ := os.ReadFile(path)
	if n := strings.Count(string(b), "\n"); n != 2 {
		t.Fatalf("lines = %d, want 2", n)
	}
}

func TestMergeOrdersByStart(t *testing.T) {
	t0 := time.Unix(1000, 0)
	a := &History{Ops: []Op{{Seq: 1, Start: t0.Add(2 * time.Second)}}}
	b := &History{Ops: []Op{{Seq: 1, Start: t0}}}
	m := Merge(a, b)
	if !m.Ops[0].Start.Equal(t0) || m.Ops[0].Seq != 1 || m.Ops[1].Seq != 2 {
		t.Fatalf("merge = %+v", m.Ops)
	}
}

func TestFaultActive(t *testing.T) {
	t0 := time.Unix(1000, 0)
	f := Fault{Start: t0, End: t0.Add(time.Second)}
	if !f.Active(t0) || f.Active(t0.Add(time.Second)) || f.Active(t0.Add(-1)) {
		t.Fatal("window wrong")
	}
	open := Fault{Start: t0}
	if !open.Active(t0.Add(time.Hour)) {
		t.Fatal("open fault should stay active")
	}
}

// Commands sharing one run directory append to one history: one header,
// sequence numbers and fault IDs unique across them (also when they write
// at the same time), each record tagged with its command.
func TestJoinSharedHistory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history.jsonl")
	a, name, err := Join(path, "upload", Meta{Scenario: "by hand"}, Command{Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	if name != "upload-1" || a.Command() != "upload-1" {
		t.Fatalf("name = %q", name)
	}
	b, name, err := Join(path, "attack", Meta{Scenario: "ignored"}, Command{})
	if err != nil {
		t.Fatal(err)
	}
	if name != "attack-2" {
		t.Fatalf("second name = %q", name)
	}
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := a
			if i%2 == 1 {
				r = b
			}
			r.Op(Op{Kind: KindPing, Outcome: OK})
		}()
	}
	wg.Wait()
	fa := a.FaultStart("kill", "Node2", "")
	fb := b.FaultStart("pause", "Node3", "")
	if fa.ID == fb.ID || fa.Command != "upload-1" {
		t.Fatalf("fault IDs %q %q (cmd %q)", fa.ID, fb.ID, fa.Command)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	// A third command ends the fault the first one left open.
	c, name, err := Join(path, "fault", Meta{}, Command{})
	if err != nil || name != "fault-3" {
		t.Fatalf("third: %q %v", name, err)
	}
	c.Op(Op{Kind: KindPing, Outcome: OK})
	h, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	open, ok := h.OpenFault("Node2", "kill", "restart")
	if !ok || open.ID != fa.ID {
		t.Fatalf("open fault = %+v %v", open, ok)
	}
	c.FaultEnd(open, nil)
	b.Op(Op{Kind: KindPing, Outcome: OK})
	b.Close()
	c.Close()

	h, err = Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Meta) != 1 || h.Meta[0].Scenario != "by hand" {
		t.Fatalf("meta = %+v", h.Meta)
	}
	if len(h.Commands) != 3 || h.Commands[0].Seed != 7 {
		t.Fatalf("commands = %+v", h.Commands)
	}
	if len(h.Ops) != 42 {
		t.Fatalf("ops = %d", len(h.Ops))
	}
	tags := map[string]int{}
	for i, o := range h.Ops {
		if o.Seq != uint64(i+1) {
			t.Fatalf("op %d has seq %d", i, o.Seq)
		}
		tags[o.Command]++
	}
	if tags["upload-1"] != 20 || tags["attack-2"] != 21 || tags["fault-3"] != 1 {
		t.Fatalf("tags = %v", tags)
	}
	if _, ok := h.OpenFault("Node2", "kill"); ok {
		t.Fatal("fault still open after its end was recorded")
	}
	if _, ok := h.OpenFault("Node3", "pause"); !ok {
		t.Fatal("pause on Node3 should be open")
	}
}

// Task ops keep what they saw (task views, executions, node lists)
// through a write and a read, and a reader that knows only packages
// sees plain ops of other kinds.
func TestTaskOpsRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	r := NewRecorder(&buf)
	t0 := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	done := t0.Add(2 * time.Second)
	r.Op(Op{Kind: KindTaskFinal, Start: t0, End: t0.Add(time.Millisecond), Outcome: OK, Task: "ServerTasks-1",
		Tasks: []TaskView{{ID: "ServerTasks-1", State: TaskFailed, Node: "Node2", CompletedTime: &done, Error: "Node2 went offline"}}})
	r.Op(Op{Kind: KindTaskLog, Start: t0, End: t0, Outcome: OK, Task: "ServerTasks-1",
		Executions: []Execution{{Node: "Node2", Start: t0}, {Node: "Node3", Start: t0, End: done, State: TaskSuccess}}})
	r.Op(Op{Kind: KindTaskNodes, Start: t0, End: t0, Outcome: OK, Via: "Node1",
		NodeList: []NodeView{{Name: "Node1", Rank: "Leader", MaxConcurrentTasks: 5, RunningTasks: 2}}})
	h, err := Decode(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Ops) != 3 {
		t.Fatalf("%d ops", len(h.Ops))
	}
	f, l, n := h.Ops[0], h.Ops[1], h.Ops[2]
	if f.Tasks[0].State != TaskFailed || !f.Tasks[0].CompletedTime.Equal(done) || f.Tasks[0].Error == "" {
		t.Errorf("final = %+v", f.Tasks)
	}
	if len(l.Executions) != 2 || !l.Executions[0].End.IsZero() || l.Executions[1].State != TaskSuccess {
		t.Errorf("executions = %+v", l.Executions)
	}
	if n.NodeList[0].Rank != "Leader" || n.NodeList[0].RunningTasks != 2 || n.NodeList[0].MaxConcurrentTasks != 5 {
		t.Errorf("node list = %+v", n.NodeList)
	}
	if !TaskTerminal(TaskCanceled) || TaskTerminal(TaskCancelling) {
		t.Error("TaskTerminal")
	}
}
