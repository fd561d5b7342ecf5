package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/octoha/octoha/harness/checker"
	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/history"
	"github.com/octoha/octoha/harness/lb"
	"github.com/octoha/octoha/harness/nemesis"
	"github.com/octoha/octoha/harness/rundir"
	"github.com/octoha/octoha/harness/scenario"
	"github.com/octoha/octoha/harness/traffic"
	"github.com/octoha/octoha/octopusapi"
)

var _ scenario.Run = (*run)(nil)

func (r *run) Cluster() cluster.Cluster { return r.c }
func (r *run) Spec() cluster.Spec       { return r.spec }
func (r *run) Seed() int64              { return r.opts.Seed }
func (r *run) UploadSize() int64        { return r.opts.UploadSize }
func (r *run) Env() nemesis.Env         { return r.env }

func (r *run) Step(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.console("· %s", msg)
	r.log.Info("step", "what", msg)
}

func (r *run) Note(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.mu.Lock()
	r.res.Notes = append(r.res.Notes, msg)
	r.mu.Unlock()
	r.console("note: %s", msg)
}

func (r *run) Figure(name string, value float64, unit string) {
	f := checker.Figure{Name: name, Value: value, Unit: unit}
	r.mu.Lock()
	r.res.Figures = append(r.res.Figures, f)
	r.mu.Unlock()
	r.log.Info("figure", "figure", f.String())
}

func (r *run) Can(cp cluster.Capability) error { return cluster.Can(r.c, cp) }

func (r *run) Inject(ctx context.Context, f nemesis.Fault, target string) (*nemesis.Injection, error) {
	return nemesis.Inject(ctx, r.env, f, target)
}

func (r *run) Hold(ctx context.Context, f nemesis.Fault, target string, d time.Duration) (history.Fault, error) {
	return nemesis.Hold(ctx, r.env, f, target, d)
}

// resultsFile creates a vegeta results file in the scenario directory.
func (r *run) resultsFile(name string) (*os.File, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	file := name + ".results.gob"
	f, err := os.Create(filepath.Join(r.res.Dir, file))
	if err != nil {
		return nil, fmt.Errorf("create results file: %w", err)
	}
	r.results = append(r.results, file)
	return f, nil
}

// background runs fn until StopLoad (or the scenario ends); its error
// fails the scenario.
func (r *run) background(fn func(ctx context.Context) error) {
	ctx := r.loadCtx()
	r.bg.Add(1)
	go func() {
		defer r.bg.Done()
		defer func() {
			if p := recover(); p != nil {
				r.setBgErr(fmt.Errorf("panic in background load: %v", p))
			}
		}()
		if err := fn(ctx); err != nil {
			r.setBgErr(err)
		}
	}()
}

func (r *run) setBgErr(err error) {
	r.bgMu.Lock()
	defer r.bgMu.Unlock()
	if r.bgErr == nil {
		r.bgErr = err
	}
}

func (r *run) backgroundErr() error {
	r.bgMu.Lock()
	defer r.bgMu.Unlock()
	return r.bgErr
}

func (r *run) StopLoad() {
	r.bgMu.Lock()
	cancel := r.bgCancel
	r.bgCancel, r.bgCtx = nil, nil
	r.bgMu.Unlock()
	if cancel != nil {
		cancel()
	}
	r.bg.Wait()
}

func (r *run) Attack(target string, rate int, opts ...func(*traffic.AttackOptions)) error {
	out, err := r.resultsFile("attack-" + target)
	if err != nil {
		return err
	}
	o := traffic.AttackOptions{
		URL: r.c.URL(), APIKey: r.c.APIKey(), Target: target, Rate: vegeta.Rate{Freq: rate, Per: time.Second},
		Timeout: 3 * time.Second, Recorder: r.rec, Results: out, Via: "lb", Logger: r.log,
	}
	for _, f := range opts {
		f(&o)
	}
	var st traffic.LoaderStats
	o.Loader = &st
	r.background(func(ctx context.Context) error {
		defer out.Close()
		if _, err := traffic.Attack(ctx, o); err != nil {
			return fmt.Errorf("API load (%s): %w", target, err)
		}
		r.loaderFigures("attack-"+target, st)
		return nil
	})
	return nil
}

func (r *run) UploadOptions(count, concurrency int, size int64) traffic.UploadOptions {
	slug := r.res.Slug
	return traffic.UploadOptions{
		URL: r.c.URL(), APIKey: r.c.APIKey(), Size: size, Count: count, Concurrency: concurrency,
		PackageIDPrefix: "Octoha-" + strings.Trim(slug[:min(60, len(slug))], "-"),
		Seed:            r.opts.Seed, Retries: 5, Backoff: 500 * time.Millisecond, StallTimeout: 20 * time.Second,
		Recorder: r.rec, Via: "lb", Logger: r.log, Progress: r.opts.Progress, ProgressInterval: 5 * time.Second,
	}
}

