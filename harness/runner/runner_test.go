package runner

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/octoha/octoha/harness/checker"
	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/history"
	"github.com/octoha/octoha/harness/lb"
	"github.com/octoha/octoha/harness/nemesis"
	"github.com/octoha/octoha/harness/payload"
	"github.com/octoha/octoha/harness/scenario"
	"github.com/octoha/octoha/internal/proc"
	"github.com/octoha/octoha/reports"
)

// fakeCluster is a provider's cluster that records what was done to it.
// Its nodes' URLs answer nothing, so a node recovery always starts the
// node (nothing serves yet).
type fakeCluster struct {
	mu       sync.Mutex
	calls    []string
	failOn   map[string]error
	spec     cluster.Spec
	downs    int
	killed   map[string]bool
	canPause bool
}

func newFake(spec cluster.Spec) *fakeCluster {
	spec, _ = spec.Normalize()
	return &fakeCluster{spec: spec, failOn: map[string]error{}, killed: map[string]bool{}, canPause: true}
}

func (f *fakeCluster) Spec() cluster.Spec { return f.spec }
func (f *fakeCluster) URL() string        { return "http://127.0.0.1:1" }
func (f *fakeCluster) Nodes() []cluster.Node {
	var out []cluster.Node
	for i := range f.spec.Nodes {
		out = append(out, cluster.Node{ID: cluster.NodeID(i), Name: cluster.NodeName(i), URL: "http://127.0.0.1:1"})
	}
	return out
}
func (f *fakeCluster) APIKey() string                                     { return "API-TEST" }
func (f *fakeCluster) LBStates(context.Context) ([]lb.ServerState, error) { return nil, nil }
func (f *fakeCluster) Components() []cluster.Component                    { return nil }
func (f *fakeCluster) Down(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.downs++
	f.calls = append(f.calls, "down")
	return nil
}
func (f *fakeCluster) Can(cp cluster.Capability) error {
	switch cp {
	case cluster.CapKill, cluster.CapRestart, cluster.CapSimulated:
		return nil
	case cluster.CapPause:
		if f.canPause {
			return nil
		}
	}
	return errors.New("not in this fake")
}
func (f *fakeCluster) call(s string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, s)
	return f.failOn[s]
}
func (f *fakeCluster) KillNode(_ context.Context, n string) error   { return f.call("kill " + n) }
func (f *fakeCluster) PauseNode(_ context.Context, n string) error  { return f.call("pause " + n) }
func (f *fakeCluster) ResumeNode(_ context.Context, n string) error { return f.call("resume " + n) }
func (f *fakeCluster) StopNode(_ context.Context, n string) error   { return f.call("stop " + n) }
func (f *fakeCluster) StartNode(_ context.Context, n string) error  { return f.call("start " + n) }

func (f *fakeCluster) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// harness runs sc against a fresh fake and returns the result and fake.
func harness(t *testing.T, ctx context.Context, sc scenario.Scenario, tweak func(*Options, *fakeCluster)) (*Result, *fakeCluster) {
	return harnessOpts(t, ctx, sc, nil, tweak)
}

func harnessOpts(t *testing.T, ctx context.Context, sc scenario.Scenario, optTweak func(*Options), tweak func(*Options, *fakeCluster)) (*Result, *fakeCluster) {
	t.Helper()
	var fc *fakeCluster
	opts := Options{
		Provider: cluster.ProviderLocal, OutDir: t.TempDir(), Seed: 7, RecoverTimeout: 5 * time.Second,
		Provide: func(_ context.Context, spec cluster.Spec) (cluster.Cluster, error) {
			fc = newFake(spec)
			return fc, nil
		},
	}
	if tweak != nil {
		// The fake does not exist yet: tweak runs on it once it does.
		inner := opts.Provide
		opts.Provide = func(ctx context.Context, spec cluster.Spec) (cluster.Cluster, error) {
			c, err := inner(ctx, spec)
			tweak(&opts, fc)
			return c, err
		}
	}
	if optTweak != nil {
		optTweak(&opts)
	}
	res := Run(ctx, opts, sc)
	if fc == nil {
		t.Fatalf("the cluster was never brought up: %+v", res)
	}
	return res, fc
}

