package checker

import (
	"strings"
	"testing"
	"time"

	"github.com/octoha/octoha/harness/history"
)

func TestDiagnoseUploads(t *testing.T) {
	t0 := time.Unix(1000, 0)
	up := func(status int, node, errText string, outcome history.Outcome) history.Op {
		return history.Op{Kind: history.KindUpload, Start: t0, End: t0.Add(time.Second), Status: status, Node: node, Error: errText, Outcome: outcome, PackageID: "P", Version: "1.0.0"}
	}
	clean := &history.History{Ops: []history.Op{up(201, "Node1", "", history.OK), up(409, "Node2", "", history.Failed)}}
	if r := DiagnoseUploads(clean); r.Status != Pass {
		t.Fatalf("clean: %+v", r)
	}
	nginx := &history.History{Ops: []history.Op{up(413, "", "", history.Failed)}}
	r := DiagnoseUploads(nginx)
	if r.Status != Fail || !HasFinding(r, FindingBodyLimit) || !strings.Contains(r.Summary, "body-limit") || !strings.Contains(strings.Join(r.Evidence, "\n"), "client_max_body_size") {
		t.Fatalf("413: %+v", r)
	}
	// A 413 a node itself sent is not a load-balancer limit.
	if r := DiagnoseUploads(&history.History{Ops: []history.Op{up(413, "Node1", "", history.Failed)}}); r.Status != Pass {
		t.Fatalf("node 413: %+v", r)
	}
	mixed := &history.History{Ops: []history.Op{up(504, "", "", history.Unknown), up(0, "", "EOF", history.Unknown), up(502, "", "", history.Unknown)}}
	r = DiagnoseUploads(mixed)
	for _, f := range []Finding{FindingLBTimeout, FindingCutOff, FindingBadGW} {
		if !HasFinding(r, f) {
			t.Errorf("missing %s in %+v", f.Name, r)
		}
	}
	// A total request limit (408 from the load balancer) is a timeout,
	// named with the setting to change and how long the attempt ran.
	slow := &history.History{Ops: []history.Op{up(408, "", "408 Request Timeout", history.Failed)}}
	r = DiagnoseUploads(slow)
	ev := strings.Join(r.Evidence, "\n")
	if r.Status != Fail || !HasFinding(r, FindingLBTimeout) || !strings.Contains(ev, "readTimeout") || !strings.Contains(ev, "after 1s") {
		t.Fatalf("408: %+v", r)
	}
	// A 408 a node itself sent is not the load balancer's.
	if r := DiagnoseUploads(&history.History{Ops: []history.Op{up(408, "Node1", "", history.Failed)}}); r.Status != Pass {
		t.Fatalf("node 408: %+v", r)
	}
	// Caddy 2.6 with read_body: an empty 200 that no node gave, after the
	// limit; named with Caddy's setting. A node's 200 that fails to verify
	// for another reason is not the load balancer's.
	emptyAck := &history.History{Ops: []history.Op{up(200, "", history.EmptyAck+": 200 OK, no package resource", history.OK)}}
	r = DiagnoseUploads(emptyAck)
	ev = strings.Join(r.Evidence, "\n")
	if r.Status != Fail || !HasFinding(r, FindingLBEmptyAck) || !strings.Contains(ev, "read_body") || !strings.Contains(ev, "after 1s") {
		t.Fatalf("empty 200: %+v", r)
	}
	for _, op := range []history.Op{up(200, "Node1", history.EmptyAck+": 200 OK", history.OK), up(200, "", "server stored hash \"x\", sent y", history.OK)} {
		if r := DiagnoseUploads(&history.History{Ops: []history.Op{op}}); r.Status != Pass {
			t.Fatalf("%+v: %+v", op, r)
		}
	}
	// During a fault, lost backends are expected; a body limit is not.
	faulty := &history.History{
		Ops:    []history.Op{up(503, "", "", history.Failed), up(502, "", "", history.Unknown), up(413, "", "", history.Failed)},
		Faults: []history.Fault{{Kind: "kill", Target: "Node1", Start: t0.Add(-time.Second), End: t0.Add(2 * time.Second)}},
	}
	r = DiagnoseUploads(faulty)
	if HasFinding(r, FindingNoNode) || HasFinding(r, FindingBadGW) || !HasFinding(r, FindingBodyLimit) || r.Value("expected-during-faults") != 2 {
		t.Fatalf("during a fault: %+v", r)
	}
	if r := DiagnoseUploads(&history.History{}); r.Status != Skip {
		t.Fatalf("empty: %+v", r)
	}
}
