// Package runner runs one scenario of the catalogue (harness/scenario) on
// any provider — local processes, docker containers, or a real cluster —
// and returns what happened. It never asserts: the Ginkgo suite in
// scenarios/, `octoha chaos` and `octoha certify` all turn its Results
// into their verdicts.
//
// The one promise it keeps above all: nothing is left injected. Every
// fault's recovery is registered on a Stack before the fault is injected,
// and the stack is unwound when the scenario ends, whether it passed, a
// check failed, a step panicked, it timed out, or the run was interrupted
// (its context cancelled by SIGINT/SIGTERM). A recovery that fails is
// reported in the Result, never hidden.
package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/octoha/octoha/harness/checker"
	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/cluster/external"
	"github.com/octoha/octoha/harness/history"
	"github.com/octoha/octoha/harness/nemesis"
	"github.com/octoha/octoha/harness/rundir"
	"github.com/octoha/octoha/harness/scenario"
)

// States of a Result, as reports use them.
const (
	Passed  = rundir.StatePassed
	Failed  = rundir.StateFailed
	Skipped = rundir.StateSkipped
)

// Options configures runs.
type Options struct {
	// Provider is local, docker or external (resolve "auto" first with
	// ResolveProvider).
	Provider string
	// External is the real cluster's spec (provider external).
	External *cluster.Spec
	// Binary is the octoha binary the local provider runs nodes with
	// (default: the running executable).
	Binary string
	// UploadSize sizes the uploads (default 1 GiB); Seed makes a run
	// replayable.
	UploadSize int64
	Seed       int64
	// OutDir receives scenarios/<slug>/ (history, results, scenario.json).
	OutDir string
	// Logger receives detailed logs (default: discarded); Console one line
	// per step, note and verdict (default: discarded); Progress upload
	// progress (default: none).
	Logger   *slog.Logger
	Console  io.Writer
	Progress io.Writer
	// AbortErrorRate, when positive, is the stop condition of certification
	// runs: when the share of requests through the load balancer that fail
	// outside fault windows exceeds it, the scenario stops and every fault
	// is undone.
	AbortErrorRate float64
	// RecoverTimeout bounds each recovery: a faulted node that does not
	// come back within it is reported (default 2 minutes).
	RecoverTimeout time.Duration
	// Confirm is asked before a scenario that may inject destructive faults
	// into an external cluster; a non-nil error skips the scenario with
	// that reason. Nil: allowed (the caller asked already, e.g. --yes).
	Confirm func(ctx context.Context, plan string) error
	// Replay is the command that replays a scenario (for reports).
	Replay func(sc scenario.Scenario) string
	// Provide, when set, brings clusters up instead of the named
	// provider (tests, and programs embedding the runner). The runner
	// still calls Down at the end.
	Provide func(ctx context.Context, spec cluster.Spec) (cluster.Cluster, error)
}

// Result is what one scenario did.
type Result struct {
	Title string `json:"title"`
	Slug  string `json:"slug"`
	// State is passed, failed or skipped; Reason says why it failed or was
	// skipped.
	State  string          `json:"state"`
	Reason string          `json:"reason,omitempty"`
	Dir    string          `json:"dir"`
	Checks *checker.Report `json:"checks,omitempty"`
	// Undone lists every recovery the run made at its end.
	Undone  []Undo           `json:"undone,omitempty"`
	Figures []checker.Figure `json:"figures,omitempty"`
	Notes   []string         `json:"notes,omitempty"`
	Start   time.Time        `json:"start"`
	End     time.Time        `json:"end"`
	// Aborted is set when a stop condition ended the scenario.
	Aborted string `json:"aborted,omitempty"`
}

// Duration is how long the scenario ran.
func (r *Result) Duration() time.Duration { return r.End.Sub(r.Start) }

// networks hands each cluster of a process its own loopback /24, so a
// cluster that is slow to release its addresses never collides with the
// next.
var networks atomic.Int32

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Console == nil {
		o.Console = io.Discard
	}
	if o.UploadSize <= 0 {
		o.UploadSize = 1 << 30
	}
	if o.RecoverTimeout <= 0 {
		o.RecoverTimeout = 2 * time.Minute
	}
	if o.OutDir == "" {
		o.OutDir = "."
	}
	return o
}

// ErrAborted is the cause of a scenario stopped by a stop condition.
var ErrAborted = errors.New("aborted by a stop condition")