func killScenario(steps func(ctx context.Context, r scenario.Run) error) scenario.Scenario {
	return scenario.Scenario{
		Title: "Fake kill", Claim: "test", Needs: []cluster.Capability{cluster.CapKill},
		Shape: scenario.Shape{Nodes: 2}, Timeout: 30 * time.Second, Steps: steps,
	}
}

// wantUndone checks that the fault was recovered and the cluster torn
// down, in that order, and that the history closes the fault's window.
func wantUndone(t *testing.T, res *Result, fc *fakeCluster, recovery string) {
	t.Helper()
	calls := fc.Calls()
	ri, di := slices.Index(calls, recovery), slices.Index(calls, "down")
	if ri < 0 || di < 0 || ri > di {
		t.Fatalf("calls = %v: want %q before the teardown", calls, recovery)
	}
	h, err := history.Load(filepath.Join(res.Dir, reports.HistoryFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Faults) == 0 {
		t.Fatal("no fault in the history")
	}
	for _, f := range h.Faults {
		if f.End.IsZero() {
			t.Fatalf("fault %s on %s left open in the history", f.Kind, f.Target)
		}
	}
	var sc reports.Scenario
	b, err := os.ReadFile(filepath.Join(res.Dir, reports.ScenarioFile))
	if err != nil || json.Unmarshal(b, &sc) != nil {
		t.Fatalf("scenario.json: %v", err)
	}
	if sc.State != res.State || sc.Title != "Fake kill" {
		t.Fatalf("scenario.json = %+v, result %s", sc, res.State)
	}
}

func TestFaultUndoneAfterAFailedStep(t *testing.T) {
	res, fc := harness(t, context.Background(), killScenario(func(ctx context.Context, r scenario.Run) error {
		if _, err := r.Inject(ctx, nemesis.Kill, "Node2"); err != nil {
			return err
		}
		return errors.New("check durability failed: 1 lost")
	}), nil)
	if res.State != Failed || !strings.Contains(res.Reason, "1 lost") {
		t.Fatalf("result = %s: %s", res.State, res.Reason)
	}
	wantUndone(t, res, fc, "start Node2")
}

func TestFaultUndoneAfterAPanic(t *testing.T) {
	res, fc := harness(t, context.Background(), killScenario(func(ctx context.Context, r scenario.Run) error {
		if _, err := r.Inject(ctx, nemesis.Kill, "Node1"); err != nil {
			return err
		}
		panic("a bug in a scenario's steps")
	}), nil)
	if res.State != Failed || !strings.Contains(res.Reason, "panic") {
		t.Fatalf("result = %s: %s", res.State, res.Reason)
	}
	wantUndone(t, res, fc, "start Node1")
}

func TestFaultUndoneAfterCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	res, fc := harness(t, ctx, killScenario(func(ctx context.Context, r scenario.Run) error {
		if _, err := r.Inject(ctx, nemesis.Pause, "Node2"); err != nil {
			return err
		}
		cancel()
		return scenario.Sleep(ctx, time.Minute)
	}), nil)
	if res.State != Failed || !strings.Contains(res.Reason, "interrupted") {
		t.Fatalf("result = %s: %s", res.State, res.Reason)
	}
	wantUndone(t, res, fc, "resume Node2")
}

func TestFaultUndoneAfterTimeout(t *testing.T) {
	sc := killScenario(func(ctx context.Context, r scenario.Run) error {
		if _, err := r.Inject(ctx, nemesis.Kill, "Node2"); err != nil {
			return err
		}
		return scenario.Sleep(ctx, time.Minute)
	})
	sc.Timeout = 200 * time.Millisecond
	res, fc := harness(t, context.Background(), sc, nil)
	if res.State != Failed || !strings.Contains(res.Reason, "timeout") {
		t.Fatalf("result = %s: %s", res.State, res.Reason)
	}
	wantUndone(t, res, fc, "start Node2")
}

