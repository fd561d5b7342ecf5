// Package reports turns finished runs into what people read: a
// self-contained HTML page with plots, a JSON summary with a stable schema,
// and a Markdown summary for CI job pages. It reads the run directory
// layout documented in docs/run-layout.md; the scenario suites write it.
package reports

import "github.com/octoha/octoha/harness/rundir"

// The run directory's layout and its scenario record belong to
// harness/rundir, which the runner writes; reports only reads them.
const (
	ScenarioFile = rundir.ScenarioFile
	HistoryFile  = rundir.HistoryFile
	ScenariosDir = rundir.ScenariosDir
	StatePassed  = rundir.StatePassed
	StateFailed  = rundir.StateFailed
	StateSkipped = rundir.StateSkipped
)

// Scenario is one scenario's record (rundir.Scenario).
type Scenario = rundir.Scenario

// WriteScenario writes a scenario record (tests and tools that make run
// directories by hand).
func WriteScenario(dir string, s Scenario) error { return rundir.WriteScenario(dir, s) }

// ReadScenario reads dir/scenario.json.
func ReadScenario(dir string) (*Scenario, error) { return rundir.ReadScenario(dir) }
