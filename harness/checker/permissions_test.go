package checker

import (
	"testing"

	"github.com/octoha/octoha/harness/history"
)

// probes adds one session's answers, one every 0.1s from start: 'a'
// allowed (200), 'd' denied (403), served in turn by nodes.
func (b *builder) probes(session string, start float64, answers string, nodes ...string) {
	for i, c := range answers {
		status := 200
		if c == 'd' {
			status = 403
		}
		s := start + 0.1*float64(i)
		b.add(history.Op{Kind: "push-probe", Client: session, Start: at(s), End: at(s + 0.01), Outcome: history.OK, Status: status, Node: nodes[i%len(nodes)]})
	}
}

func revokeAt(b *builder, s float64) {
	b.add(history.Op{Kind: KindRevoke, Start: at(s), End: at(s + 0.05), Outcome: history.OK, Status: 200, Node: "Node1"})
}

func TestPermissionsFlipFlopsWithoutStickiness(t *testing.T) {
	var b builder
	b.probes("session-1", 0, "aaaa", "Node1", "Node2", "Node3")
	revokeAt(&b, 0.5)
	b.probes("session-1", 1, "dadadddd", "Node1", "Node2")
	o := PermissionOptions{ProbeKind: "push-probe", Monotonic: true, ExpireWithin: 5e9}
	r := Permissions(&b.h, o)
	wantStatus(t, r, Fail)
	wantFigure(t, r, FindingFlips.Name, 2)
	wantFigure(t, r, "stale-answers", 2)
	if !HasFinding(r, FindingFlips) {
		t.Fatal("flips not named")
	}
	wantEvidence(t, r, "session-1: allowed again by Node2")
	// Without the monotonic promise the same history passes, reporting
	// the window: last allowed probe (1.3s, ended 1.31s) - revoke end 0.55s.
	o.Monotonic = false
	r = Permissions(&b.h, o)
	wantStatus(t, r, Pass)
	wantFigure(t, r, "stale-window", 0.76)
}

func TestPermissionsStickySessionsAreMonotonic(t *testing.T) {
	var b builder
	b.probes("session-1", 0, "aaa", "Node1")
	b.probes("session-2", 0, "aaa", "Node2")
	revokeAt(&b, 0.5)
	b.probes("session-1", 1, "dddd", "Node1")
	b.probes("session-2", 1, "aaadd", "Node2")
	r := Permissions(&b.h, PermissionOptions{ProbeKind: "push-probe", Monotonic: true, ExpireWithin: 5e9})
	wantStatus(t, r, Pass)
	wantFigure(t, r, "flips", 0)
	wantFigure(t, r, "stale-answers", 3)
	// The shared promise: no stale answer at all.
	r = Permissions(&b.h, PermissionOptions{ProbeKind: "push-probe", NoStale: true})
	wantStatus(t, r, Fail)
	// A bound shorter than the stale window fails too.
	r = Permissions(&b.h, PermissionOptions{ProbeKind: "push-probe", ExpireWithin: 1e8})
	wantStatus(t, r, Fail)
	wantEvidence(t, r, "session-2: still allowed by Node2")
}

func TestPermissionsNeedsARevokeAndAnAnswer(t *testing.T) {
	var b builder
	b.probes("session-1", 0, "aaa", "Node1")
	wantStatus(t, Permissions(&b.h, PermissionOptions{ProbeKind: "push-probe"}), Fail)
	revokeAt(&b, 0.5)
	b.probes("session-1", 1, "aaa", "Node1")
	r := Permissions(&b.h, PermissionOptions{ProbeKind: "push-probe"})
	wantStatus(t, r, Fail) // never denied
	wantEvidence(t, r, "never expired")
}
