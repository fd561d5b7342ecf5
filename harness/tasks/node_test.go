package tasks

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/octoha/octoha/fakes/blob"
	"github.com/octoha/octoha/fakes/node"
	"github.com/octoha/octoha/fakes/store"
	"github.com/octoha/octoha/harness/checker"
	"github.com/octoha/octoha/harness/history"
)

// fakeCluster is fake nodes in this process on one SQLite database and
// one Packages directory (TaskLogs beside it), behind a round-robin proxy
// that skips stopped nodes: enough of a cluster to drive the real queue
// over HTTP without processes.
type fakeCluster struct {
	lb    *httptest.Server
	nodes []*fakeNode
	rr    atomic.Uint64
}

type fakeNode struct {
	name    string
	srv     *httptest.Server
	stop    context.CancelFunc
	stopped atomic.Bool
}

const (
	fakePoll    = 100 * time.Millisecond
	fakeOffline = 1500 * time.Millisecond
	fakeLease   = 3 * time.Second
)

func newFakeCluster(t *testing.T, n, taskCap int, unsafe bool) *fakeCluster {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	db, err := store.Open(ctx, "sqlite:"+filepath.Join(dir, "octopus.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	pkgs, err := blob.Open(ctx, filepath.Join(dir, "Packages"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pkgs.Close() })
	c := &fakeCluster{}
	for i := 1; i <= n; i++ {
		nd, err := node.New(node.Config{
			ID: "OctopusServerNodes-" + strconv.Itoa(i), Name: "Node" + strconv.Itoa(i), DB: db, Packages: pkgs,
			APIKeys: []string{testKey}, MaxConcurrentTasks: taskCap,
			Heartbeat: 100 * time.Millisecond, UnhealthyAfter: 500 * time.Millisecond,
			OfflineAfter: fakeOffline, TaskPoll: fakePoll, RetentionInterval: -1,
			UnsafeTaskClaim: unsafe, UnsafeClaimDelay: 50 * time.Millisecond,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
		if err != nil {
			t.Fatal(err)
		}
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); _ = nd.Run(runCtx) }()
		fn := &fakeNode{name: nd.Name(), srv: httptest.NewServer(nd)}
		fn.stop = func() { stop(); <-done }
		c.nodes = append(c.nodes, fn)
		t.Cleanup(func() { fn.kill() })
	}
	c.lb = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var up []*fakeNode
		for _, n := range c.nodes {
			if !n.stopped.Load() {
				up = append(up, n)
			}
		}
		if len(up) == 0 {
			http.Error(w, "no server", http.StatusServiceUnavailable)
			return
		}
		target, _ := url.Parse(up[int(c.rr.Add(1))%len(up)].srv.URL)
		httputil.NewSingleHostReverseProxy(target).ServeHTTP(w, r)
	}))
	t.Cleanup(c.lb.Close)
	return c
}

// kill stops a node at once: no more heartbeats, polls or answers.
func (n *fakeNode) kill() {
	if n.stopped.Swap(true) {
		return
	}
	n.srv.CloseClientConnections()
	n.srv.Close()
	n.stop()
}

func (c *fakeCluster) driver(t *testing.T) (*Driver, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "history.jsonl")
	rec, err := history.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rec.Close() })
	var nodes []Node
	for _, n := range c.nodes {
		nodes = append(nodes, Node{Name: n.name, URL: n.srv.URL})
	}
	d, err := New(Options{URL: c.lb.URL, APIKey: testKey, Recorder: rec, Nodes: nodes, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return d, path
}

func watch(t *testing.T, d *Driver) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { d.Watch(ctx, 50*time.Millisecond) })
	return func() { cancel(); wg.Wait() }
}

func verdicts(t *testing.T, path string, opts checker.TaskOptions) map[string]checker.Result {
	t.Helper()
	h, err := history.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]checker.Result{}
	for _, r := range checker.Tasks(h, opts) {
		out[r.Name] = r
		t.Logf("%-16s %-4s %s %v", r.Name, r.Status, r.Summary, r.Figures)
	}
	return out
}

func mustPass(t *testing.T, rs map[string]checker.Result, names ...string) {
	t.Helper()
	for _, n := range names {
		if r := rs[n]; r.Status != checker.Pass {
			t.Errorf("%s: %s %s\n%s", n, r.Status, r.Summary, strings.Join(r.Evidence, "\n"))
		}
	}
}

