package checker

import (
	"strings"
	"testing"

	"github.com/octoha/octoha/harness/history"
)

var (
	contentA = []byte("content A: the first upload")
	contentB = []byte("content B: a different upload!")
)

func TestDurabilityPassesWhenEveryAckIsIntact(t *testing.T) {
	var b builder
	b.upload("Acme.Web", "1.0.0", contentA, 0, 1, history.OK, 201)
	b.upload("Acme.Api", "2.0.0", contentB, 0.5, 2, history.OK, 201)
	b.upload("Lost.Maybe", "1.0.0", contentA, 3, 4, history.Unknown, 0)
	b.upload("Got.Maybe", "1.0.0", contentB, 3, 4, history.Unknown, 504)
	b.upload("Refused", "1.0.0", contentB, 3, 4, history.Failed, 409) // not collected, not judged
	s := snap(everywhere("Acme.Web", "1.0.0", contentA), everywhere("Acme.Api", "2.0.0", contentB),
		nowhere("Lost.Maybe", "1.0.0"), everywhere("Got.Maybe", "1.0.0", contentB))

	r := Durability(&b.h, s)
	wantStatus(t, r, Pass)
	wantFigure(t, r, "acknowledged", 2)
	wantFigure(t, r, "verified", 2)
	wantFigure(t, r, "missing", 0)
	wantFigure(t, r, "corrupt", 0)
	wantFigure(t, r, "unknown-present", 1)
	wantFigure(t, r, "unknown-absent", 1)
	wantFigure(t, r, "endpoints", 3) // lb + the two live nodes; Node3 is not live
	wantFigure(t, r, "node-metadata-only", 3)
	wantEvidence(t, r, "Lost.Maybe@1.0.0 absent everywhere, allowed", "Got.Maybe@1.0.0 present and intact")
}

func TestDurabilityFailsOnLostAcknowledgedUpload(t *testing.T) {
	var b builder
	b.upload("Acme.Web", "1.0.0", contentA, 0, 1, history.OK, 201)
	lost := b.upload("Acme.Api", "2.0.0", contentB, 0.5, 2, history.OK, 201)
	s := snap(everywhere("Acme.Web", "1.0.0", contentA), nowhere("Acme.Api", "2.0.0"))

	r := Durability(&b.h, s)
	wantStatus(t, r, Fail)
	wantFigure(t, r, "missing", 1)
	wantFigure(t, r, "verified", 1)
	wantEvidence(t, r, "Acme.Api@2.0.0 LOST: absent via lb, Node1, Node2", "op #2")
	if lost.Seq != 2 {
		t.Fatalf("builder seq = %d", lost.Seq)
	}
}

func TestDurabilityFailsWhenOneNodeLacksThePackage(t *testing.T) {
	var b builder
	b.upload("Acme.Web", "1.0.0", contentA, 0, 1, history.OK, 201)
	p := everywhere("Acme.Web", "1.0.0", contentA)
	p.Views[2] = absent("Node2")
	r := Durability(&b.h, snap(p))
	wantStatus(t, r, Fail)
	wantFigure(t, r, "missing", 1)
	wantEvidence(t, r, "absent via Node2 but present via lb[Node1], Node1[Node1]")
}

func TestDurabilityFailsOnCorruptCopyThroughOneNode(t *testing.T) {
	var b builder
	b.upload("Acme.Web", "1.0.0", contentA, 0, 1, history.OK, 201)
	p := everywhere("Acme.Web", "1.0.0", contentA)
	// Node2's metadata (from the shared database) is right, its bytes are not.
	bad := []byte("content A: the first uploaX")
	p.Views[2] = intact("Node2", contentA, true)
	p.Views[2].BodyHash, p.Views[2].BodyNode = sha(bad), "Node2"
	r := Durability(&b.h, snap(p))
	wantStatus(t, r, Fail)
	wantFigure(t, r, "corrupt", 1)
	wantFigure(t, r, "verified", 0)
	wantEvidence(t, r, "Acme.Web@1.0.0 via Node2: metadata says sha1 "+sha(contentA)[:12], "bytes[Node2] are sha1 "+sha(bad)[:12])
}

func TestDurabilityFailsOnWrongContentEverywhere(t *testing.T) {
	var b builder
	b.upload("Acme.Web", "1.0.0", contentA, 0, 1, history.OK, 201)
	r := Durability(&b.h, snap(everywhere("Acme.Web", "1.0.0", contentB)))
	wantStatus(t, r, Fail)
	wantFigure(t, r, "corrupt", 1)
	wantEvidence(t, r, "Acme.Web@1.0.0 CORRUPT via lb[Node1], Node1[Node1], Node2[Node1]: serves sha1 "+sha(contentB)[:12])
}

