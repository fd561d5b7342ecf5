// Package rundir is the layout of a run directory (docs/run-layout.md) and
// the one record each scenario leaves in it. The runner writes it; reports
// and the certificate only read it, so nothing in harness depends on how
// runs are presented.
package rundir

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/octoha/octoha/harness/checker"
	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/cluster/external"
)

// Names inside a run directory.
const (
	// ScenariosDir holds one directory per scenario.
	ScenariosDir = "scenarios"
	// ScenarioFile is a scenario directory's record.
	ScenarioFile = "scenario.json"
	// HistoryFile is a scenario directory's history.
	HistoryFile = "history.jsonl"
)

// Scenario states.
const (
	StatePassed  = "passed"
	StateFailed  = "failed"
	StateSkipped = "skipped"
)

// ScenarioDir is the directory of the scenario with this slug in run.
func ScenarioDir(run, slug string) string { return filepath.Join(run, ScenariosDir, slug) }

// Scenario describes one scenario's run: what was tested, how to replay it,
// and what came out. It never holds secrets (the spec is redacted).
type Scenario struct {
	Name string `json:"name"`
	// Title is the scenario's short heading ("Kill mid-upload"); reports
	// show it instead of Name when set.
	Title string `json:"title,omitempty"`
	// Claim is the one sentence the scenario proves, shown beneath the
	// title.
	Claim    string   `json:"claim,omitempty"`
	Slug     string   `json:"slug"` // directory name
	Labels   []string `json:"labels,omitempty"`
	Seed     int64    `json:"seed"`
	Provider string   `json:"provider"`
	// UploadSize is the run's --upload-size in bytes (0 in records written
	// before it was kept).
	UploadSize int64     `json:"uploadSize,omitempty"`
	Start      time.Time `json:"start"`
	End        time.Time `json:"end"`
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
	// Replay is the exact command that runs this scenario again (Replay
	// below, as the runner wrote it); empty in older records.
	Replay string `json:"replay,omitempty"`
}

// ReplayCommand is the command that runs the scenario again with the same
// seed: the one recorded, or, for a record without one, the same command
// Replay builds from what the record holds.
func (s Scenario) ReplayCommand() string {
	if s.Replay != "" {
		return s.Replay
	}
	if s.UploadSize > 0 && s.Title != "" {
		return Replay(ReplayOptions{Command: "chaos", Title: s.Title, Seed: s.Seed, UploadSize: s.UploadSize, Provider: s.Provider})
	}
	// Records from before the upload size was kept: filter by every label.
	cmd := "make chaos"
	if len(s.Labels) > 0 {
		cmd += " LABELS='" + strings.Join(s.Labels, " && ") + "'"
	}
	return cmd + " OCTOHA_SEED=" + strconv.FormatInt(s.Seed, 10)
}

// ReplayOptions is what a replay command repeats.
type ReplayOptions struct {
	Command     string // chaos or certify
	Title       string
	Seed        int64
	UploadSize  int64
	Provider    string // chaos only
	ClusterFile string // the --cluster argument, if any
}

// Replay is the one command line that runs a scenario again exactly: the
// same seed, upload size and provider.
func Replay(o ReplayOptions) string {
	cmd := "octoha " + o.Command
	if o.ClusterFile != "" {
		cmd += " --cluster " + external.ShellQuote(o.ClusterFile)
	}
	cmd += " --focus " + external.ShellQuote("^"+regexp.QuoteMeta(o.Title)+"$")
	cmd += fmt.Sprintf(" --seed %d --upload-size %s", o.Seed, SizeArg(o.UploadSize))
	if o.Command == "chaos" && o.Provider != "" {
		cmd += " --provider " + o.Provider
	}
	return cmd
}

// SizeArg renders a size the way --upload-size reads it back exactly:
// whole GiB, MiB or KiB where it is one, bytes otherwise.
func SizeArg(n int64) string {
	for _, u := range []struct {
		size int64
		name string
	}{{1 << 30, "GiB"}, {1 << 20, "MiB"}, {1 << 10, "KiB"}} {
		if n >= u.size && n%u.size == 0 {
			return strconv.FormatInt(n/u.size, 10) + u.name
		}
	}
	return strconv.FormatInt(n, 10)
}

// WriteScenario writes s (with the spec redacted) into dir/scenario.json,
// atomically.
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
