package scenario

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/octoha/octoha/harness/cluster"
)

func TestCatalogueIsWellFormed(t *testing.T) {
	titles, slugs := map[string]bool{}, map[string]bool{}
	for _, sc := range Catalogue() {
		if sc.Title == "" || len(sc.Title) > 40 {
			t.Errorf("title %q: want a short title", sc.Title)
		}
		if !strings.HasSuffix(sc.Claim, ".") || strings.Count(sc.Claim, ". ") > 0 {
			t.Errorf("%s: the claim must be one sentence: %q", sc.Title, sc.Claim)
		}
		if titles[sc.Title] || slugs[sc.Slug()] {
			t.Errorf("%s: title or directory name used twice", sc.Title)
		}
		titles[sc.Title], slugs[sc.Slug()] = true, true
		if sc.Timeout <= 0 {
			t.Errorf("%s: no timeout", sc.Title)
		}
		if err := sc.Validate(); err != nil {
			t.Errorf("the standard sequence cannot run it: %v", err)
		}
		for _, n := range sc.Needs {
			if !cluster.Known(n) {
				t.Errorf("%s needs unknown capability %q", sc.Title, n)
			}
		}
		for _, l := range sc.Labels() {
			if !slices.Contains(AllLabels, l) {
				t.Errorf("%s has label %q, which AllLabels (the README's list) does not name", sc.Title, l)
			}
		}
		if len(sc.providers()) == 0 {
			t.Errorf("%s runs nowhere", sc.Title)
		}
	}
}

// Every label users are told about is attached to at least one scenario.
func TestEveryLabelSelectsSomething(t *testing.T) {
	used := map[string]bool{}
	for _, sc := range Catalogue() {
		for _, l := range sc.Labels() {
			used[l] = true
		}
	}
	for _, l := range AllLabels {
		if !used[l] {
			t.Errorf("label %q is advertised but attached to no scenario", l)
		}
	}
}

func TestLabelsAreDerivedFromFields(t *testing.T) {
	sc := Scenario{Faults: []FaultPlan{{Fault: "kill"}, {Fault: "db-outage"}}, Uploads: &Uploads{Count: 1}, Needs: []cluster.Capability{cluster.CapSimulated}}
	got := sc.Labels()
	for _, want := range []string{LFailover, LDatabase, LUpload, LSlow, LDocker} {
		if !slices.Contains(got, want) {
			t.Errorf("labels %v lack %q", got, want)
		}
	}
	if slices.Contains(got, LExternal) {
		t.Errorf("a scenario needing a simulated cluster is labelled external: %v", got)
	}
	sc.Uploads.MaxSize = 1 << 20
	if slices.Contains(sc.Labels(), LSlow) {
		t.Error("capped uploads still labelled slow")
	}
}

func TestEveryRequirementIsDecidedByAScenario(t *testing.T) {
	for _, req := range Requirements() {
		found := false
		for _, sc := range Catalogue() {
			if slices.Contains(sc.Certifies, req.ID) && sc.RunsOn(External) == nil {
				found = true
			}
		}
		if !found {
			t.Errorf("requirement %s: no scenario that runs on a real cluster decides it", req.ID)
		}
	}
}

func TestDestructiveNeeds(t *testing.T) {
	if d := HealthCheck().Destructive(); len(d) != 0 {
		t.Errorf("health check (drain only) is destructive: %v", d)
	}
	if d := KillMidUpload().Destructive(); !slices.Equal(d, []cluster.Capability{cluster.CapKill}) {
		t.Errorf("kill mid-upload destructive = %v", d)
	}
	if !cluster.Destructive("disk-fill") {
		t.Error("an unknown capability must count as destructive")
	}
}

// Validate refuses data the standard sequence cannot run, before any
// cluster comes up.
func TestValidateRefusesWhatTheSequenceCannotRun(t *testing.T) {
	base := func(f FaultPlan) Scenario {
		return Scenario{Title: "t", Faults: []FaultPlan{f}, Load: []Load{{Target: "ping", Rate: 10}}}
	}
	bad := map[string]Scenario{
		"unknown fault":            base(FaultPlan{Fault: "meteor", Victim: "Node1"}),
		"node fault, no victim":    base(FaultPlan{Fault: "kill"}),
		"cluster fault, a victim":  base(FaultPlan{Fault: "db-outage", Victim: "Node1"}),
		"unknown gate":             base(FaultPlan{Fault: "db-outage", After: "lunch"}),
		"waits for absent uploads": base(FaultPlan{Fault: "kill", Victim: VictimUploading}),
		"no faults":                {Title: "t"},
		"load without a rate":      {Title: "t", Faults: []FaultPlan{{Fault: "kill", Victim: "Node1"}}, Load: []Load{{Target: "ping"}}},
	}
	for name, sc := range bad {
		if err := sc.Validate(); err == nil {
			t.Errorf("%s: Validate accepted %+v", name, sc)
		}
	}
	if err := base(FaultPlan{Fault: "kill", Victim: "Node2"}).Validate(); err != nil {
		t.Errorf("a kill of Node2 under ping load: %v", err)
	}
	withSteps := Scenario{Title: "t", Steps: func(context.Context, Run) error { return nil }}
	if err := withSteps.Validate(); err != nil {
		t.Errorf("a scenario with Steps is not the sequence's to validate: %v", err)
	}
}

// The fault-under-load scenarios are data: the runner's sequence runs them.
func TestFaultUnderLoadScenariosAreData(t *testing.T) {
	for _, sc := range []Scenario{DrainUnderLoad(), KillMidUpload(), KillMidDelta(), Pause(), Partition(), DatabaseOutage(), ShareOutage(), ResetMidUpload()} {
		if !sc.Sequenced() {
			t.Errorf("%s has Steps: it should be run from its data", sc.Title)
		}
	}
}
