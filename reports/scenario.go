// Package reports turns finished runs into what people read: a
// self-contained HTML page with plots, a JSON summary with a stable schema,
// and a Markdown summary for CI job pages. It reads the run directory
// layout documented in docs/run-layout.md; the scenario suites write it.
package reports

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/octoha/octoha/harness/checker"
	"github.com/octoha/octoha/harness/cluster"
)

// ScenarioFile is the name of a scenario directory's description file.
const ScenarioFile = "scenario.json"

// HistoryFile is the name of a scenario directory's history.
const HistoryFile = "history.jsonl"

// ScenariosDir is the subdirectory of a run directory holding one
// directory per scenario.
const ScenariosDir = "scenarios"

// Scenario states.
const (
	StatePassed  = "passed"
	StateFailed  = "failed"
	StateSkipped = "skipped"
)

// Scenario describes one scenario's run: what was tested, how to replay it,
// and what came out. It never holds secrets (the spec is redacted).
type Scenario struct {
	Name string `json:"name"`
	// Title is the scenario's short heading ("Kill mid-upload"); reports
	// show it instead of Name when set.
	Title string `json:"title,omitempty"`
	// Claim is the one sentence the scenario proves, shown beneath the
	// title.
	Claim    string    `json:"claim,omitempty"`
	Slug     string    `json:"slug"` // directory name
	Labels   []string  `json:"labels,omitempty"`
	Seed     int64     `json:"seed"`
	Provider string    `json:"provider"`
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	// State is passed, failed or skipped.
	State string `json:"state"`
	// Failure is the assertion message of a failed scenario.
	Failure string `json:"failure,omitempty"`
	// SkipReason says why a skipped scenario did not run.
	SkipReason string              `json:"skipReason,omitempty"`
	Spec       *cluster.Spec       `json:"spec,omitempty"`
	Components []cluster.Component `json:"components,omitempty"`
	// Figures are the scenario's own measurements (ejection time, capacity
	// drop, recovery time…), beside the checkers' figures in Checks.
	Figures []checker.Figure `json:"figures,omitempty"`
	Checks  *checker.Report  `json:"checks,omitempty"`
	// Results lists the vegeta result files in the directory.
	Results []string `json:"results,omitempty"`
	// Notes are free-text findings worth showing (e.g. "nginx-defaults
	// rejected the upload with 413: client_max_body_size").
	Notes []string `json:"notes,omitempty"`
	// Replay is the exact command that runs this scenario again with the
	// same seed; empty means ReplayCommand derives one from the labels.
	Replay string `json:"replay,omitempty"`
}

// ReplayCommand is the command that runs the scenario again with the same
// seed: Replay when the suite set it, otherwise `make chaos` filtered to the
// scenario's labels (all of them, so the filter is as narrow as the labels
// allow) with its seed.
func (s Scenario) ReplayCommand() string {
	if s.Replay != "" {
		return s.Replay
	}
	cmd := "make chaos"
	if len(s.Labels) > 0 {
		cmd += " LABELS='" + strings.Join(s.Labels, " && ") + "'"
	}
	return cmd + " OCTOHA_SEED=" + strconv.FormatInt(s.Seed, 10)
}

// WriteScenario writes s (with the spec redacted) into dir/scenario.json.
func WriteScenario(dir string, s Scenario) error {
	if s.Spec != nil {
		r := s.Spec.Redacted()
		s.Spec = &r
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encode scenario: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create scenario directory: %w", err)
	}
	tmp := filepath.Join(dir, ScenarioFile+".tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write scenario: %w", err)
	}
	return os.Rename(tmp, filepath.Join(dir, ScenarioFile))
}

// ReadScenario reads dir/scenario.json.
func ReadScenario(dir string) (*Scenario, error) {
	b, err := os.ReadFile(filepath.Join(dir, ScenarioFile))
	if err != nil {
		return nil, fmt.Errorf("read scenario: %w", err)
	}
	var s Scenario
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("parse %s: %w", filepath.Join(dir, ScenarioFile), err)
	}
	return &s, nil
}
