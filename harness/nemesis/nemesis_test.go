package nemesis

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/history"
	"github.com/octoha/octoha/harness/lb"
	"github.com/octoha/octoha/octopusapi"
)

// fakeCluster records what the nemesis asked of it.
type fakeCluster struct {
	url   string
	mu    sync.Mutex
	calls []string
	fail  string
}

func (f *fakeCluster) Spec() cluster.Spec {
	s := cluster.Defaults()
	return s
}
func (f *fakeCluster) URL() string { return f.url }
func (f *fakeCluster) Nodes() []cluster.Node {
	return []cluster.Node{{ID: "OctopusServerNodes-1", Name: "Node1", URL: f.url}, {ID: "OctopusServerNodes-2", Name: "Node2", URL: f.url}}
}
func (f *fakeCluster) APIKey() string                                     { return "API-KEY" }
func (f *fakeCluster) LBStates(context.Context) ([]lb.ServerState, error) { return nil, nil }
func (f *fakeCluster) Components() []cluster.Component                    { return nil }
func (f *fakeCluster) Down(context.Context) error                         { return nil }
func (f *fakeCluster) Can(cp cluster.Capability) error {
	switch cp {
	case cluster.CapKill, cluster.CapPause, cluster.CapRestart, cluster.CapDrain:
		return nil
	}
	return errors.New("not in this fake")
}
func (f *fakeCluster) call(s string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, s)
	if s == f.fail {
		return errors.New("boom")
	}
	return nil
}
func (f *fakeCluster) KillNode(_ context.Context, n string) error   { return f.call("kill " + n) }
func (f *fakeCluster) PauseNode(_ context.Context, n string) error  { return f.call("pause " + n) }
func (f *fakeCluster) ResumeNode(_ context.Context, n string) error { return f.call("resume " + n) }
func (f *fakeCluster) StopNode(_ context.Context, n string) error   { return f.call("stop " + n) }
func (f *fakeCluster) StartNode(_ context.Context, n string) error  { return f.call("start " + n) }

func TestHoldRecordsFaultWindow(t *testing.T) {
	var buf bytes.Buffer
	rec := history.NewRecorder(&buf)
	fc := &fakeCluster{}
	env := Env{Cluster: fc, Recorder: rec}
	f, err := Hold(context.Background(), env, Kill, "Node2", 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(fc.calls, ","); got != "kill Node2,start Node2" {
		t.Fatalf("calls = %s", got)
	}
	if f.End.Sub(f.Start) < 50*time.Millisecond || f.Kind != KindKill || f.Target != "Node2" {
		t.Fatalf("fault = %+v", f)
	}
	h, err := history.Decode(&buf)
	if err != nil || len(h.Faults) != 1 || h.Faults[0].End.IsZero() {
		t.Fatalf("history faults = %+v (%v)", h.Faults, err)
	}

	// A failed recovery is an error and is recorded.
	fc.fail = "resume Node1"
	if _, err := Hold(context.Background(), env, Pause, "Node1", time.Millisecond); err == nil {
		t.Fatal("failed resume not reported")
	}
	h, _ = history.Decode(&buf)
	if h.Faults[len(h.Faults)-1].Error == "" {
		t.Fatal("failed recovery not recorded in the history")
	}
}

func TestAvailability(t *testing.T) {
	fc := &fakeCluster{}
	if err := DatabaseOutage.Available(fc); err == nil {
		t.Fatal("database outage offered on a cluster without a database controller")
	}
	if err := Partition.Available(fc); err == nil {
		t.Fatal("partition offered on a cluster that cannot partition")
	}
	if _, err := Inject(context.Background(), Env{Cluster: fc}, ShareOutage, ""); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	if _, err := Inject(context.Background(), Env{Cluster: fc}, Kill, ""); err == nil {
		t.Fatal("kill without a target accepted")
	}
}

func TestDrainGoesThroughTheAPI(t *testing.T) {
	var got []octopusapi.NodeUpdate
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPut || r.URL.Path != octopusapi.NodePath("OctopusServerNodes-2") || r.Header.Get(octopusapi.HeaderAPIKey) != "API-KEY" {
			http.Error(w, "unexpected", 400)
			return
		}
		var u octopusapi.NodeUpdate
		b, _ := io.ReadAll(r.Body)
		json.Unmarshal(b, &u)
		mu.Lock()
		got = append(got, u)
		mu.Unlock()
		w.Write([]byte("{}"))
	}))
	defer srv.Close()
	fc := &fakeCluster{url: srv.URL}
	if _, err := Hold(context.Background(), Env{Cluster: fc}, Drain, "Node2", time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !*got[0].IsInMaintenanceMode || *got[1].IsInMaintenanceMode {
		t.Fatalf("updates = %+v", got)
	}
	if err := SetMaintenance(context.Background(), Env{Cluster: fc}, "Node9", true); err == nil {
		t.Fatal("unknown node accepted")
	}
}

