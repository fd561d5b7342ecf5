package checker

import (
	"context"
	"fmt"

	"github.com/octoha/octoha/harness/history"
)

// MinOpsRule asks for at least N acknowledged ops of Kind ("" for any)
// before the first fault.
type MinOpsRule struct {
	Kind string `json:"kind,omitempty"`
	N    int    `json:"n"`
}

// Options configures Run and Evaluate.
type Options struct {
	Collect     CollectOptions
	Leftovers   LeftoverOptions
	Convergence ConvergenceOptions
	ErrorWindow ErrorWindowOptions
	// MinOps are anti-vacuity rules, each reported as its own check.
	MinOps []MinOpsRule
	// NodeOS maps node names to their operating system; when set, the
	// downloads check runs and names mixed operating systems as a cause.
	NodeOS map[string]string
	// Permissions, when set, runs the permissions check.
	Permissions *PermissionOptions
	// Tentacles, when set, runs the tentacles check.
	Tentacles *TentacleOptions
	// Tasks, when set, adds the task checks (tasks-*) to the report.
	Tasks *TaskOptions
	// LostRows adds the lost-rows check (acknowledged uploads whose row
	// is gone while their file stays; lostrows.go).
	LostRows bool
}

// Run collects a snapshot of the target and evaluates every check. It
// returns an error only when the snapshot cannot be taken at all (bad
// target, cancelled context); an unreachable cluster shows up as failed
// checks with evidence.
func Run(ctx context.Context, h *history.History, t Target, opts Options) (*Report, error) {
	s, err := Collect(ctx, t, h, opts.Collect)
	if err != nil {
		return nil, fmt.Errorf("run checks: %w", err)
	}
	return Evaluate(h, s, opts), nil
}

// Evaluate runs every check on a history and an already collected snapshot,
// in stages: the history's assumptions and the anti-vacuity rules, then
// the invariants (durability, leftovers), then the measurements
// (convergence, error window, phases). Checks that do not apply skip with a
// reason. Later stages run even when an earlier one failed, so a report
// shows everything; Report.Passed is false either way.
func Evaluate(h *history.History, s *Snapshot, opts Options) *Report {
	r := &Report{}
	r.Results = append(r.Results, Assumptions(h))
	for _, m := range opts.MinOps {
		r.Results = append(r.Results, MinOps(h, m.Kind, m.N))
	}
	r.Results = append(r.Results, Durability(h, s), NoLeftovers(s, opts.Leftovers))
	if opts.LostRows {
		r.Results = append(r.Results, LostRows(h, s))
	}
	if len(opts.NodeOS) > 0 {
		r.Results = append(r.Results, Downloads(h, s, opts.NodeOS))
	}
	if opts.Permissions != nil {
		r.Results = append(r.Results, Permissions(h, *opts.Permissions))
	}
	if opts.Tentacles != nil {
		r.Results = append(r.Results, Tentacles(h, *opts.Tentacles))
	}
	conv := opts.Convergence
	if s != nil {
		for _, n := range s.Nodes {
			conv.Nodes = append(conv.Nodes, n.Name)
		}
	}
	r.Results = append(r.Results, Convergence(h, conv), ErrorWindow(h, opts.ErrorWindow), Phases(h))
	if opts.Tasks != nil {
		r.Results = append(r.Results, Tasks(h, *opts.Tasks)...)
	}
	// What went wrong on the upload path, and whose setting it is: the
	// runner's scenarios and octoha check judge a history alike.
	r.Results = append(r.Results, DiagnoseUploads(h))
	return r
}
