package scenario

import (
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
		if sc.Steps == nil || sc.Timeout <= 0 {
			t.Errorf("%s: no steps or no timeout", sc.Title)
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