// The real queue of the fake nodes, driven over HTTP: tasks spread over
// the nodes within their caps, a cancel is honoured, one leader, and
// every check passes; then a node dies mid-run and its tasks end Failed
// naming it while a follower takes over.
func TestDriverOnFakeNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	c := newFakeCluster(t, 3, 2, false)
	d, path := c.driver(t)
	stop := watch(t, d)
	ctx := context.Background()
	ids, err := d.CreateMany(ctx, 12, 0, FakeTemplate(400*time.Millisecond))
	if err != nil || len(ids) != 12 {
		t.Fatalf("created %v: %v", ids, err)
	}
	if err := d.Cancel(ctx, ids[11]); err != nil {
		t.Fatal(err)
	}
	open, err := d.WaitTerminal(ctx, 20*time.Second, 50*time.Millisecond)
	if err != nil || len(open) > 0 {
		t.Fatalf("still open: %v (%v)", open, err)
	}
	leader := d.Leader()
	if leader == "" {
		t.Fatal("no leader seen")
	}
	stop()
	if err := d.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	rs := verdicts(t, path, checker.TaskOptions{Bound: 20 * time.Second, Poll: 2 * fakePoll})
	mustPass(t, rs, checker.CheckTasksTerminal, checker.CheckTasksOnce, checker.CheckTasksCap, checker.CheckTasksCancel, checker.CheckTasksLeader)

	// Kill the leader while it runs tasks.
	d2, path2 := c.driver(t)
	stop = watch(t, d2)
	if _, err := d2.CreateMany(ctx, 12, 0, FakeTemplate(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	var victim *fakeNode
	for _, n := range c.nodes {
		if n.name == leader {
			victim = n
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(d2.RunningOn(leader)) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%s never ran a task", leader)
		}
		time.Sleep(20 * time.Millisecond) // polling the driver's view under a deadline
	}
	killed := time.Now()
	victim.kill()
	appendFault(t, path2, history.Fault{ID: "kill-1", Kind: "kill", Target: leader, Start: killed})
	if _, err := d2.WaitTerminal(ctx, 30*time.Second, 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	d2.ObserveNodes(ctx)
	stop()
	if err := d2.Finish(ctx); err != nil {
		t.Logf("finish: %v", err)
	}
	// The killed node led: its tasks are failed by the next leader, once
	// its lease (3 s: the node's default) has run out.
	bound := max(fakeOffline, fakeLease) + 2*fakePoll + time.Second
	rs = verdicts(t, path2, checker.TaskOptions{Bound: 30 * time.Second, Poll: 2 * fakePoll, OfflineBound: bound, LeaderBound: bound})
	mustPass(t, rs, checker.CheckTasksTerminal, checker.CheckTasksOnce, checker.CheckTasksDeadNode, checker.CheckTasksLeader)
	t.Logf("FIGURES: dead node's tasks Failed after %.2fs, follower leads after %.2fs (offline-after %s, poll %s)",
		rs[checker.CheckTasksDeadNode].Value("dead-node-tasks-failed-after"), rs[checker.CheckTasksLeader].Value("leader-takeover"), fakeOffline, fakePoll)
}

// Nodes claiming without the lock run tasks twice at once, and tasks-once
// names the task and both nodes.
func TestDriverCatchesUnsafeClaimOnFakeNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	c := newFakeCluster(t, 3, 10, true)
	d, path := c.driver(t)
	stop := watch(t, d)
	ctx := context.Background()
	if _, err := d.CreateMany(ctx, 10, 0, FakeTemplate(300*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if _, err := d.WaitTerminal(ctx, 20*time.Second, 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	stop()
	if err := d.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	rs := verdicts(t, path, checker.TaskOptions{Bound: 20 * time.Second})
	r := rs[checker.CheckTasksOnce]
	if r.Status != checker.Fail || r.Value(checker.FindingDoubleExecution) == 0 {
		t.Fatalf("tasks-once did not catch the unsafe claim: %s %s", r.Status, r.Summary)
	}
	if !strings.Contains(r.Evidence[0], " at once: ") || !strings.Contains(r.Evidence[0], "ServerTasks-") {
		t.Errorf("evidence does not name the task and both nodes: %q", r.Evidence[0])
	}
	t.Logf("caught: %s", r.Evidence[0])
}

// appendFault adds a fault to a history file as the nemesis would have.
func appendFault(t *testing.T, path string, f history.Fault) {
	t.Helper()
	rec, err := history.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	rec.Fault(f)
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
}
