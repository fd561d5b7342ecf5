// Package checker turns a finished run into verdicts. It reads only the
// history (harness/history) and a Snapshot of what the cluster serves
// afterwards, collected over the same HTTP API a real Octopus cluster
// offers, and returns Results with figures and concrete evidence. It never
// asserts: scenarios decide what a verdict means for them.
//
// Checks are staged as in etcd's robustness tests: Assumptions (is the
// history itself sane?), then the invariants (Durability, NoLeftovers), then
// the measurements (Convergence, ErrorWindow, Phases) and the anti-vacuity
// guard (MinOps). Run collects a Snapshot and runs them all.
package checker

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Status is a checker's verdict.
type Status string

const (
	// Pass: the property holds on this history.
	Pass Status = "pass"
	// Fail: the property is violated; Evidence says where.
	Fail Status = "fail"
	// Skip: the check does not apply (the Summary says why), e.g. a
	// convergence check on a history without node faults.
	Skip Status = "skip"
)

// DefaultMaxEvidence is how many evidence lines a Result carries before the
// rest is folded into "… and N more".
const DefaultMaxEvidence = 25

// Figure is one named measurement of a check.
type Figure struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit,omitempty"` // "s", "ops", "ops/s", "%", "bytes", "packages", "files"
}

// String renders the figure as name=value unit.
func (f Figure) String() string {
	v := strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.3f", f.Value), "0"), ".")
	switch f.Unit {
	case "", "count", "ops", "packages", "files", "views", "requests":
		return f.Name + "=" + v
	case "s", "%":
		return f.Name + "=" + v + f.Unit
	default:
		return f.Name + "=" + v + " " + f.Unit
	}
}

// Result is the verdict of one check.
type Result struct {
	Name   string `json:"name"`
	Status Status `json:"status"`
	// Summary is one line a human reads first.
	Summary string   `json:"summary"`
	Figures []Figure `json:"figures,omitempty"`
	// Evidence lists concrete facts (op seqs, package ids, file names,
	// times), problems first, capped at DefaultMaxEvidence lines with a
	// final "… and N more".
	Evidence []string `json:"evidence,omitempty"`
	// ExpectedFailure marks a failed check that the scenario declared must
	// fail (a control proving the checker can fail, a misconfigured load
	// balancer the harness must catch): it is shown as "failed as
	// expected" and does not fail the report.
	ExpectedFailure bool `json:"expectedFailure,omitempty"`
}

// Unexpected reports whether the result is a failure nobody planned.
func (r Result) Unexpected() bool { return r.Status == Fail && !r.ExpectedFailure }

// Figure returns the named figure.
func (r Result) Figure(name string) (Figure, bool) {
	for _, f := range r.Figures {
		if f.Name == name {
			return f, true
		}
	}
	return Figure{}, false
}

// Value returns the named figure's value, or 0 when it is absent.
func (r Result) Value(name string) float64 {
	f, _ := r.Figure(name)
	return f.Value
}

// Report is the verdicts of one run. Its JSON form ({"passed":…,
// "results":[…]}) is a stable schema that report writers consume.
type Report struct {
	Results []Result `json:"results"`
}

// Passed reports whether no check failed unexpectedly. Skipped checks and
// expected failures do not fail a report; scenarios that need a check to
// apply say so with MinOps or by looking at the Result.
func (r *Report) Passed() bool {
	for _, res := range r.Results {
		if res.Unexpected() {
			return false
		}
	}
	return true
}

// Failed returns the results that failed unexpectedly.
func (r *Report) Failed() []Result {
	var out []Result
	for _, res := range r.Results {
		if res.Unexpected() {
			out = append(out, res)
		}
	}
	return out
}

// Result returns the result with the given name.
func (r *Report) Result(name string) (Result, bool) {
	for _, res := range r.Results {
		if res.Name == name {
			return res, true
		}
	}
	return Result{}, false
}

// MarshalJSON adds the derived "passed" field so readers of the file need
// not recompute it.
func (r Report) MarshalJSON() ([]byte, error) {
	type plain Report
	results := r.Results
	if results == nil {
		results = []Result{}
	}
	return json.Marshal(struct {
		Passed bool `json:"passed"`
		plain
	}{r.Passed(), plain{Results: results}})
}

// evidence collects evidence lines: problems first, then notes, capped.
type evidence struct {
	problems []string
	notes    []string
}

func (e *evidence) problem(format string, args ...any) {
	e.problems = append(e.problems, fmt.Sprintf(format, args...))
}

func (e *evidence) note(format string, args ...any) {
	e.notes = append(e.notes, fmt.Sprintf(format, args...))
}

// lines returns at most DefaultMaxEvidence lines, the last one saying how
// many were left out.
func (e *evidence) lines() []string {
	all := append(append([]string{}, e.problems...), e.notes...)
	return capLines(all, DefaultMaxEvidence)
}

func capLines(all []string, max int) []string {
	if len(all) == 0 {
		return nil
	}
	if len(all) <= max {
		return all
	}
	out := append([]string{}, all[:max-1]...)
	return append(out, fmt.Sprintf("… and %d more", len(all)-(max-1)))
}