// The binaries cancel their context on SIGINT/SIGTERM; a real signal to
// this process must end the scenario the same way.
func TestFaultUndoneAfterSIGINT(t *testing.T) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, fc := harness(t, ctx, killScenario(func(ctx context.Context, r scenario.Run) error {
		if _, err := r.Inject(ctx, nemesis.Kill, "Node2"); err != nil {
			return err
		}
		if err := proc.SignalPID(os.Getpid(), syscall.SIGINT); err != nil {
			return err
		}
		return scenario.Sleep(ctx, time.Minute)
	}), nil)
	if res.State != Failed || !strings.Contains(res.Reason, "interrupted") {
		t.Fatalf("result = %s: %s", res.State, res.Reason)
	}
	wantUndone(t, res, fc, "start Node2")
}

func TestFailedRecoveryIsReported(t *testing.T) {
	res, fc := harness(t, context.Background(), killScenario(func(ctx context.Context, r scenario.Run) error {
		_, err := r.Inject(ctx, nemesis.Kill, "Node2")
		return err // the scenario itself passes
	}), func(_ *Options, fc *fakeCluster) { fc.failOn["start Node2"] = errors.New("hook start exited 1") })
	if res.State != Failed || !strings.Contains(res.Reason, "recovery failed") || !strings.Contains(res.Reason, "hook start exited 1") {
		t.Fatalf("result = %s: %s", res.State, res.Reason)
	}
	if len(res.Undone) == 0 || res.Undone[0].Error == "" {
		t.Fatalf("undone = %+v: the failed recovery is not in the result", res.Undone)
	}
	if fc.downs != 1 {
		t.Fatalf("the cluster was torn down %d times after a failed recovery, want 1", fc.downs)
	}
	b, _ := os.ReadFile(filepath.Join(res.Dir, reports.ScenarioFile))
	if !strings.Contains(string(b), "RECOVERY FAILED") {
		t.Fatal("scenario.json does not say the recovery failed")
	}
}

// A kill whose command fails half way is still recovered: the recovery
// was registered before the injection.
func TestHalfInjectedFaultIsRecovered(t *testing.T) {
	res, fc := harness(t, context.Background(), killScenario(func(ctx context.Context, r scenario.Run) error {
		_, err := r.Inject(ctx, nemesis.Kill, "Node2")
		return err
	}), func(_ *Options, fc *fakeCluster) { fc.failOn["kill Node2"] = errors.New("signal sent, wait failed") })
	if res.State != Failed || !strings.Contains(res.Reason, "signal sent") {
		t.Fatalf("result = %s: %s", res.State, res.Reason)
	}
	wantUndone(t, res, fc, "start Node2")
}

func TestMissingCapabilitySkipsWithTheReason(t *testing.T) {
	sc := killScenario(func(context.Context, scenario.Run) error { return errors.New("must not run") })
	sc.Needs = []cluster.Capability{cluster.CapPause}
	res, fc := harness(t, context.Background(), sc, func(_ *Options, fc *fakeCluster) { fc.canPause = false })
	if res.State != Skipped || !strings.Contains(res.Reason, "not in this fake") {
		t.Fatalf("result = %s: %s", res.State, res.Reason)
	}
	if fc.downs != 1 {
		t.Fatalf("a skipped scenario's cluster was torn down %d times, want 1", fc.downs)
	}
}

func TestUnknownCapabilityIsRefused(t *testing.T) {
	sc := killScenario(func(context.Context, scenario.Run) error { return errors.New("must not run") })
	sc.Needs = []cluster.Capability{"disk-fill"}
	res, _ := harness(t, context.Background(), sc, nil)
	if res.State != Skipped || !strings.Contains(res.Reason, "unknown capability") {
		t.Fatalf("result = %s: %s", res.State, res.Reason)
	}
}