func (r *run) uploadResults() (*os.File, error) {
	r.mu.Lock()
	n := len(r.results)
	r.mu.Unlock()
	return r.resultsFile(fmt.Sprintf("upload-%d", n))
}

func (r *run) Upload(ctx context.Context, o traffic.UploadOptions) (*traffic.UploadSummary, error) {
	out, err := r.uploadResults()
	if err != nil {
		return nil, err
	}
	defer out.Close()
	o.Results = out
	sum, err := traffic.Upload(ctx, o)
	if err != nil {
		return nil, fmt.Errorf("run uploads: %w", err)
	}
	r.Figure("upload-throughput", sum.Throughput/1e6, "MB/s")
	r.loaderFigures("upload", sum.Loader)
	return sum, nil
}

// loaderFigures records what a load cost the harness machine, and whether
// a load with a schedule fell behind it, so a saturated loader shows in
// the summary next to the figures it may have distorted.
func (r *run) loaderFigures(load string, st traffic.LoaderStats) {
	r.Figure(load+"-loader-cpu-share", 100*st.CPUShare, "% of "+strconv.Itoa(st.CPUs)+" cores")
	if st.Scheduled {
		behind := 0.0
		if st.Behind {
			behind = 1
			r.Note("%s fell behind its schedule: %s", load, st)
		}
		r.Figure(load+"-behind-schedule", behind, "")
	}
}

func (r *run) UploadInBackground(o traffic.UploadOptions) <-chan scenario.UploadResult {
	ch := make(chan scenario.UploadResult, 1)
	out, err := r.uploadResults()
	if err != nil {
		ch <- scenario.UploadResult{Err: err}
		return ch
	}
	o.Results = out
	r.bg.Add(1)
	go func() {
		defer r.bg.Done()
		defer out.Close()
		// Uploads finish on their own and the steps wait for them; they
		// stop early only when the scenario itself is cancelled.
		sum, err := traffic.Upload(r.loadCtx(), o)
		if err != nil {
			err = fmt.Errorf("run uploads: %w", err)
		} else {
			r.Figure("upload-throughput", sum.Throughput/1e6, "MB/s")
			r.loaderFigures("upload", sum.Loader)
		}
		ch <- scenario.UploadResult{Summary: sum, Err: err}
	}()
	return ch
}

// loadCtx is the context of background load and uploads, created on first
// use and cancelled by StopLoad (also when the scenario ends, however).
func (r *run) loadCtx() context.Context {
	r.bgMu.Lock()
	defer r.bgMu.Unlock()
	if r.bgCancel == nil {
		r.bgCtx, r.bgCancel = context.WithCancel(context.Background())
	}
	return r.bgCtx
}

func (r *run) History() (*history.History, error) {
	h, err := history.Load(filepath.Join(r.res.Dir, rundir.HistoryFile))
	if err != nil {
		return nil, fmt.Errorf("read the history: %w", err)
	}
	return h, nil
}

func (r *run) WaitOps(ctx context.Context, kind string, n int) error {
	return scenario.Eventually(ctx, fmt.Sprintf("waiting for %d acknowledged %s ops before injecting faults", n, kind), 30*time.Second, 100*time.Millisecond, func() error {
		h, err := r.History()
		if err != nil {
			return err
		}
		count := 0
		for _, op := range h.Ops {
			if op.Kind == kind && op.Outcome == history.OK {
				count++
			}
		}
		if count < n {
			return fmt.Errorf("%d so far", count)
		}
		return nil
	})
}

// lbObservable reports whether the load balancer tells the harness each
// node's state.
func (r *run) lbObservable(ctx context.Context) bool {
	if cluster.Can(r.c, cluster.CapLBView) != nil {
		r.mu.Lock()
		first := !r.lbNoted
		r.lbNoted = true
		r.mu.Unlock()
		if first {
			r.Note("the load balancer's own view is not observable here: ejection and rejoin are judged from the requests it routes")
		}
		return false
	}
	return true
}

func (r *run) lbState(ctx context.Context, name string) string {
	states, err := r.c.LBStates(ctx)
	if err != nil {
		return "ERROR: " + err.Error()
	}
	for _, st := range states {
		if st.Name == name {
			return string(st.State)
		}
	}
	return "MISSING"
}

func (r *run) WaitLB(ctx context.Context, node, want string, within time.Duration) error {
	if !r.lbObservable(ctx) {
		// The balancer's contract is to have acted within the bound: let
		// the bound pass, and judge from the requests it routed (the
		// convergence check) whether it did.
		return scenario.Sleep(ctx, within)
	}
	return scenario.Eventually(ctx, "load balancer state of "+node, within, 20*time.Millisecond, func() error {
		st := r.lbState(ctx, node)
		if want == "OUT" && st != string(lb.StateUp) && !strings.HasPrefix(st, "ERROR") {
			return nil
		}
		if st != want {
			return fmt.Errorf("%s, want %s", st, want)
		}
		return nil
	})
}