func TestDurabilityFailsOnPresentButWrongUnknownUpload(t *testing.T) {
	var b builder
	b.upload("Maybe", "1.0.0", contentA, 0, 1, history.Unknown, 0)
	r := Durability(&b.h, snap(everywhere("Maybe", "1.0.0", contentB)))
	wantStatus(t, r, Fail)
	wantFigure(t, r, "corrupt", 1)
	wantFigure(t, r, "acknowledged", 0)
}

func TestDurabilityFailsOnPartlyVisibleUnknownUpload(t *testing.T) {
	var b builder
	b.upload("Maybe", "1.0.0", contentA, 0, 1, history.Unknown, 0)
	p := everywhere("Maybe", "1.0.0", contentA)
	p.Views[1] = absent("Node1")
	r := Durability(&b.h, snap(p))
	wantStatus(t, r, Fail)
	wantFigure(t, r, "missing", 1)
	wantEvidence(t, r, "Maybe@1.0.0 partly visible: absent via Node1")
}

func TestDurabilityLastAcknowledgedContentWins(t *testing.T) {
	// A then B, strictly one after the other: only B is acceptable.
	var seq builder
	first := seq.upload("Acme.Web", "1.0.0", contentA, 0, 1, history.OK, 201)
	seq.upload("Acme.Web", "1.0.0", contentB, 2, 3, history.OK, 201)
	wantStatus(t, Durability(&seq.h, snap(everywhere("Acme.Web", "1.0.0", contentB))), Pass)
	r := Durability(&seq.h, snap(everywhere("Acme.Web", "1.0.0", contentA)))
	wantStatus(t, r, Fail)
	wantEvidence(t, r, "that is the content of op #1 (acknowledged but superseded")
	if first.Seq != 1 {
		t.Fatal("seq")
	}

	// A and B overlapping: either may have been applied last.
	var conc builder
	conc.upload("Acme.Web", "1.0.0", contentA, 0, 2, history.OK, 201)
	conc.upload("Acme.Web", "1.0.0", contentB, 1, 3, history.OK, 201)
	wantStatus(t, Durability(&conc.h, snap(everywhere("Acme.Web", "1.0.0", contentA))), Pass)
	wantStatus(t, Durability(&conc.h, snap(everywhere("Acme.Web", "1.0.0", contentB))), Pass)

	// An unknown-outcome upload may take effect after a later ack.
	var unk builder
	unk.upload("Acme.Web", "1.0.0", contentB, 0, 1, history.Unknown, 0)
	unk.upload("Acme.Web", "1.0.0", contentA, 2, 3, history.OK, 201)
	wantStatus(t, Durability(&unk.h, snap(everywhere("Acme.Web", "1.0.0", contentB))), Pass)
	wantStatus(t, Durability(&unk.h, snap(everywhere("Acme.Web", "1.0.0", contentA))), Pass)
	// …but the acknowledged version must still exist.
	wantStatus(t, Durability(&unk.h, snap(nowhere("Acme.Web", "1.0.0"))), Fail)
}

func TestDurabilityFailedUploadMustNotTakeEffect(t *testing.T) {
	var b builder
	b.upload("Acme.Web", "1.0.0", contentA, 0, 1, history.OK, 201)
	b.upload("Acme.Web", "1.0.0", contentB, 2, 3, history.Failed, 500)
	r := Durability(&b.h, snap(everywhere("Acme.Web", "1.0.0", contentB)))
	wantStatus(t, r, Fail)
	wantEvidence(t, r, "that is the content of op #2 (FAILED")
}

func TestDurabilityIgnoreIfExistsAckRequiresPresenceOnly(t *testing.T) {
	var b builder
	o := b.upload("Old", "1.0.0", contentA, 0, 1, history.OK, 200)
	b.h.Ops[o.Seq-1].URL = "http://lb/api/Spaces-1/packages/raw?overwriteMode=IgnoreIfExists"
	// The existing content came from before this history; any is accepted.
	r := Durability(&b.h, snap(everywhere("Old", "1.0.0", contentB)))
	wantStatus(t, r, Pass)
	wantEvidence(t, r, "only acknowledged as already existing")
	wantStatus(t, Durability(&b.h, snap(nowhere("Old", "1.0.0"))), Fail)
	// A different content on one node is still a disagreement.
	p := everywhere("Old", "1.0.0", contentB)
	p.Views[2] = intact("Node2", contentA, false)
	r = Durability(&b.h, snap(p))
	wantStatus(t, r, Fail)
	wantEvidence(t, r, "served with different contents")
}

