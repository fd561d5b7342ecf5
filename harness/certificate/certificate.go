// Package certificate turns the results of a certification run into the
// certificate an operator files before an Octopus upgrade: one row per
// requirement the seed document makes of an HA cluster, each PASS, FAIL,
// NOT RUN (saying why: not allowed, no hook, not selected) or, for an
// optional requirement, ABSENT — with its evidence and the command that
// replays it.
package certificate

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/octoha/octoha/harness/runner"
	"github.com/octoha/octoha/harness/scenario"
)

// Files a certificate is written to.
const (
	MarkdownFile = "certificate.md"
	JSONFile     = "certificate.json"
)

// Row statuses and overall verdicts.
const (
	Pass   = "PASS"
	Fail   = "FAIL"
	NotRun = "NOT RUN"
	// Absent: an optional requirement the cluster does not meet; not a
	// failure.
	Absent = "ABSENT"
	// Incomplete: nothing failed, but a required row did not run.
	Incomplete = "INCOMPLETE"
)

// Row is one requirement's verdict.
type Row struct {
	ID          string   `json:"id"`
	Requirement string   `json:"requirement"`
	Optional    bool     `json:"optional,omitempty"`
	Status      string   `json:"status"`
	Why         string   `json:"why,omitempty"`
	Evidence    []string `json:"evidence,omitempty"`
	Scenarios   []string `json:"scenarios"`
	Replay      []string `json:"replay,omitempty"`
	// Resource and Value: a configuration row's resource ID and the value
	// seen there (read from the cloud's API, not from a scenario).
	Resource string `json:"resource,omitempty"`
	Value    string `json:"value,omitempty"`
}

// Certificate is the whole document.
type Certificate struct {
	Cluster    string    `json:"cluster"`
	Nodes      []string  `json:"nodes"`
	Generated  time.Time `json:"generated"`
	Version    string    `json:"version,omitempty"`
	Seed       int64     `json:"seed"`
	UploadSize string    `json:"uploadSize"`
	// Verdict is PASS (every required row passed), FAIL (any row failed)
	// or INCOMPLETE.
	Verdict string `json:"verdict"`
	Rows    []Row  `json:"rows"`
}

// Input is what Build needs.
type Input struct {
	Cluster    string
	Nodes      []string
	Version    string
	Seed       int64
	UploadSize int64
	// Catalogue is every scenario; Results those that ran (or skipped).
	Catalogue []scenario.Scenario
	Results   []*runner.Result
	// Replay renders the command that replays a scenario.
	Replay func(sc scenario.Scenario) string
	// Configuration rows (e.g. Azure's), decided before the run; they
	// count in the verdict like the others.
	Configuration []Row
}

// Build decides every row from the results.
func Build(in Input) Certificate {
	c := Certificate{Cluster: in.Cluster, Nodes: in.Nodes, Generated: time.Now().UTC(), Version: in.Version, Seed: in.Seed, UploadSize: runner.SizeArg(in.UploadSize)}
	byTitle := map[string]*runner.Result{}
	for _, r := range in.Results {
		byTitle[r.Title] = r
	}
	failed, incomplete := false, false
	for _, req := range scenario.Requirements() {
		row := Row{ID: req.ID, Requirement: req.Text, Optional: req.Optional, Status: NotRun}
		var passed, failedRes []*runner.Result
		var whyNot []string
		for _, sc := range in.Catalogue {
			if !slices.Contains(sc.Certifies, req.ID) {
				continue
			}
			row.Scenarios = append(row.Scenarios, sc.Title)
			if in.Replay != nil {
				row.Replay = append(row.Replay, in.Replay(sc))
			}
			res := byTitle[sc.Title]
			switch {
			case res == nil:
				whyNot = append(whyNot, sc.Title+": not selected (--labels/--focus)")
			case res.State == runner.Skipped:
				whyNot = append(whyNot, sc.Title+": "+res.Reason)
			case res.State == runner.Failed:
				failedRes = append(failedRes, res)
			default:
				passed = append(passed, res)
			}
		}
		switch {
		case len(failedRes) > 0:
			row.Status = Fail
			for _, r := range failedRes {
				row.Why = joinWhy(row.Why, r.Title+": "+firstLine(r.Reason))
				row.Evidence = append(row.Evidence, evidence(r)...)
			}
		case len(passed) > 0:
			row.Status = Pass
			for _, r := range passed {
				row.Evidence = append(row.Evidence, headline(r, req.Key)...)
			}
			for _, r := range passed {
				row.Evidence = append(row.Evidence, evidence(r)...)
			}
			if req.ID == scenario.ReqStickiness && !sticky(passed) {
				row.Status = Absent
				row.Why = "a client keeping its session cookie reached more than one node"
			}
		default:
			row.Why = strings.Join(whyNot, "; ")
			if len(row.Scenarios) == 0 {
				row.Why = "no scenario of this version decides it"
			}
		}
		switch {
		case row.Status == Fail:
			failed = true
		case row.Status == NotRun && !req.Optional:
			incomplete = true
		}
		c.Rows = append(c.Rows, row)
	}
	for _, row := range in.Configuration {
		switch row.Status {
		case Fail:
			failed = true
		case NotRun:
			if !row.Optional {
				incomplete = true
			}
		}
		c.Rows = append(c.Rows, row)
	}
	c.Verdict = Pass
	if incomplete {
		c.Verdict = Incomplete
	}
	if failed {
		c.Verdict = Fail
	}
	return c
}

