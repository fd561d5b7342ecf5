package certificate

import (
	"strings"
	"testing"
	"time"

	"github.com/octoha/octoha/harness/checker"
	"github.com/octoha/octoha/harness/runner"
	"github.com/octoha/octoha/harness/scenario"
)

func result(title, state, reason string, figs []checker.Figure, checks ...checker.Result) *runner.Result {
	now := time.Now()
	return &runner.Result{Title: title, State: state, Reason: reason, Start: now.Add(-time.Second), End: now, Figures: figs, Checks: &checker.Report{Results: checks}}
}

func TestRowsFromResults(t *testing.T) {
	cat := scenario.Catalogue()
	results := []*runner.Result{
		result("Health check", runner.Passed, "", nil, checker.Result{Name: "convergence", Status: checker.Pass, Summary: "ejected within 1.2s"}),
		result("Drain under load", runner.Passed, "", nil, checker.Result{Name: "convergence", Status: checker.Pass, Summary: "ejected within 1.5s"}, checker.Result{Name: "durability", Status: checker.Pass, Summary: "3 of 3 intact"}),
		result("LB certification", runner.Failed, "check upload-path failed: 413 body-limit\n  evidence", nil, checker.Result{Name: "upload-path", Status: checker.Fail, Summary: "body-limit: 413"}),
		result("Kill mid-upload", runner.Skipped, "kill on an external cluster is destructive: it needs --allow-destructive", nil),
		result("Session stickiness", runner.Passed, "", []checker.Figure{{Name: scenario.StickyFigure, Value: 100, Unit: "%"}}),
		result("Operating systems", runner.Failed, "the cluster mixes operating systems (Node1 windows, Node2 linux)", nil, checker.Result{Name: "downloads", Status: checker.Fail, Summary: "cause mixed operating systems"}),
	}
	c := Build(Input{Cluster: "http://lb", Catalogue: cat, Results: results, Seed: 1, UploadSize: 1 << 30})
	want := map[string]string{
		scenario.ReqHealthCheckPath: Pass,
		scenario.ReqDrainEjects:     Fail, // the LB certification also decides it
		scenario.ReqLargeUpload:     Fail,
		scenario.ReqSamePackages:    Fail,
		scenario.ReqFailover:        NotRun,
		scenario.ReqDatabaseOutage:  NotRun,
		scenario.ReqStickiness:      Pass,
		scenario.ReqSameOS:          Fail,
		scenario.ReqPolling:         NotRun,
		// The Azure rows' scenarios did not run here.
		scenario.ReqProbeBound: NotRun,
		scenario.ReqLongUpload: NotRun,
		scenario.ReqOver100MB:  NotRun,
	}
	for _, r := range c.Rows {
		if r.Status != want[r.ID] {
			t.Errorf("row %s = %s (%s), want %s", r.ID, r.Status, r.Why, want[r.ID])
		}
	}
	if r := rowOf(c, scenario.ReqFailover); !strings.Contains(r.Why, "allow-destructive") {
		t.Errorf("NOT RUN row does not say why: %q", r.Why)
	}
	if r := rowOf(c, scenario.ReqSameOS); !strings.Contains(r.Why, "mixes operating systems") {
		t.Errorf("same-os row does not say why: %q", r.Why)
	}
	if r := rowOf(c, scenario.ReqDatabaseOutage); !strings.Contains(r.Why, "not selected") {
		t.Errorf("unselected row: %q", r.Why)
	}
	if c.Verdict != Fail {
		t.Errorf("verdict = %s", c.Verdict)
	}
	md := c.Markdown()
	for _, s := range []string{"# Octopus HA certificate: FAIL", "convergence pass: ejected within 1.2s", "| **NOT RUN** |"} {
		if !strings.Contains(md, s) {
			t.Errorf("certificate.md lacks %q:\n%s", s, md)
		}
	}
}

func TestStickinessAbsentIsNotAFailure(t *testing.T) {
	var results []*runner.Result
	for _, sc := range scenario.Catalogue() {
		if sc.RunsOn(scenario.External) == nil {
			results = append(results, result(sc.Title, runner.Passed, "", []checker.Figure{{Name: scenario.StickyFigure, Value: 50, Unit: "%"}}))
		}
	}
	c := Build(Input{Catalogue: scenario.Catalogue(), Results: results})
	if r := rowOf(c, scenario.ReqStickiness); r.Status != Absent {
		t.Fatalf("stickiness = %s", r.Status)
	}
	if c.Verdict != Pass {
		t.Fatalf("verdict = %s, want PASS (stickiness is optional)", c.Verdict)
	}
}

func rowOf(c Certificate, id string) Row {
	for _, r := range c.Rows {
		if r.ID == id {
			return r
		}
	}
	return Row{}
}