func TestPlanIsDeterministic(t *testing.T) {
	o := PlanOptions{Nodes: []string{"Node1", "Node2", "Node3"}, Faults: []string{KindKill, KindPause, KindDrain}, Count: 5}
	a, err := Plan(42, o)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Plan(42, o)
	c, _ := Plan(43, o)
	if a.String() != b.String() {
		t.Fatalf("same seed, different schedules:\n%s\n%s", a, b)
	}
	if a.String() == c.String() {
		t.Fatal("different seeds gave the same schedule")
	}
	for i := 1; i < len(a.Steps); i++ {
		prev := a.Steps[i-1]
		if a.Steps[i].At < prev.At+prev.Hold {
			t.Fatalf("overlapping steps: %s then %s", prev, a.Steps[i])
		}
	}
	if _, err := Plan(1, PlanOptions{Cluster: &fakeCluster{}, Faults: []string{KindDBOutage}}); err == nil {
		t.Fatal("planned an unavailable fault")
	}
}

func TestParseSchedule(t *testing.T) {
	s, err := ParseSchedule("2s kill Node2 for 3s; 10s db-outage for 5s")
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Steps) != 2 || s.Steps[0].Target != "Node2" || s.Steps[1].Fault != KindDBOutage || s.Duration() != 15*time.Second {
		t.Fatalf("parsed %+v", s)
	}
	back, err := ParseSchedule(s.String())
	if err != nil || back.String() != s.String() {
		t.Fatalf("round trip: %v %s", err, back)
	}
	for _, bad := range []string{"", "kill Node2", "2s explode Node1 for 1s", "2s kill for 1s", "x kill Node1 for 1s", "1s db-outage a b for 1s"} {
		if _, err := ParseSchedule(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestScheduleRunsInOrder(t *testing.T) {
	fc := &fakeCluster{}
	s, _ := ParseSchedule("0s kill Node1 for 10ms; 20ms pause Node2 for 10ms")
	start := time.Now()
	faults, err := s.Run(context.Background(), Env{Cluster: fc})
	if err != nil {
		t.Fatal(err)
	}
	if len(faults) != 2 || faults[1].Start.Sub(start) < 20*time.Millisecond {
		t.Fatalf("faults = %+v", faults)
	}
	if got := strings.Join(fc.calls, ","); got != "kill Node1,start Node1,pause Node2,resume Node2" {
		t.Fatalf("calls = %s", got)
	}
}

// undoRecorder is an Undoer that notes when a recovery was registered,
// relative to the cluster's calls.
type undoRecorder struct {
	fc    *fakeCluster
	at    []int // len(fc.calls) at each Push
	undos []func(context.Context) error
}

func (u *undoRecorder) Push(_ string, fn func(context.Context) error) {
	u.at = append(u.at, len(u.fc.calls))
	u.undos = append(u.undos, fn)
}

func TestRecoveryIsRegisteredBeforeInjection(t *testing.T) {
	fc := &fakeCluster{}
	u := &undoRecorder{fc: fc}
	env := Env{Cluster: fc, Undo: u}
	inj, err := Inject(context.Background(), env, Kill, "Node1")
	if err != nil {
		t.Fatal(err)
	}
	if len(u.at) != 1 || u.at[0] != 0 {
		t.Fatalf("recovery registered after %v cluster calls, want before the kill", u.at)
	}
	// The runner's unwind and the scenario may both recover: once only.
	if err := u.undos[0](context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := inj.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(fc.calls, ","); got != "kill Node1,start Node1" {
		t.Fatalf("calls = %s", got)
	}

	// An injection that fails is recovered at once, and reported.
	fc.calls, fc.fail = nil, "pause Node2"
	if _, err := Inject(context.Background(), env, Pause, "Node2"); err == nil {
		t.Fatal("failed injection not reported")
	}
	if got := strings.Join(fc.calls, ","); got != "pause Node2,resume Node2" {
		t.Fatalf("calls after a failed injection = %s", got)
	}
	// A node that is not in the cluster is refused before anything runs.
	fc.calls = nil
	if _, err := Inject(context.Background(), env, Kill, "Node9"); err == nil || len(fc.calls) != 0 {
		t.Fatalf("kill of an unknown node: %v, calls %v", err, fc.calls)
	}
}
