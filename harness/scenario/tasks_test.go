package scenario

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/octoha/octoha/harness/cluster"
)

// extRun is a Run on a real cluster: only what startTasks asks first.
type extRun struct {
	Run
	spec cluster.Spec
}

func (r extRun) Spec() cluster.Spec { return r.spec }

// On a real cluster whose YAML names no task the task scenarios skip,
// saying why, before sending anything.
func TestTaskScenariosSkipOnARealClusterWithoutATask(t *testing.T) {
	spec := cluster.Defaults()
	spec.Provider = cluster.ProviderExternal
	spec.External = &cluster.ExternalSpec{LBURL: "https://octopus.example.com"}
	_, err := startTasks(extRun{spec: spec}, time.Second)
	if !errors.Is(err, ErrSkip) || !strings.Contains(err.Error(), "names no task the operator accepts to queue") {
		t.Fatalf("err = %v", err)
	}
}

// The task scenarios ask the nodes for a short poll and offline bound,
// and the broken control for unlocked claims.
func TestTaskShapes(t *testing.T) {
	for _, sc := range Catalogue() {
		if sc.Tasks == nil {
			continue
		}
		spec := sc.Shape.Spec()
		if spec.Node.TaskPoll <= 0 || spec.Node.TaskPoll > time.Second || spec.Node.OfflineAfter <= 0 {
			t.Errorf("%s: task poll %s, offline after %s", sc.Title, spec.Node.TaskPoll, spec.Node.OfflineAfter)
		}
		if spec.Node.UnsafeTaskClaim != strings.Contains(sc.Title, "unlocked") {
			t.Errorf("%s: unsafe claim %v", sc.Title, spec.Node.UnsafeTaskClaim)
		}
		if !strings.Contains(strings.Join(sc.Labels(), " "), LTasks) {
			t.Errorf("%s: no tasks label", sc.Title)
		}
	}
}

// A real cluster's YAML that names a task gets exactly that task queued;
// one whose task has no name is refused when the spec is read.
func TestExternalTaskFromTheYAML(t *testing.T) {
	spec := cluster.Defaults()
	spec.Provider = cluster.ProviderExternal
	spec.External = &cluster.ExternalSpec{LBURL: "https://octopus.example.com",
		Task: &cluster.ExternalTask{Name: "AdHocScript", Arguments: map[string]any{"MachineIds": []string{"Machines-7"}}}}
	tmpl, ok := ExternalTaskTemplate(spec)
	if !ok || tmpl.Name != "AdHocScript" || tmpl.Description == "" || tmpl.Arguments["MachineIds"] == nil {
		t.Fatalf("template = %+v, %v", tmpl, ok)
	}
	spec.External.Task.Name = " "
	if _, err := spec.Normalize(); err == nil || !strings.Contains(err.Error(), "external.task needs a name") {
		t.Fatalf("a task without a name: %v", err)
	}
}
