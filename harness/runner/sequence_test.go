package runner

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/octoha/octoha/harness/checker"
	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/nemesis"
	"github.com/octoha/octoha/harness/scenario"
)

// A scenario without Steps is run from its data: the named victim is
// killed, its recovery runs before the teardown, and the expectation
// sees the victim and the closed fault window.
func TestSequenceRunsAFaultFromData(t *testing.T) {
	var seen []scenario.Outcome
	sc := scenario.Scenario{
		Title: "Fake kill", Claim: "test", Needs: []cluster.Capability{cluster.CapKill},
		Shape: scenario.Shape{Nodes: 2}, Timeout: 30 * time.Second,
		Faults: []scenario.FaultPlan{{Fault: "kill", Victim: "Node2", Expect: []scenario.Expectation{
			func(_ context.Context, _ scenario.Run, o scenario.Outcome) error { seen = append(seen, o); return nil },
		}}},
	}
	res, fc := harness(t, context.Background(), sc, nil)
	calls := fc.Calls()
	ki, si, di := slices.Index(calls, "kill Node2"), slices.Index(calls, "start Node2"), slices.Index(calls, "down")
	if ki < 0 || si < ki || di < si {
		t.Fatalf("calls = %v: want the kill, its recovery, then the teardown", calls)
	}
	if len(seen) != 1 || seen[0].Victim != "Node2" || seen[0].Fault.Kind != "kill" || seen[0].Fault.End.IsZero() || seen[0].History == nil {
		t.Fatalf("the expectation saw %+v", seen)
	}
	if !slices.ContainsFunc(res.Figures, func(f checker.Figure) bool { return f.Name == "kill-to-lb-down" }) {
		t.Errorf("figures %v lack kill-to-lb-down", res.Figures)
	}
}

// A victim rule naming no node of the cluster fails with that reason,
// before anything is injected.
func TestSequenceRefusesAnUnknownVictim(t *testing.T) {
	sc := scenario.Scenario{
		Title: "Fake kill", Claim: "test", Needs: []cluster.Capability{cluster.CapKill},
		Shape: scenario.Shape{Nodes: 2}, Timeout: 30 * time.Second,
		Faults: []scenario.FaultPlan{{Fault: "kill", Victim: "Node9"}},
	}
	res, fc := harness(t, context.Background(), sc, nil)
	if res.State != Failed || !strings.Contains(res.Reason, "Node9 is not a node") {
		t.Fatalf("result = %s: %s", res.State, res.Reason)
	}
	if slices.ContainsFunc(fc.Calls(), func(c string) bool { return strings.HasPrefix(c, "kill") }) {
		t.Fatalf("calls = %v: nothing should have been injected", fc.Calls())
	}
}

// A fault on one link has no node-level effect, even when its kind is a
// preset's name: a partition from the share does not eject the node.
func TestLinkFaultHasNoNodeEffect(t *testing.T) {
	spec, _ := cluster.Defaults().Normalize()
	for name, want := range map[string]bool{"partition": true, "partition@share": false, "reset@lb": false, "kill": true} {
		f, err := nemesis.ByName(name)
		if err != nil {
			t.Fatal(err)
		}
		if got := effectFor(f, spec).lbState != ""; got != want {
			t.Errorf("%s: the load balancer must act = %v, want %v", name, got, want)
		}
	}
}