func (r *run) NodeWithActiveUpload(ctx context.Context, within time.Duration) (string, error) {
	var found string
	reported := false
	client, err := apiClient(r.c, 2*time.Second)
	if err != nil {
		return "", err
	}
	err = scenario.Eventually(ctx, "a node starts receiving an upload", within, 20*time.Millisecond, func() error {
		for _, n := range r.c.Nodes() {
			active, known := activeUploads(ctx, client, n)
			reported = reported || known
			if active > 0 {
				found = n.Name
				return nil
			}
		}
		if !reported {
			return nil
		}
		return errors.New("none yet")
	})
	if err != nil {
		return "", err
	}
	if !reported {
		r.Note("the nodes do not report their uploads in progress: the faulted node was chosen without knowing whether it was receiving one")
	}
	return found, nil
}

// activeUploads reads a node's ActiveUploads (the fake's extension) with
// a client from apiClient; known is false when the node does not report
// it.
func activeUploads(ctx context.Context, client *http.Client, n cluster.Node) (active int, known bool) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.URL+octopusapi.NodeDetailsPath(n.ID), nil)
	if err != nil {
		return 0, false
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	var d struct{ ActiveUploads *int }
	if json.NewDecoder(resp.Body).Decode(&d) != nil || d.ActiveUploads == nil {
		return 0, false
	}
	return *d.ActiveUploads, true
}

// target describes the cluster for the checkers. Nodes the history shows
// under a fault that keeps them down, not recovered, are not expected to
// serve (checker.MarkFaultedDown: octoha check decides the same way).
func (r *run) target(h *history.History) checker.Target {
	t := checker.Target{LBURL: r.c.URL(), APIKey: r.c.APIKey()}
	for _, n := range r.c.Nodes() {
		t.Nodes = append(t.Nodes, checker.Endpoint{Name: n.Name, URL: n.URL, Live: true})
	}
	checker.MarkFaultedDown(h, t.Nodes)
	return t
}

// fileListing lists the Packages store when the provider can.
func (r *run) fileListing(ctx context.Context) (*checker.FileListing, error) {
	fl, ok := r.c.(cluster.FileLister)
	if !ok || cluster.Can(r.c, cluster.CapFileListing) != nil {
		return nil, nil
	}
	files, err := fl.PackageFiles(ctx)
	if err != nil {
		return nil, fmt.Errorf("list the Packages store: %w", err)
	}
	out := &checker.FileListing{Source: "Packages store of " + r.spec.Name}
	for _, f := range files {
		out.Files = append(out.Files, checker.FileInfo{Name: f.Name, Size: f.Size})
	}
	return out, nil
}

func (r *run) Check(ctx context.Context, opts checker.Options) (*checker.Report, error) {
	r.Step("checking the history against what the cluster serves")
	h, err := r.History()
	if err != nil {
		return nil, err
	}
	if opts.Collect.Files == nil {
		if opts.Collect.Files, err = r.fileListing(ctx); err != nil {
			return nil, err
		}
	}
	rep, err := checker.Run(ctx, h, r.target(h), opts)
	if err != nil {
		return nil, fmt.Errorf("collect the cluster's state: %w", err)
	}
	r.mu.Lock()
	r.checks = rep
	r.mu.Unlock()
	for _, res := range rep.Results {
		r.log.Info("check", "name", res.Name, "status", res.Status, "summary", res.Summary)
	}
	return rep, nil
}

func (r *run) ServesAgain(ctx context.Context, node string, after time.Time) error {
	return scenario.Eventually(ctx, node+" serves requests again", 10*time.Second, 100*time.Millisecond, func() error {
		h, err := r.History()
		if err != nil {
			return err
		}
		for _, op := range h.Ops {
			if op.Node == node && op.Start.After(after) && op.Outcome == history.OK {
				return nil
			}
		}
		return errors.New("no acknowledged request yet")
	})
}

func (r *run) NoTempFiles(ctx context.Context) error {
	if cluster.Can(r.c, cluster.CapFileListing) != nil {
		r.Note("the share is not listed here: temporary files are not checked")
		return nil
	}
	return scenario.Eventually(ctx, "no temporary or partial file left in the Packages store", 30*time.Second, 250*time.Millisecond, func() error {
		fl, err := r.fileListing(ctx)
		if err != nil || fl == nil {
			return err
		}
		var tmp []string
		for _, f := range fl.Files {
			if checker.IsTempFile(f.Name) {
				tmp = append(tmp, f.Name)
			}
		}
		if len(tmp) > 0 {
			return fmt.Errorf("still there: %s", strings.Join(tmp, ", "))
		}
		return nil
	})
}