func TestDurabilityFailsWhenAViewIsUnreadable(t *testing.T) {
	var b builder
	b.upload("Acme.Web", "1.0.0", contentA, 0, 1, history.OK, 201)
	p := everywhere("Acme.Web", "1.0.0", contentA)
	p.Views[1] = View{Via: "Node1", Error: "read metadata: HTTP 503: database unavailable"}
	r := Durability(&b.h, snap(p))
	wantStatus(t, r, Fail)
	wantFigure(t, r, "unreadable", 1)
	wantEvidence(t, r, "unreadable via Node1 (read metadata: HTTP 503")

	// A package the snapshot does not hold at all is not silently passed.
	var c builder
	c.upload("Elsewhere", "1.0.0", contentA, 0, 1, history.OK, 201)
	r = Durability(&c.h, snap())
	wantStatus(t, r, Fail)
	wantEvidence(t, r, "lb (not collected)")
}

func TestDurabilitySkipsAndRefusesVacuousInput(t *testing.T) {
	var b builder
	b.served("Node1", 0)
	b.upload("Refused", "1.0.0", contentA, 0, 1, history.Failed, 409)
	wantStatus(t, Durability(&b.h, snap()), Skip)

	var c builder
	c.upload("Acme.Web", "1.0.0", contentA, 0, 1, history.OK, 201)
	wantStatus(t, Durability(&c.h, nil), Fail)

	var d builder
	d.add(history.Op{Kind: history.KindUpload, Start: at(0), End: at(1), Outcome: history.OK, Status: 201})
	r := Durability(&d.h, snap())
	wantStatus(t, r, Fail)
	wantFigure(t, r, "unverifiable-ops", 1)
}

// A node known to be down (faulted, not recovered) is not read and the
// verdict says so; a view that cannot be read is "not verifiable", never
// "lost"; lost is absent everywhere it can be read.
func TestDurabilitySeparatesLostFromUnreadable(t *testing.T) {
	var b builder
	b.upload("Acme.Web", "1.0.0", contentA, 0, 1, history.OK, 201)
	r := Durability(&b.h, snap(everywhere("Acme.Web", "1.0.0", contentA)))
	wantStatus(t, r, Pass)
	wantFigure(t, r, "down-nodes", 1)
	if want := "via the load balancer and 2 live nodes (not read on down node Node3)"; !strings.Contains(r.Summary, want) {
		t.Fatalf("summary %q lacks %q", r.Summary, want)
	}

	p := everywhere("Acme.Web", "1.0.0", contentA)
	p.Views[2] = View{Via: "Node2", Error: "connection refused"}
	r = Durability(&b.h, snap(p))
	wantStatus(t, r, Fail)
	wantFigure(t, r, "unreadable", 1)
	if !strings.HasPrefix(r.Summary, "uploads not verifiable via") || strings.Contains(r.Summary, "lost or damaged via") {
		t.Fatalf("summary = %q", r.Summary)
	}

	r = Durability(&b.h, snap(nowhere("Acme.Web", "1.0.0")))
	wantStatus(t, r, Fail)
	if !strings.HasPrefix(r.Summary, "uploads lost or damaged via") {
		t.Fatalf("summary = %q", r.Summary)
	}
	wantEvidence(t, r, "Acme.Web@1.0.0 LOST: absent via lb, Node1, Node2")
}

// A package the server built from a delta must hold the full package's
// bytes (the op's hash): a file with the delta's bytes, or anything else,
// is corrupt.
func TestDurabilityJudgesDeltaBuiltPackagesByTheFullHash(t *testing.T) {
	delta := []byte("octodelta: copy 0..20, data")
	for _, c := range []struct {
		stored []byte
		want   Status
	}{{contentA, Pass}, {delta, Fail}} {
		var b builder
		b.upload("Delta.Pkg", "1.0.1", contentA, 0, 1, history.OK, 201)
		b.h.Ops[len(b.h.Ops)-1].DeltaBytes, b.h.Ops[len(b.h.Ops)-1].BaseVersion = int64(len(delta)), "1.0.0"
		r := Durability(&b.h, snap(everywhere("Delta.Pkg", "1.0.1", c.stored)))
		wantStatus(t, r, c.want)
		wantFigure(t, r, "delta-built", 1)
		if c.want == Pass {
			wantEvidence(t, r, "built on the server from deltas", "1 verified against the full packages' SHA-1")
		} else {
			wantFigure(t, r, "corrupt", 1)
		}
	}
}