// The stop condition: failed requests through the load balancer outside
// fault windows abort the scenario, and its faults are still undone.
func TestStopConditionAborts(t *testing.T) {
	sc := killScenario(func(ctx context.Context, r scenario.Run) error {
		if _, err := r.Inject(ctx, nemesis.Kill, "Node2"); err != nil {
			return err
		}
		rec := r.Env().Recorder
		before := time.Now().Add(-time.Hour) // outside the fault's window
		for i := range 100 {
			out, status := history.OK, 200
			if i%5 == 0 {
				out, status = history.Failed, 502
			}
			rec.Op(history.Op{Kind: "ping", Via: "lb", Start: before, End: before, Outcome: out, Status: status})
		}
		return scenario.Sleep(ctx, 20*time.Second)
	})
	res, fc := harnessOpts(t, context.Background(), sc, func(o *Options) { o.AbortErrorRate = 0.05 }, nil)
	if res.State != Failed || res.Aborted == "" || !strings.Contains(res.Aborted, "20.0% of 100") {
		t.Fatalf("result = %s (aborted %q): %s", res.State, res.Aborted, res.Reason)
	}
	wantUndone(t, res, fc, "start Node2")
}

// judge turns declared checks into the verdict: an expected failure is a
// pass shown as such; an expected failure that passes, or any other
// failure, fails the scenario.
func TestJudgeDeclaredChecks(t *testing.T) {
	report := func(st ...checker.Status) *checker.Report {
		rep := &checker.Report{}
		for i, s := range st {
			rep.Results = append(rep.Results, checker.Result{Name: []string{"durability", "convergence", "phases"}[i], Status: s, Summary: string(s)})
		}
		return rep
	}
	cases := []struct {
		name   string
		checks []scenario.Check
		rep    *checker.Report
		state  string
		expect bool
	}{
		{"all pass", []scenario.Check{{Name: "durability"}}, report(checker.Pass, checker.Pass), Passed, false},
		{"expected failure", []scenario.Check{{Name: "durability", ExpectFail: true}}, report(checker.Fail, checker.Pass), Passed, true},
		{"expected failure passed", []scenario.Check{{Name: "durability", ExpectFail: true}}, report(checker.Pass), Failed, false},
		{"undeclared failure", []scenario.Check{{Name: "durability"}}, report(checker.Pass, checker.Fail), Failed, false},
		{"missing check", []scenario.Check{{Name: "phases"}}, report(checker.Pass), Failed, false},
		{"finding not named", []scenario.Check{{Name: "durability", ExpectFail: true, Finding: "body-limit"}}, report(checker.Fail), Failed, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := &run{sc: scenario.Scenario{Checks: tc.checks}, res: &Result{}, checks: tc.rep, opts: Options{}.withDefaults()}
			r.judge()
			if r.res.State == "" {
				r.res.State = Passed
			}
			if r.res.State != tc.state {
				t.Fatalf("state = %s (%s), want %s", r.res.State, r.res.Reason, tc.state)
			}
			if got := tc.rep.Results[0].ExpectedFailure; got != tc.expect {
				t.Fatalf("expected failure flag = %v, want %v", got, tc.expect)
			}
		})
	}
}

func TestStackUnwindsLastFirstAndBoundsEachRecovery(t *testing.T) {
	s := NewStack(nil, 50*time.Millisecond)
	var order []string
	s.Push("first", func(context.Context) error { order = append(order, "first"); return nil })
	s.Push("stuck", func(ctx context.Context) error { <-ctx.Done(); order = append(order, "stuck"); return ctx.Err() })
	s.Push("last", func(context.Context) error { order = append(order, "last"); return nil })
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // an interrupted run is still undone
	done := s.Unwind(ctx)
	if strings.Join(order, ",") != "last,stuck,first" {
		t.Fatalf("order = %v", order)
	}
	if done[1].Error == "" || !strings.Contains(done[1].Error, "not done within") {
		t.Fatalf("stuck recovery = %+v", done[1])
	}
	if s.Len() != 0 {
		t.Fatal("stack not empty")
	}
}

func TestSizeArgRoundTrips(t *testing.T) {
	for _, n := range []int64{1 << 30, 256 << 20, 16 << 20, 1536 << 20, 1000, 3 << 10, 1} {
		s := SizeArg(n)
		back, err := payload.ParseSize(s)
		if err != nil || back != n || strings.Contains(s, " ") {
			t.Errorf("SizeArg(%d) = %q → %d, %v", n, s, back, err)
		}
	}
	if SizeArg(1<<30) != "1GiB" || SizeArg(16<<20) != "16MiB" {
		t.Errorf("SizeArg: %s, %s", SizeArg(1<<30), SizeArg(16<<20))
	}
}