// Run runs one scenario and returns its result; scenario.json is written
// into its directory whatever happens.
func Run(ctx context.Context, opts Options, sc scenario.Scenario) *Result {
	opts = opts.withDefaults()
	res := &Result{Title: sc.Title, Slug: sc.Slug(), Start: time.Now(), Dir: rundir.ScenarioDir(opts.OutDir, sc.Slug())}
	r := &run{opts: opts, sc: sc, res: res, log: opts.Logger.With("scenario", sc.Title)}
	defer r.finish()
	if err := os.RemoveAll(res.Dir); err != nil {
		r.fail(fmt.Errorf("clear the scenario directory: %w", err))
		return res
	}
	if err := os.MkdirAll(res.Dir, 0o755); err != nil {
		r.fail(fmt.Errorf("create the scenario directory: %w", err))
		return res
	}
	rec, err := history.Create(filepath.Join(res.Dir, rundir.HistoryFile))
	if err != nil {
		r.fail(err)
		return res
	}
	r.rec = rec
	rec.Meta(history.Meta{Scenario: sc.Title, Seed: opts.Seed})
	if err := sc.RunsOn(opts.Provider); err != nil {
		r.skip(err.Error())
		return res
	}
	if err := Preflight(ctx, opts, sc); err != nil {
		r.skip(err.Error())
		return res
	}
	r.execute(ctx)
	return res
}

// run is one scenario in progress; it implements scenario.Run.
type run struct {
	opts Options
	sc   scenario.Scenario
	res  *Result
	log  *slog.Logger
	rec  *history.Recorder
	c    cluster.Cluster
	spec cluster.Spec
	env  nemesis.Env

	stack *Stack

	mu      sync.Mutex
	results []string
	checks  *checker.Report
	lbNoted bool

	bgCtx    context.Context
	bgCancel context.CancelFunc
	bg       sync.WaitGroup
	bgErr    error
	bgMu     sync.Mutex
}

func (r *run) console(format string, args ...any) {
	fmt.Fprintf(r.opts.Console, "    "+format+"\n", args...)
}

func (r *run) skip(reason string) {
	r.res.State, r.res.Reason = Skipped, reason
}

func (r *run) fail(err error) {
	if r.res.State == Failed {
		r.res.Reason += "\n" + err.Error()
		return
	}
	r.res.State, r.res.Reason = Failed, err.Error()
}

// execute brings the cluster up, runs the steps and undoes everything.
func (r *run) execute(ctx context.Context) {
	r.stack = NewStack(r.log, r.opts.RecoverTimeout)
	defer func() {
		// However the steps ended: stop the load, then undo every fault
		// and take the cluster down, last registered first.
		r.StopLoad()
		if n := r.stack.Len(); n > 0 {
			r.console("undoing %d registered recover%s", n, plural(n, "y", "ies"))
		}
		r.res.Undone = r.stack.Unwind(ctx)
		var errs []string
		for _, u := range r.res.Undone {
			if u.Error != "" {
				errs = append(errs, u.What+": "+u.Error)
				r.console("UNDO FAILED %s: %s", u.What, u.Error)
			}
		}
		if len(errs) > 0 {
			r.fail(fmt.Errorf("recovery failed, the cluster may need a hand: %s", strings.Join(errs, "; ")))
		}
	}()
	c, err := r.up(ctx)
	if err != nil {
		if ctx.Err() != nil {
			r.fail(fmt.Errorf("interrupted while bringing the cluster up: %w", err))
		} else {
			r.fail(fmt.Errorf("bring the cluster up: %w", err))
		}
		return
	}
	r.c, r.spec = c, c.Spec()
	r.env = nemesis.Env{Cluster: c, Recorder: r.rec, Logger: r.log, Undo: r.stack}
	for _, comp := range c.Components() {
		if comp.Embedded {
			r.Note("EMBEDDED %s: %s", comp.Part, comp.Description)
		}
	}
	if err := cluster.CanAll(c, r.sc.Needs...); err != nil {
		r.skip(fmt.Sprintf("this cluster cannot run it: %v", err))
		return
	}
	if r.opts.Provider == cluster.ProviderExternal && r.opts.Confirm != nil {
		if d := r.sc.Destructive(); len(d) > 0 {
			if err := r.opts.Confirm(ctx, r.plan(d)); err != nil {
				r.skip(err.Error())
				return
			}
		}
	}
	if r.opts.Provider == cluster.ProviderExternal {
		// Certification leaves the staging feed as it found it.
		r.stack.Push("delete the packages this scenario uploaded", r.deleteUploadedPackages)
	}

	watchCtx, stopWatch := context.WithCancel(context.WithoutCancel(ctx))
	watched := make(chan struct{})
	go func() { defer close(watched); cluster.WatchLB(watchCtx, c, r.rec, 50*time.Millisecond) }()
	defer func() { stopWatch(); <-watched }()

	timeout := r.sc.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Minute
	}
	sctx, cancel := context.WithTimeoutCause(ctx, timeout, fmt.Errorf("the scenario did not finish within its %s timeout", timeout))
	defer cancel()
	if r.opts.AbortErrorRate > 0 {
		actx, abort := context.WithCancelCause(sctx)
		defer abort(nil)
		go r.watchdog(actx, abort)
		sctx = actx
	}
	err = r.steps(sctx)
	if cause := context.Cause(sctx); errors.Is(cause, ErrAborted) {
		r.res.Aborted = cause.Error()
		r.console("ABORTED: %v", cause)
	}
	if err == nil {
		err = r.backgroundErr()
	}
	switch {
	case err == nil:
		r.judge()
	case errors.Is(err, scenario.ErrSkip):
		r.skip(strings.TrimPrefix(err.Error(), scenario.ErrSkip.Error()+": "))
	case ctx.Err() != nil:
		r.fail(fmt.Errorf("interrupted (%v): %w", context.Cause(ctx), err))
	default:
		r.fail(err)
	}
}

