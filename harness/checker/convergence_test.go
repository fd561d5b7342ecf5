package checker

import (
	"strings"
	"testing"
	"time"

	"github.com/octoha/octoha/harness/history"
)

// pauseHistory: Node2 is paused from t=5 to t=10. The LB sent it new
// requests until t=6.5, marked it DOWN at t=7 and UP at t=12, and it served
// again from t=12.5. Node1 served throughout.
func pauseHistory() *history.History {
	var b builder
	for s := 0.0; s < 20; s += 0.5 {
		b.served("Node1", s)
	}
	for s := 0.0; s < 5; s += 0.5 {
		b.served("Node2", s)
	}
	b.served("Node2", 5.5)
	b.served("Node2", 6.5)
	// Sent straight to the node, not through the LB: says nothing about it.
	b.add(history.Op{Kind: history.KindPing, Start: at(8), End: at(8.1), Outcome: history.OK, Status: 200, Node: "Node2", Via: "Node2"})
	for s := 12.5; s < 20; s += 0.5 {
		b.served("Node2", s)
	}
	b.fault("pause-1", "pause", "Node2", 5, 10)
	b.fault("db-1", "db-outage", "database", 15, 16)
	b.lb("Node1", "UP", 0)
	b.lb("Node2", "UP", 0)
	b.lb("Node2", "UNKNOWN", 6) // the LB could not be asked: no information
	b.lb("Node2", "DOWN 1/2", 7)
	b.lb("Node2", "UP", 12)
	return &b.h
}

func TestConvergenceMeasuresEjectAndRejoin(t *testing.T) {
	r := Convergence(pauseHistory(), ConvergenceOptions{EjectWithin: 3 * time.Second, RejoinWithin: 5 * time.Second})
	wantStatus(t, r, Pass)
	wantFigure(t, r, "pause-1.eject-requests", 1.5)
	wantFigure(t, r, "pause-1.served-during", 2)
	wantFigure(t, r, "pause-1.eject-lb", 2)
	wantFigure(t, r, "pause-1.rejoin-requests", 2.5)
	wantFigure(t, r, "pause-1.rejoin-lb", 2)
	wantFigure(t, r, "eject-max", 2)
	wantFigure(t, r, "rejoin-max", 2.5)
	wantFigure(t, r, "node-faults", 1)
	wantFigure(t, r, "not-rejoined", 0)
	wantEvidence(t, r, "fault db-1 (db-outage on \"database\") is not a node fault", "LB marked Node2 DOWN 1/2 at t+7.000s")
}

func TestConvergenceFailsOverEjectBound(t *testing.T) {
	r := Convergence(pauseHistory(), ConvergenceOptions{EjectWithin: time.Second})
	wantStatus(t, r, Fail)
	if !strings.Contains(r.Summary, "1.500s") || !strings.Contains(r.Summary, "bound 1.000s") {
		t.Fatalf("summary lacks the numbers: %s", r.Summary)
	}
	wantEvidence(t, r, "pause-1: still routed new requests 1.500s after the fault started (bound 1.000s)")

	// Within the request bound but the LB's own view is over it.
	h := pauseHistory()
	h.LB[3].Time = at(9)
	r = Convergence(h, ConvergenceOptions{EjectWithin: 3 * time.Second})
	wantStatus(t, r, Fail)
	wantEvidence(t, r, "LB took 4.000s to mark Node2 out")
}

func TestConvergenceFailsOverRejoinBound(t *testing.T) {
	r := Convergence(pauseHistory(), ConvergenceOptions{RejoinWithin: 2 * time.Second})
	wantStatus(t, r, Fail)
	wantEvidence(t, r, "Node2 served again only 2.500s after the fault ended (bound 2.000s)")
}

func TestConvergenceNotRejoined(t *testing.T) {
	// Node2 killed at t=5 and never restarted.
	var b builder
	for s := 0.0; s < 5; s += 0.5 {
		b.served("Node1", s)
		b.served("Node2", s)
	}
	for s := 5.0; s < 15; s += 0.5 {
		b.served("Node1", s)
	}
	b.fault("kill-1", "kill", "Node2", 5, 0)
	b.lb("Node2", "UP", 0)
	b.lb("Node2", "DOWN", 6.2)

	r := Convergence(&b.h, ConvergenceOptions{EjectWithin: 3 * time.Second})
	wantStatus(t, r, Pass)
	wantFigure(t, r, "not-rejoined", 1)
	wantFigure(t, r, "kill-1.eject-requests", 0)
	wantFigure(t, r, "kill-1.eject-lb", 1.2)
	wantEvidence(t, r, "not rejoined: the fault never ended")
	if !strings.Contains(r.Summary, "1 not rejoined") {
		t.Fatalf("summary: %s", r.Summary)
	}

	r = Convergence(&b.h, ConvergenceOptions{RejoinWithin: 10 * time.Second})
	wantStatus(t, r, Fail)

	// Restarted, but the LB never sent it anything again.
	b.h.Faults[0].End = at(8)
	r = Convergence(&b.h, ConvergenceOptions{})
	wantStatus(t, r, Pass)
	wantEvidence(t, r, "not rejoined: served no request through the LB after the fault ended")
	wantStatus(t, Convergence(&b.h, ConvergenceOptions{RejoinWithin: 10 * time.Second}), Fail)
}