func joinWhy(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// headline is what a row's key checks and figures say, first.
func headline(r *runner.Result, keys []string) []string {
	var out []string
	for _, k := range keys {
		if r.Checks != nil {
			if ck, ok := r.Checks.Result(k); ok {
				out = append(out, fmt.Sprintf("%s %s: %s", k, ck.Status, ck.Summary))
				continue
			}
		}
		for _, f := range r.Figures {
			if f.Name == k {
				out = append(out, f.String())
				break
			}
		}
	}
	return out
}

// evidence is a result's verdict line, its figures and its checks.
func evidence(r *runner.Result) []string {
	out := []string{fmt.Sprintf("%s: %s in %s", r.Title, strings.ToUpper(r.State), r.Duration().Round(100*time.Millisecond))}
	if len(r.Figures) > 0 {
		figs := make([]string, len(r.Figures))
		for i, f := range r.Figures {
			figs[i] = f.String()
		}
		out = append(out, "  figures: "+strings.Join(figs, ", "))
	}
	if r.Checks != nil {
		for _, ck := range r.Checks.Results {
			mark := string(ck.Status)
			if ck.ExpectedFailure {
				mark = "failed as expected"
			}
			out = append(out, fmt.Sprintf("  check %s: %s — %s", ck.Name, mark, ck.Summary))
		}
	}
	return out
}

func sticky(rs []*runner.Result) bool {
	for _, r := range rs {
		for _, f := range r.Figures {
			if f.Name == scenario.StickyFigure && f.Value >= 100 {
				return true
			}
		}
	}
	return false
}

// Write writes certificate.md and certificate.json into dir.
func (c Certificate) Write(dir string) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, JSONFile), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write the certificate: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, MarkdownFile), []byte(c.Markdown()), 0o644); err != nil {
		return fmt.Errorf("write the certificate: %w", err)
	}
	return nil
}

// Markdown renders the certificate for people (and CI job summaries).
func (c Certificate) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Octopus HA certificate: %s\n\n", c.Verdict)
	fmt.Fprintf(&b, "- Cluster: %s (nodes %s)\n", c.Cluster, strings.Join(c.Nodes, ", "))
	fmt.Fprintf(&b, "- Generated: %s by octoha %s\n", c.Generated.Format(time.RFC3339), c.Version)
	fmt.Fprintf(&b, "- Seed %d, upload size %s\n\n", c.Seed, c.UploadSize)
	b.WriteString("| Requirement | Status | Why / evidence |\n|---|---|---|\n")
	for _, r := range c.Rows {
		why := r.Why
		if why == "" {
			// The headline: the key checks' and figures' lines.
			var head []string
			for _, e := range r.Evidence {
				if strings.Contains(e, ": PASSED in") || strings.Contains(e, ": FAILED in") {
					break
				}
				head = append(head, e)
			}
			why = strings.Join(head, "; ")
		}
		fmt.Fprintf(&b, "| %s | **%s** | %s |\n", cell(r.Requirement), r.Status, cell(why))
	}
	b.WriteString("\n## Evidence\n")
	for _, r := range c.Rows {
		fmt.Fprintf(&b, "\n### %s — %s\n\n%s\n\n", r.ID, r.Status, r.Requirement)
		if r.Why != "" {
			fmt.Fprintf(&b, "Why: %s\n\n", r.Why)
		}
		if len(r.Evidence) > 0 {
			b.WriteString("```\n" + strings.Join(r.Evidence, "\n") + "\n```\n\n")
		}
		for _, cmd := range r.Replay {
			fmt.Fprintf(&b, "Replay: `%s`\n\n", cmd)
		}
	}
	return b.String()
}

func cell(s string) string {
	s = strings.ReplaceAll(s, "|", "\\|")
	return strings.ReplaceAll(s, "\n", " ")
}