// steps runs the scenario's choreography (its Steps, or the standard
// sequence from its data), turning a panic into an error.
func (r *run) steps(ctx context.Context) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic in the scenario's steps: %v\n%s", p, debug.Stack())
		}
	}()
	if r.sc.Sequenced() {
		return r.sequence(ctx)
	}
	return r.sc.Steps(ctx, r)
}

// judge decides the verdict from the declared checks and the last report.
func (r *run) judge() {
	r.mu.Lock()
	rep := r.checks
	r.mu.Unlock()
	if len(r.sc.Checks) > 0 && rep == nil {
		r.fail(errors.New("the scenario declares checks but never ran them"))
		return
	}
	if rep == nil {
		return
	}
	var errs []string
	declared := map[string]scenario.Check{}
	for _, ck := range r.sc.Checks {
		declared[ck.Name] = ck
		i := indexOf(rep, ck.Name)
		if i < 0 {
			errs = append(errs, fmt.Sprintf("check %s did not run", ck.Name))
			continue
		}
		res := &rep.Results[i]
		switch {
		case ck.ExpectFail && res.Status == checker.Fail:
			if ck.Finding != "" && res.Value(ck.Finding) <= 0 {
				errs = append(errs, fmt.Sprintf("check %s failed as expected but does not name %s: %s", ck.Name, ck.Finding, res.Summary))
				continue
			}
			res.ExpectedFailure = true
		case ck.ExpectFail:
			errs = append(errs, fmt.Sprintf("check %s was expected to fail (the harness must catch this cluster's fault) but it is %s: %s", ck.Name, res.Status, res.Summary))
		}
	}
	// A failing check nobody declared is still a failure: a passing
	// scenario shows no red mark.
	for _, res := range rep.Results {
		if res.Unexpected() {
			errs = append(errs, fmt.Sprintf("check %s failed: %s\n  %s", res.Name, res.Summary, strings.Join(res.Evidence, "\n  ")))
		}
	}
	for _, res := range rep.Results {
		mark := strings.ToUpper(string(res.Status))
		if res.ExpectedFailure {
			mark = "FAIL (expected)"
		}
		r.console("check %-16s %-15s %s", res.Name, mark, res.Summary)
	}
	if len(errs) > 0 {
		r.fail(errors.New(strings.Join(errs, "\n")))
	}
}

func indexOf(rep *checker.Report, name string) int {
	for i, res := range rep.Results {
		if res.Name == name {
			return i
		}
	}
	return -1
}

// plan describes what a destructive scenario may do to a real cluster:
// the targets and the exact hook commands.
func (r *run) plan(caps []cluster.Capability) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%q may inject %s into the cluster behind %s.\n", r.sc.Title, joinCaps(caps), r.c.URL())
	names := make([]string, 0, len(r.c.Nodes()))
	for _, n := range r.c.Nodes() {
		names = append(names, n.Name)
	}
	fmt.Fprintf(&b, "  possible targets: %s\n", strings.Join(names, ", "))
	if r.opts.External != nil && r.opts.External.External != nil {
		hooks := r.opts.External.External.Hooks
		for _, cp := range caps {
			for _, h := range external.Hooks(cp) {
				fmt.Fprintf(&b, "  hook %-11s %s\n", h+":", hooks[h])
			}
		}
	}
	return b.String()
}

func joinCaps(caps []cluster.Capability) string {
	s := make([]string, len(caps))
	for i, c := range caps {
		s[i] = string(c)
	}
	return strings.Join(s, ", ")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