func TestConvergenceFailsWhenLBNeverEjects(t *testing.T) {
	h := pauseHistory()
	h.LB = h.LB[:2] // only UP samples
	r := Convergence(h, ConvergenceOptions{EjectWithin: 3 * time.Second})
	wantStatus(t, r, Fail)
	wantEvidence(t, r, "LB never marked Node2 out (bound 3.000s)")
	// Without a bound it is reported, not judged.
	r = Convergence(h, ConvergenceOptions{})
	wantStatus(t, r, Pass)
	wantEvidence(t, r, "LB never marked Node2 out after the fault started")
}

func TestConvergenceFailsWhenBoundCannotBeMeasured(t *testing.T) {
	var b builder
	b.served("Node1", 0)
	b.fault("kill-1", "kill", "Node3", 1, 2)
	r := Convergence(&b.h, ConvergenceOptions{EjectWithin: time.Second, Nodes: []string{"Node3"}})
	wantStatus(t, r, Fail)
	wantEvidence(t, r, "ejection of Node3 could not be measured")
}

func TestConvergenceSkipsWithoutNodeFaults(t *testing.T) {
	var b builder
	b.served("Node1", 0)
	b.fault("db-1", "db-outage", "database", 1, 2)
	r := Convergence(&b.h, ConvergenceOptions{EjectWithin: time.Second})
	wantStatus(t, r, Skip)
	if r.Summary != "no node faults in this history" {
		t.Fatalf("summary: %q", r.Summary)
	}
}

func TestIsUp(t *testing.T) {
	for state, want := range map[string]bool{"UP": true, "UP 1/3": true, "up": true, "no check": true,
		"DOWN": false, "DOWN 1/2": false, "NOLB": false, "DRAIN": false, "MAINT": false, "": false} {
		if IsUp(state) != want {
			t.Errorf("IsUp(%q) = %v", state, !want)
		}
	}
}

// Issue 16 follow-up: share latency on a node and database latency on
// every node leave the nodes in the load balancer; convergence must not
// report them as ejections ("ejected within 0.003s") but judge only the
// partition of Node2's load-balancer link.
func TestConvergenceJudgesOnlyEjectingFaults(t *testing.T) {
	var b builder
	for s := 0.0; s < 20; s += 0.5 {
		b.served("Node1", s)
	}
	for s := 0.0; s < 5; s += 0.5 {
		b.served("Node2", s)
	}
	for s := 12.0; s < 20; s += 0.5 {
		b.served("Node2", s)
	}
	net := func(id, detail, target string, start, end float64) {
		kind, _, _ := strings.Cut(detail, "@")
		b.h.Faults = append(b.h.Faults, history.Fault{ID: id, Kind: kind, Target: target, Start: at(start), End: at(end), Detail: detail})
	}
	net("latency-1", "latency@share,latency=3ms,jitter=1ms", "Node1", 1, 4)
	net("latency-2", "latency@db,latency=20ms", "Node2", 1, 4)
	net("reset-1", "reset@lb,after=1s", "Node1", 14, 15)
	net("partition-1", "partition@lb", "Node2", 5, 10)
	b.lb("Node1", "UP", 0)
	b.lb("Node2", "UP", 0)
	b.lb("Node2", "DOWN", 6)
	b.lb("Node2", "UP", 11)
	h := &b.h
	r := Convergence(h, ConvergenceOptions{EjectWithin: 3 * time.Second})
	wantStatus(t, r, Pass)
	wantFigure(t, r, "node-faults", 1)
	wantFigure(t, r, "partition-1.eject-lb", 1)
	for _, f := range r.Figures {
		if strings.HasPrefix(f.Name, "latency-") || strings.HasPrefix(f.Name, "reset-") {
			t.Errorf("figure %s = %v for a fault that does not eject", f.Name, f.Value)
		}
	}
	wantEvidence(t, r, "fault latency-1 (latency@share,latency=3ms,jitter=1ms on Node1) is not meant to take the node out of the load balancer",
		"fault reset-1 (reset@lb,after=1s on Node1) is not meant to take the node out of the load balancer")

	// With only the share latency, there is nothing to judge.
	h.Faults = h.Faults[:1]
	r = Convergence(h, ConvergenceOptions{})
	wantStatus(t, r, Skip)
	if strings.Contains(r.Summary, "ejected") || !strings.Contains(r.Summary, "1 fault on node links not judged") {
		t.Errorf("summary %q judges share latency as an ejection", r.Summary)
	}
}

func TestEjecting(t *testing.T) {
	for _, c := range []struct {
		kind, detail string
		want         bool
	}{
		{"kill", "", true}, {"pause", "", true}, {"restart", "", true}, {"drain", "", true},
		{"partition", "partition@all", true}, {"partition", "partition@lb", true}, {"partition", "", true},
		{"partition", "partition@share", false}, {"partition", "partition@db", false},
		{"blackhole", "blackhole@lb,after=0s", true}, {"blackhole", "blackhole@db,after=0s", false},
		{"latency", "latency@lb,latency=200ms", false}, {"bandwidth", "bandwidth@share,rate=1000000", false},
		{"reset", "reset@lb,after=1s", false}, {"slow-close", "slow-close@lb,after=1s", false},
		{"hook-fault", "", true},
	} {
		if got := Ejecting(history.Fault{Kind: c.kind, Detail: c.detail}); got != c.want {
			t.Errorf("Ejecting(%s %q) = %v, want %v", c.kind, c.detail, got, c.want)
		}
	}
}
