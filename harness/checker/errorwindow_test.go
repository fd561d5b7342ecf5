package checker

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/octoha/octoha/harness/history"
)

// faultyHistory: one op per second for 30 s; Node2 killed at t=10 and
// restarted at t=15; failures at t=10.2 (503), t=11 (no response) and
// t=17.5 (503, inside the default 5 s grace).
func faultyHistory() *builder {
	var b builder
	for s := 0.0; s < 30; s++ {
		b.served("Node1", s)
	}
	b.failed(10.1, 10.2, 503)
	b.failed(10.5, 11, 0)
	b.failed(17.4, 17.5, 503)
	b.fault("kill-1", "kill", "Node2", 10, 15)
	return &b
}

func TestErrorWindowPassesWhenFailuresAreInsideFaultWindows(t *testing.T) {
	b := faultyHistory()
	r := ErrorWindow(&b.h, ErrorWindowOptions{})
	wantStatus(t, r, Pass)
	wantFigure(t, r, "kill-1.failures", 3)
	wantFigure(t, r, "kill-1.first-failure", 0.2)
	wantFigure(t, r, "kill-1.last-failure", 7.5)
	wantFigure(t, r, "kill-1.status-503", 2)
	wantFigure(t, r, "kill-1.status-none", 1)
	wantFigure(t, r, "outside-failures", 0)
	wantFigure(t, r, "failures", 3)
	wantFigure(t, r, "grace", 5)
	wantEvidence(t, r, "kill-1 (kill on Node2, t+10.000s → t+15.000s): 3 failures from +0.200s to +7.500s after its start: 503×2, none×1")
}

func TestErrorWindowFailsOnFailureOutsideFaultWindows(t *testing.T) {
	b := faultyHistory()
	bad := b.failed(25, 25.3, 500)
	r := ErrorWindow(&b.h, ErrorWindowOptions{})
	wantStatus(t, r, Fail)
	wantFigure(t, r, "outside-failures", 1)
	wantEvidence(t, r, "failure outside any fault window: op #"+itoa(bad.Seq)+" ping at t+25.000s–t+25.300s: failed HTTP 500 via lb: boom")

	// Allowed explicitly: reported, not failed.
	r = ErrorWindow(&b.h, ErrorWindowOptions{AllowedOutsideFailures: 1})
	wantStatus(t, r, Pass)
	wantEvidence(t, r, "failure outside any fault window")

	// The grace decides what belongs to a fault: with none, t=17.5 is outside.
	r = ErrorWindow(&faultyHistory().h, ErrorWindowOptions{Grace: -1})
	wantStatus(t, r, Fail)
	wantFigure(t, r, "kill-1.failures", 2)

	// A history without faults: every failure is outside.
	var nf builder
	nf.served("Node1", 0)
	nf.failed(1, 2, 502)
	wantStatus(t, ErrorWindow(&nf.h, ErrorWindowOptions{}), Fail)
}

