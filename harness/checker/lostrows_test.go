package checker

import (
	"strings"
	"testing"

	"github.com/octoha/octoha/harness/history"
	"github.com/octoha/octoha/octopusapi"
)

func lostRowsStore() *Snapshot {
	return &Snapshot{
		SpaceID: "Spaces-1",
		Rows:    []octopusapi.Package{row("Acme", "1.0.0", ".zip", 3)},
		Files: listing(
			FileInfo{"Spaces-1/feeds-builtin/Acme/Acme.1.0.0.zip", 3},
			FileInfo{"Spaces-1/feeds-builtin/Acme/Acme.1.0.1.zip", 4},
			FileInfo{"Spaces-1/feeds-builtin/Acme/Acme.1.0.2.zip", 5},
		),
	}
}

func TestLostRowsNamesAcknowledgedUploadsWithoutRows(t *testing.T) {
	var b builder
	b.upload("Acme", "1.0.0", []byte("one"), 1, 2, history.OK, 201)
	b.upload("Acme", "1.0.1", []byte("four"), 3, 4, history.OK, 201)
	b.upload("Acme", "1.0.2", []byte("fives"), 5, 6.5, history.OK, 201)
	b.upload("Acme", "1.0.3", []byte("x"), 5, 6, history.Failed, 500) // never acknowledged
	b.upload("Acme", "1.0.4", []byte("gone"), 5, 6, history.OK, 201)  // no row, no file
	b.fault("f0", "db-failover", "", 2.5, 0)
	b.h.Faults[0].Detail = "replication cut"
	b.fault("f1", "db-failover", "", 8, 9)
	b.h.Faults[1].Detail = "forced failover"
	r := LostRows(&b.h, lostRowsStore())
	wantStatus(t, r, Fail)
	wantFigure(t, r, FindingLostAcks, 2)
	wantFigure(t, r, "lost-bytes", 9)
	wantFigure(t, r, "lost-entirely", 1)
	wantFigure(t, r, "lost-window", 2.5)
	wantEvidence(t, r, "Acme@1.0.1", "Acme@1.0.2", "file is still on the share", "Acme@1.0.4", "neither")
	if !HasFinding(r, Finding{Name: FindingLostAcks}) {
		t.Fatalf("finding %s not named: %s", FindingLostAcks, r.Summary)
	}
	for _, want := range []string{"2 acknowledged uploads", "after the db-failover (replication cut) at t+1.500s", "before the db-failover (forced failover) at t+7.000s", "2.500s window"} {
		if !strings.Contains(r.Summary, want) {
			t.Errorf("summary %q does not say %q", r.Summary, want)
		}
	}
}

func TestLostRowsPassesWhenEveryRowIsThere(t *testing.T) {
	var b builder
	b.upload("Acme", "1.0.0", []byte("one"), 1, 2, history.OK, 201)
	r := LostRows(&b.h, lostRowsStore())
	wantStatus(t, r, Pass)
	wantFigure(t, r, FindingLostAcks, 0)
}

func TestLostRowsSkipsWithoutAListing(t *testing.T) {
	var b builder
	b.upload("Acme", "1.0.0", []byte("one"), 1, 2, history.OK, 201)
	s := lostRowsStore()
	s.Files = nil
	wantStatus(t, LostRows(&b.h, s), Skip)
}