func TestErrorWindowIgnoresListedStatusesAndKinds(t *testing.T) {
	b := faultyHistory()
	b.add(history.Op{Kind: history.KindUpload, Start: at(25), End: at(26), Outcome: history.Failed, Status: 409, PackageID: "A", Version: "1.0.0"})
	wantStatus(t, ErrorWindow(&b.h, ErrorWindowOptions{}), Fail)
	wantStatus(t, ErrorWindow(&b.h, ErrorWindowOptions{IgnoreStatus: []int{409}}), Pass)
	r := ErrorWindow(&b.h, ErrorWindowOptions{Kinds: []string{history.KindPing}})
	wantStatus(t, r, Pass)
	wantFigure(t, r, "ops", 33)

	var empty builder
	wantStatus(t, ErrorWindow(&empty.h, ErrorWindowOptions{}), Skip)
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

func TestPhases(t *testing.T) {
	b := faultyHistory()
	phases := PhaseStats(&b.h, "")
	var names []string
	for _, p := range phases {
		names = append(names, p.Name)
	}
	if got := strings.Join(names, ","); got != "before,during:kill-1,after:kill-1" {
		t.Fatalf("phases = %s", got)
	}
	before, during, after := phases[0], phases[1], phases[2]
	if before.Ops != 10 || before.Failed+before.Unknown != 0 || math.Abs(before.Rate()-1) > 1e-9 {
		t.Fatalf("before = %+v rate %v", before, before.Rate())
	}
	if during.Ops != 7 || during.Failed != 1 || during.Unknown != 1 || math.Abs(during.ErrorRate()-2.0/7) > 1e-9 {
		t.Fatalf("during = %+v", during)
	}
	if after.Ops != 16 || after.Failed != 1 {
		t.Fatalf("after = %+v", after)
	}
	r := Phases(&b.h)
	wantStatus(t, r, Pass)
	wantFigure(t, r, "before.ops-per-s", 1)
	wantFigure(t, r, "during:kill-1.ops", 7)
	wantFigure(t, r, "during:kill-1.duration", 5)

	// Overlapping faults merge; a fault without an end lasts to the end.
	b.fault("pause-2", "pause", "Node1", 14, 0)
	phases = PhaseStats(&b.h, history.KindPing)
	if len(phases) != 2 || phases[1].Name != "during:kill-1+pause-2" {
		t.Fatalf("phases = %+v", phases)
	}
	var empty builder
	wantStatus(t, Phases(&empty.h), Skip)
	if PhaseStats(&empty.h, "") != nil {
		t.Fatal("no phases without ops")
	}
}

func TestMinOps(t *testing.T) {
	b := faultyHistory()
	r := MinOps(&b.h, history.KindPing, 10)
	wantStatus(t, r, Pass)
	wantFigure(t, r, "ok-ops", 10)
	wantStatus(t, MinOps(&b.h, history.KindPing, 11), Fail)
	r = MinOps(&b.h, history.KindUpload, 1)
	wantStatus(t, r, Fail)
	if r.Name != "min-ops:upload" || !strings.Contains(r.Summary, "only 0 acknowledged upload ops before the first fault") {
		t.Fatalf("result: %+v", r)
	}
	// Failed ops do not count: a run that only failed did nothing.
	var c builder
	for s := 0.0; s < 5; s++ {
		c.failed(s, s+0.1, 503)
	}
	c.fault("kill-1", "kill", "Node1", 10, 12)
	wantStatus(t, MinOps(&c.h, "", 1), Fail)
	// Without faults the whole run counts.
	var d builder
	d.served("Node1", 0)
	wantStatus(t, MinOps(&d.h, "", 1), Pass)
}

func TestAssumptions(t *testing.T) {
	b := faultyHistory()
	r := Assumptions(&b.h)
	wantStatus(t, r, Pass)
	wantFigure(t, r, "ops", 33)
	wantFigure(t, r, "faults", 1)

	b.h.Ops[3].End = b.h.Ops[3].Start.Add(-time.Second)
	b.h.Ops[4].Outcome = "maybe"
	b.h.Faults = append(b.h.Faults, history.Fault{ID: "x", Start: at(5), End: at(4)})
	r = Assumptions(&b.h)
	wantStatus(t, r, Fail)
	wantEvidence(t, r, "op #4 ping ends 1.000s before it starts", `unknown outcome "maybe"`, "fault x ends before it starts")

	var empty builder
	wantStatus(t, Assumptions(&empty.h), Fail)
}

func TestReportJSONIsStable(t *testing.T) {
	b := faultyHistory()
	rep := Evaluate(&b.h, &Snapshot{SpaceID: "Spaces-1"}, Options{MinOps: []MinOpsRule{{Kind: history.KindPing, N: 5}}})
	if !rep.Passed() {
		t.Fatalf("report failed: %+v", rep.Failed())
	}
	var names []string
	for _, r := range rep.Results {
		names = append(names, r.Name+"="+string(r.Status))
	}
	want := "history=pass,min-ops:ping=pass,durability=skip,no-leftovers=skip,convergence=skip,error-window=pass,phases=pass,upload-path=skip"
	if got := strings.Join(names, ","); got != want {
		t.Fatalf("results = %s\nwant      %s", got, want)
	}
	out, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(out), `{"passed":true,"results":[{"name":"history","status":"pass","summary":`) {
		t.Fatalf("json = %.200s", out)
	}
	var back Report
	if err := json.Unmarshal(out, &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Results) != len(rep.Results) || back.Results[5].Value("kill-1.failures") != 3 {
		t.Fatalf("round trip lost data: %+v", back.Results)
	}

	b.failed(27, 28, 500)
	rep = Evaluate(&b.h, nil, Options{})
	out, _ = json.Marshal(rep)
	if rep.Passed() || !strings.HasPrefix(string(out), `{"passed":false`) {
		t.Fatalf("a failure outside a fault window must fail the report: %s", out)
	}
	// Node2 never served and has no LB samples: only the snapshot's node
	// list tells that the kill is a node fault.
	if r, _ := rep.Result("convergence"); r.Status != Skip {
		t.Fatalf("convergence without knowing Node2: %+v", r)
	}
	rep = Evaluate(&b.h, snap(), Options{})
	if r, _ := rep.Result("convergence"); r.Status != Pass || r.Value("node-faults") != 1 {
		t.Fatalf("convergence with the snapshot's nodes: %+v", r)
	}
}

func TestEvidenceIsCapped(t *testing.T) {
	var ev evidence
	for i := range 40 {
		ev.note("note %d", i)
	}
	ev.problem("the problem")
	lines := ev.lines()
	if len(lines) != DefaultMaxEvidence || lines[0] != "the problem" || lines[len(lines)-1] != "… and 17 more" {
		t.Fatalf("lines = %q", lines)
	}
}
