package node

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	octoclient "github.com/OctopusDeploy/go-octopusdeploy/v2/pkg/client"
	"github.com/OctopusDeploy/go-octopusdeploy/v2/pkg/tasks"

	"github.com/octoha/octoha/fakes/blob"
	"github.com/octoha/octoha/fakes/store"
	"github.com/octoha/octoha/octopusapi"
	"github.com/octoha/octoha/services/postgres"
	"github.com/octoha/octoha/services/samba"
)

// clusterNode is one in-process node of a task test cluster, running its
// heartbeat, leadership and queue loops.
type clusterNode struct {
	*Node
	srv    *httptest.Server
	db     *store.DB
	cancel context.CancelFunc
	done   chan struct{}
	killed bool
}

// kill stops the node as SIGKILL would: its loops end, nothing is written
// on the way out, and it stops answering.
func (c *clusterNode) kill() {
	if c.killed {
		return
	}
	c.killed = true
	c.cancel()
	<-c.done
	c.srv.Close()
}

type taskCluster struct {
	dsn      string
	dir      string
	tasklogs blob.Store
	nodes    []*clusterNode
}

// startTaskCluster starts n nodes on one database (dsn) and one directory
// of stores, with the timings of a fast test cluster; opt adjusts node i.
func startTaskCluster(t *testing.T, dsn string, n int, opt func(i int, c *Config)) *taskCluster {
	t.Helper()
	tc := &taskCluster{dsn: dsn, dir: t.TempDir()}
	tl, err := blob.Open(context.Background(), filepath.Join(tc.dir, "TaskLogs"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tl.Close() })
	tc.tasklogs = tl
	for i := 0; i < n; i++ {
		tc.nodes = append(tc.nodes, tc.start(t, i, opt))
	}
	return tc
}

func (tc *taskCluster) start(t *testing.T, i int, opt func(i int, c *Config)) *clusterNode {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, tc.dsn)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	open := func(name string) blob.Store {
		s, err := blob.Open(ctx, filepath.Join(tc.dir, name))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	cfg := Config{
		ID: fmt.Sprintf("OctopusServerNodes-%d", i+1), Name: fmt.Sprintf("Node%d", i+1),
		DB: db, Packages: open("Packages"), TaskLogs: open("TaskLogs"), Artifacts: open("Artifacts"),
		APIKeys: []string{testKey}, MaxConcurrentTasks: 5,
		Heartbeat: 100 * time.Millisecond, UnhealthyAfter: time.Second,
		TaskPoll: 100 * time.Millisecond, LeaderLease: 500 * time.Millisecond, OfflineAfter: time.Second,
		RetentionInterval: -1,
		Logger:            slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if testing.Verbose() && os.Getenv("OCTOHA_TEST_NODE_LOG") != "" {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if opt != nil {
		opt(i, &cfg)
	}
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	c := &clusterNode{Node: n, srv: httptest.NewServer(n), db: db, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		_ = n.Run(rctx)
	}()
	t.Cleanup(c.kill)
	return c
}

// do sends an authenticated request to node c and decodes a JSON answer
// into out (when not nil).
func (c *clusterNode) do(t *testing.T, method, path string, body any, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, c.srv.URL+path, rd)
	req.Header.Set(octopusapi.HeaderAPIKey, testKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %d %s: %v", method, path, resp.StatusCode, b, err)
		}
	}
	return resp.StatusCode
}

func (c *clusterNode) create(t *testing.T, kind string, args octopusapi.TaskArguments) octopusapi.Task {
	t.Helper()
	var task octopusapi.Task
	if code := c.do(t, http.MethodPost, octopusapi.TasksPath, octopusapi.TaskCreate{Name: kind, Description: "test", SpaceId: octopusapi.DefaultSpaceID, Arguments: args}, &task); code != http.StatusCreated {
		t.Fatalf("create %s: %d %+v", kind, code, task)
	}
	return task
}

func (c *clusterNode) task(t *testing.T, id string) octopusapi.Task {
	t.Helper()
	var task octopusapi.Task
	if code := c.do(t, http.MethodGet, octopusapi.TaskPath(id), nil, &task); code != http.StatusOK {
		t.Fatalf("get %s: %d", id, code)
	}
	return task
}

func (c *clusterNode) raw(t *testing.T, id string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, c.srv.URL+octopusapi.TaskRawPath(id), nil)
	req.Header.Set(octopusapi.HeaderAPIKey, testKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("raw log of %s: %d %s", id, resp.StatusCode, b)
	}
	return string(b)
}

func executions(t *testing.T, log string) []octopusapi.TaskExecution {
	t.Helper()
	ex, err := octopusapi.ParseTaskLog(strings.NewReader(log))
	if err != nil {
		t.Fatal(err)
	}
	return ex
}

// waitFor polls cond every 20ms until it holds or within passes.
func waitUntil(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("not within %v: %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

func (c *clusterNode) listTasks(t *testing.T, query string) octopusapi.Page[octopusapi.Task] {
	t.Helper()
	var p octopusapi.Page[octopusapi.Task]
	if code := c.do(t, http.MethodGet, query, nil, &p); code != http.StatusOK {
		t.Fatalf("list %s: %d", query, code)
	}
	return p
}

func sqliteDSN(t *testing.T) string {
	return "sqlite:" + filepath.Join(t.TempDir(), "octopus.db")
}

// postgresDSN starts a PostgreSQL server for one test (on 127.0.110.1,
// this package's task tests' network) and returns its DSN.
func postgresDSN(t *testing.T) string {
	t.Helper()
	return startPostgres(t).DSN()
}

func startPostgres(t *testing.T) *postgres.Server {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: no PostgreSQL")
	}
	if _, err := postgres.Available(); err != nil {
		t.Skipf("PostgreSQL not installed: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	srv, err := postgres.Start(ctx, postgres.Options{Host: "127.0.110.1"})
	if err != nil {
		t.Fatalf("start PostgreSQL: %v", err)
	}
	t.Cleanup(func() { _ = srv.Close(context.Background()) })
	return srv
}

// The task API on one node: create (and refusals), list, get, run to
// Success with its two log lines and an artifact, Fail, cancel.
func TestTasksAPI(t *testing.T) {
	tc := startTaskCluster(t, sqliteDSN(t), 1, nil)
	a := tc.nodes[0]

	var e octopusapi.Error
	if code := a.do(t, http.MethodPost, octopusapi.TasksPath, octopusapi.TaskCreate{Name: "Deploy"}, &e); code != http.StatusBadRequest || !strings.Contains(strings.Join(e.Errors, " "), `Unknown task name "Deploy"`) {
		t.Fatalf("unknown kind: %d %+v", code, e)
	}
	if code := a.do(t, http.MethodPost, octopusapi.TasksPath, octopusapi.TaskCreate{Name: octopusapi.TaskKindHealth, Arguments: octopusapi.TaskArguments{DurationMs: -1}}, &e); code != http.StatusBadRequest {
		t.Fatalf("negative duration: %d", code)
	}
	if code := a.do(t, http.MethodGet, octopusapi.TaskPath("ServerTasks-424242"), nil, &e); code != http.StatusNotFound {
		t.Fatalf("missing task: %d", code)
	}

	ok := a.create(t, octopusapi.TaskKindHealth, octopusapi.TaskArguments{DurationMs: 200, Artifact: true})
	if ok.State != octopusapi.TaskQueued || !strings.HasPrefix(ok.Id, "ServerTasks-") || ok.QueueTime == nil || ok.IsCompleted || ok.Links["Cancel"] == "" || ok.Arguments.DurationMs != 200 {
		t.Fatalf("created %+v", ok)
	}
	fail := a.create(t, octopusapi.TaskKindAdHocScript, octopusapi.TaskArguments{DurationMs: 10, Fail: true})
	long := a.create(t, octopusapi.TaskKindSystemIntegrityCheck, octopusapi.TaskArguments{DurationMs: 60_000})

	waitUntil(t, 5*time.Second, "the tasks to finish or run", func() bool {
		return a.task(t, ok.Id).IsCompleted && a.task(t, fail.Id).IsCompleted && a.task(t, long.Id).State == octopusapi.TaskExecuting
	})
	got := a.task(t, ok.Id)
	if got.State != octopusapi.TaskSuccess || !got.FinishedSuccessfully || got.ServerNode != "Node1" || got.StartTime == nil || got.CompletedTime == nil || got.Duration == "" {
		t.Fatalf("finished %+v", got)
	}
	ex := executions(t, a.raw(t, ok.Id))
	if len(ex) != 1 || ex[0].Node != "Node1" || ex[0].State != octopusapi.TaskSuccess || ex[0].End.Sub(ex[0].Start) < 200*time.Millisecond {
		t.Fatalf("executions %+v", ex)
	}
	if _, err := tc.tasklogs.Stat(context.Background(), octopusapi.TaskLogFile(ok.Id, "Node1", ex[0].Start)); err != nil {
		t.Fatalf("log file in TaskLogs: %v", err)
	}
	if _, err := os.Stat(filepath.Join(tc.dir, "Artifacts", filepath.FromSlash(octopusapi.TaskArtifactPath(ok.Id, "Node1")))); err != nil {
		t.Fatalf("artifact: %v", err)
	}
	got = a.task(t, fail.Id)
	if got.State != octopusapi.TaskFailed || got.FinishedSuccessfully || !strings.Contains(got.ErrorMessage, "Fail: true") {
		t.Fatalf("failed task %+v", got)
	}

	// Cancel an executing task (through the go-octopusdeploy route form):
	// Cancelling, then Canceled within a poll.
	var c octopusapi.Task
	if code := a.do(t, http.MethodPost, "/api/spaces/Spaces-1/tasks/"+long.Id+"/cancel", nil, &c); code != http.StatusOK || c.State != octopusapi.TaskCancelling {
		t.Fatalf("cancel: %d %+v", code, c)
	}
	took := waitUntil(t, 2*time.Second, "the cancelled task to end", func() bool { return a.task(t, long.Id).State == octopusapi.TaskCanceled })
	t.Logf("cancel honoured in %v (poll 100ms)", took)
	if ex := executions(t, a.raw(t, long.Id)); len(ex) != 1 || ex[0].State != octopusapi.TaskCanceled {
		t.Fatalf("cancelled executions %+v", ex)
	}

	// Cancel a queued task: drain the node so nothing starts.
	drain := true
	a.do(t, http.MethodPut, octopusapi.NodePath(a.cfg.ID), octopusapi.NodeUpdate{IsInMaintenanceMode: &drain}, nil)
	q := a.create(t, octopusapi.TaskKindRetention, octopusapi.TaskArguments{DurationMs: 10})
	if code := a.do(t, http.MethodPost, octopusapi.TaskCancelPath(q.Id), nil, &c); code != http.StatusOK || c.State != octopusapi.TaskCanceled || !c.IsCompleted {
		t.Fatalf("cancel queued: %d %+v", code, c)
	}
	if raw := a.raw(t, q.Id); !strings.Contains(raw, "canceled while queued") || len(executions(t, raw)) != 0 {
		t.Fatalf("queued-cancel log %q", raw)
	}

	// Lists: paging shape, states and node filters, ids.
	p := a.listTasks(t, octopusapi.TaskListQuery([]string{octopusapi.TaskSuccess, octopusapi.TaskFailed}, "Node1", nil, 0, 1))
	if p.TotalResults != 2 || len(p.Items) != 1 || p.ItemsPerPage != 1 || p.NumberOfPages != 2 || p.LastPageNumber != 1 || p.ItemType != "ServerTask" {
		t.Fatalf("page %+v", p)
	}
	if p := a.listTasks(t, octopusapi.TaskListQuery(nil, "", []string{ok.Id, q.Id}, 0, 0)); p.TotalResults != 2 {
		t.Fatalf("by ids %+v", p)
	}
	if p := a.listTasks(t, octopusapi.SpaceTasksPath("Spaces-1")+"?active=true"); p.TotalResults != 0 {
		t.Fatalf("active %+v", p)
	}
	var d octopusapi.TaskDetails
	if code := a.do(t, http.MethodGet, octopusapi.TaskDetailsPath(ok.Id), nil, &d); code != http.StatusOK || d.Task.Id != ok.Id || d.PhysicalLogSize == 0 {
		t.Fatalf("details %d %+v", code, d)
	}
}

// maxConcurrent returns the largest number of executions of node that
// overlap at any instant.
func maxConcurrent(ex []octopusapi.TaskExecution, node string) int {
	type ev struct {
		at time.Time
		d  int
	}
	var evs []ev
	for _, e := range ex {
		if e.Node == node && !e.End.IsZero() {
			evs = append(evs, ev{e.Start, 1}, ev{e.End, -1})
		}
	}
	for i := 1; i < len(evs); i++ {
		for j := i; j > 0 && (evs[j].at.Before(evs[j-1].at) || (evs[j].at.Equal(evs[j-1].at) && evs[j].d < evs[j-1].d)); j-- {
			evs[j], evs[j-1] = evs[j-1], evs[j]
		}
	}
	cur, best := 0, 0
	for _, e := range evs {
		cur += e.d
		best = max(best, cur)
	}
	return best
}

// Many short tasks on three nodes: every task runs exactly once, every node
// takes some, none runs more than its cap at once.
func TestTaskQueueExclusive(t *testing.T) {
	for name, dsn := range map[string]func(*testing.T) string{"sqlite": sqliteDSN, "postgres": postgresDSN} {
		t.Run(name, func(t *testing.T) {
			tc := startTaskCluster(t, dsn(t), 3, func(i int, c *Config) { c.MaxConcurrentTasks = 3; c.TaskPoll = 50 * time.Millisecond })
			a := tc.nodes[0]
			var ids []string
			for i := 0; i < 45; i++ {
				ids = append(ids, tc.nodes[i%3].create(t, octopusapi.TaskKindHealth, octopusapi.TaskArguments{DurationMs: 40}).Id)
			}
			waitUntil(t, 30*time.Second, "every task to finish", func() bool {
				return a.listTasks(t, octopusapi.TaskListQuery([]string{octopusapi.TaskSuccess}, "", nil, 0, 100)).TotalResults == len(ids)
			})
			var all []octopusapi.TaskExecution
			perNode := map[string]int{}
			for _, id := range ids {
				ex := executions(t, a.raw(t, id))
				if len(ex) != 1 {
					t.Errorf("%s ran %d times: %+v", id, len(ex), ex)
					continue
				}
				if srv := a.task(t, id).ServerNode; srv != ex[0].Node {
					t.Errorf("%s: ServerNode %s, log says %s", id, srv, ex[0].Node)
				}
				perNode[ex[0].Node]++
				all = append(all, ex...)
			}
			for _, n := range []string{"Node1", "Node2", "Node3"} {
				if perNode[n] == 0 {
					t.Errorf("%s ran no task: %v", n, perNode)
				}
				if m := maxConcurrent(all, n); m > 3 {
					t.Errorf("%s ran %d tasks at once (cap 3)", n, m)
				}
			}
			t.Logf("tasks per node: %v", perNode)
		})
	}
}

// The broken control (OctopusDeploy/Issues#8356): two nodes that claim
// without the lock run the same tasks at once, and the task logs show it.
func TestUnsafeTaskClaimRunsTasksTwice(t *testing.T) {
	tc := startTaskCluster(t, sqliteDSN(t), 2, func(i int, c *Config) {
		c.UnsafeTaskClaim = true
		c.TaskPoll = 200 * time.Millisecond
	})
	a := tc.nodes[0]
	var ids []string
	for i := 0; i < 6; i++ {
		ids = append(ids, a.create(t, octopusapi.TaskKindHealth, octopusapi.TaskArguments{DurationMs: 500}).Id)
	}
	waitUntil(t, 20*time.Second, "every task to finish", func() bool {
		for _, id := range ids {
			if !a.task(t, id).IsCompleted {
				return false
			}
		}
		return true
	})
	doubled := 0
	for _, id := range ids {
		ex := executions(t, a.raw(t, id))
		if len(ex) == 2 && ex[0].Node != ex[1].Node && ex[1].Start.Before(ex[0].End) {
			doubled++
		}
	}
	if doubled < len(ids)/2 {
		t.Fatalf("only %d of %d tasks ran on both unsafe nodes at once", doubled, len(ids))
	}
	t.Logf("%d of %d tasks ran twice at once", doubled, len(ids))
}

// The cap is read from the node's row at every poll: raising it through
// the API lets more tasks run at once; draining lets running tasks finish
// and starts nothing new.
func TestTaskCapAndDrainAtRunTime(t *testing.T) {
	tc := startTaskCluster(t, sqliteDSN(t), 1, func(i int, c *Config) { c.MaxConcurrentTasks = 2 })
	a := tc.nodes[0]
	// Long enough that none of the first tasks ends before the drain, even
	// on a loaded machine: one ending early would let a poll start a fifth
	// (legitimately, under the cap) and change the counts checked below.
	for i := 0; i < 8; i++ {
		a.create(t, octopusapi.TaskKindHealth, octopusapi.TaskArguments{DurationMs: 4000})
	}
	executing := func() int {
		return a.listTasks(t, octopusapi.TaskListQuery([]string{octopusapi.TaskExecuting}, "Node1", nil, 0, 100)).TotalResults
	}
	waitUntil(t, 2*time.Second, "two tasks running", func() bool { return executing() == 2 })
	var nodeRes octopusapi.Node
	a.do(t, http.MethodGet, octopusapi.NodePath(a.cfg.ID), nil, &nodeRes)
	if nodeRes.RunningTaskCount != 2 || nodeRes.Rank != octopusapi.RankLeader {
		t.Fatalf("node resource %+v", nodeRes)
	}
	for i := 0; i < 5; i++ {
		if n := executing(); n > 2 {
			t.Fatalf("%d tasks running with a cap of 2", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	four := 4
	a.do(t, http.MethodPut, octopusapi.NodePath(a.cfg.ID), octopusapi.NodeUpdate{MaxConcurrentTasks: &four}, nil)
	waitUntil(t, 3*time.Second, "four tasks running after the cap was raised", func() bool { return executing() == 4 })
	drain := true
	a.do(t, http.MethodPut, octopusapi.NodePath(a.cfg.ID), octopusapi.NodeUpdate{IsInMaintenanceMode: &drain}, nil)
	drainedAt := time.Now()
	waitUntil(t, 8*time.Second, "running tasks to finish while draining", func() bool { return executing() == 0 })
	time.Sleep(3 * a.cfg.TaskPoll) // polls that must start nothing
	p := a.listTasks(t, octopusapi.TaskListQuery(nil, "", nil, 0, 100))
	queued := 0
	for _, tk := range p.Items {
		switch {
		case tk.State == octopusapi.TaskQueued:
			queued++
		case tk.StartTime != nil && tk.StartTime.After(drainedAt.Add(a.cfg.TaskPoll)):
			t.Errorf("%s started at %v, after the drain at %v", tk.Id, tk.StartTime, drainedAt)
		}
	}
	if queued != 4 { // 8 - the 4 that ran
		t.Fatalf("%d tasks still queued after the drain, want 4", queued)
	}
}

// A node restarted after a kill fails the tasks its previous run held.
func TestRestartedNodeFailsItsLeftovers(t *testing.T) {
	tc := startTaskCluster(t, sqliteDSN(t), 1, nil)
	a := tc.nodes[0]
	id := a.create(t, octopusapi.TaskKindHealth, octopusapi.TaskArguments{DurationMs: 60_000}).Id
	waitUntil(t, 2*time.Second, "the task to run", func() bool { return a.task(t, id).State == octopusapi.TaskExecuting })
	a.kill()
	b := tc.start(t, 0, nil)
	waitUntil(t, 2*time.Second, "the restarted node to fail its leftover", func() bool { return b.task(t, id).State == octopusapi.TaskFailed })
	if got := b.task(t, id); !strings.Contains(got.ErrorMessage, "Node1 restarted") {
		t.Fatalf("%+v", got)
	}
	if ex := executions(t, b.raw(t, id)); len(ex) != 1 || !ex[0].End.IsZero() {
		t.Fatalf("executions %+v", ex)
	}
}

func leaders(tc *taskCluster) []*clusterNode {
	var out []*clusterNode
	for _, n := range tc.nodes {
		if !n.killed && n.IsLeader() {
			out = append(out, n)
		}
	}
	return out
}

// One leader at a time; a killed leader is replaced within the lease
// bound; the tasks of a killed node are Failed, naming it, once it has been
// offline for OfflineAfter; a drained leader hands over.
func TestLeaderFailoverAndDeadNodeTasks(t *testing.T) {
	for name, dsn := range map[string]func(*testing.T) string{"sqlite": sqliteDSN, "postgres": postgresDSN} {
		t.Run(name, func(t *testing.T) { testLeaderFailover(t, dsn(t)) })
	}
}

func testLeaderFailover(t *testing.T, dsn string) {
	// A 2 s lease (the fast cluster's is 500 ms): on a loaded machine a
	// leader whose renewals are late by half a second legitimately loses
	// the lease to another node, which changed the leader under the test
	// between choosing the one to kill and listing the nodes.
	tc := startTaskCluster(t, dsn, 3, func(_ int, c *Config) { c.LeaderLease = 2 * time.Second })
	waitUntil(t, 5*time.Second, "a leader", func() bool { return len(leaders(tc)) == 1 })
	// Sample for a while: never two leaders.
	for i := 0; i < 20; i++ {
		if l := leaders(tc); len(l) > 1 {
			t.Fatalf("two leaders: %s and %s", l[0].Name(), l[1].Name())
		}
		time.Sleep(25 * time.Millisecond)
	}
	old := leaders(tc)[0]
	var other *clusterNode
	for _, n := range tc.nodes {
		if n != old {
			other = n
			break
		}
	}
	// Long tasks filling every node's cap (5), so every node holds some
	// when the leader dies.
	var ids []string
	for i := 0; i < 15; i++ {
		ids = append(ids, other.create(t, octopusapi.TaskKindHealth, octopusapi.TaskArguments{DurationMs: 30_000}).Id)
	}
	waitUntil(t, 3*time.Second, "every task to run", func() bool {
		return other.listTasks(t, octopusapi.TaskListQuery([]string{octopusapi.TaskExecuting}, "", nil, 0, 0)).TotalResults == len(ids)
	})
	var nodes octopusapi.Page[octopusapi.Node]
	other.do(t, http.MethodGet, octopusapi.NodesPath, nil, &nodes)
	for _, n := range nodes.Items {
		if (n.Name == old.Name()) != (n.Rank == octopusapi.RankLeader) || n.RunningTaskCount == 0 {
			t.Fatalf("node list %+v", nodes.Items)
		}
	}

	old.kill()
	killedAt := time.Now()
	took := waitUntil(t, 6*time.Second, "a new leader", func() bool { return len(leaders(tc)) == 1 })
	// The takeover is judged on the nodes' own clocks, not on when this
	// test saw it: the old lease ran until oldUntil (its last renewal plus
	// the lease); a follower takes it on its first heartbeat at or after
	// that. Never before (two leaders), and within half a lease (a
	// follower waiting a whole extra lease fails); a heartbeat is 100 ms,
	// the rest is slack for heartbeats and database writes delayed on a
	// loaded machine.
	old.lead.mu.Lock()
	oldUntil := old.lead.until
	old.lead.mu.Unlock()
	nl := leaders(tc)[0]
	nl.lead.mu.Lock()
	since := nl.lead.since
	nl.lead.mu.Unlock()
	gap := since.Sub(oldUntil)
	t.Logf("new leader %s %v after the leader was killed, %v after its lease ran out (lease %v, heartbeat %v)", nl.Name(), took, gap, old.cfg.LeaderLease, old.cfg.Heartbeat)
	if gap < 0 {
		t.Errorf("%s became leader %v before %s's lease ran out", nl.Name(), -gap, old.Name())
	}
	if bound := old.cfg.LeaderLease / 2; gap > bound {
		t.Errorf("takeover came %v after the old lease ran out, bound %v", gap, bound)
	}
	waitUntil(t, 10*time.Second, "the dead node's tasks to be Failed", func() bool {
		return other.listTasks(t, octopusapi.TaskListQuery([]string{octopusapi.TaskExecuting, octopusapi.TaskCancelling}, old.Name(), nil, 0, 0)).TotalResults == 0
	})
	t.Logf("dead node's tasks Failed %v after the kill (offline after %v)", time.Since(killedAt), old.cfg.OfflineAfter)
	var offline octopusapi.Node
	other.do(t, http.MethodGet, octopusapi.NodePath(old.cfg.ID), nil, &offline)
	if !offline.IsOffline || offline.Rank != octopusapi.RankFollower || offline.LastSeen == nil {
		t.Fatalf("dead node's resource %+v", offline)
	}
	p := other.listTasks(t, octopusapi.TaskListQuery([]string{octopusapi.TaskFailed}, old.Name(), nil, 0, 0))
	if p.TotalResults == 0 {
		t.Fatal("no task of the dead node Failed")
	}
	for _, tk := range p.Items {
		if !strings.Contains(tk.ErrorMessage, "The server node "+old.Name()+" running this task went offline") {
			t.Errorf("%s: %q", tk.Id, tk.ErrorMessage)
		}
		// The leader marks the task Failed, then appends its line to the
		// task's log: a reader may see the state first, so wait (bounded)
		// for the line rather than reading once.
		raw := other.raw(t, tk.Id)
		for deadline := time.Now().Add(5 * time.Second); !strings.Contains(raw, "marked Failed by node") && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond) // poll interval of a real condition with a deadline
			raw = other.raw(t, tk.Id)
		}
		if !strings.Contains(raw, "marked Failed by node") {
			t.Errorf("%s log lacks the leader's line 5s after the task was Failed:\n%s", tk.Id, raw)
		}
		if d := tk.CompletedTime.Sub(*offline.LastSeen); d < old.cfg.OfflineAfter {
			t.Errorf("%s failed %v after its node was last seen, before the offline bound", tk.Id, d)
		}
	}
	// The other nodes' tasks are untouched.
	for _, id := range ids {
		tk := other.task(t, id)
		if tk.ServerNode != old.Name() && tk.State != octopusapi.TaskExecuting && tk.State != octopusapi.TaskQueued {
			t.Errorf("%s on live %s is %s", id, tk.ServerNode, tk.State)
		}
	}

	// Draining the leader hands leadership over.
	cur := leaders(tc)[0]
	drain := true
	cur.do(t, http.MethodPut, octopusapi.NodePath(cur.cfg.ID), octopusapi.NodeUpdate{IsInMaintenanceMode: &drain}, nil)
	took = waitUntil(t, 3*time.Second, "a leader other than the drained one", func() bool {
		l := leaders(tc)
		return len(l) == 1 && l[0] != cur
	})
	t.Logf("drained leader replaced in %v", took)
}

// go-octopusdeploy's task client (what the Octopus CLI and Terraform
// provider are built on) creates, lists, reads and cancels tasks on a fake
// node.
func TestOfficialGoClientTasks(t *testing.T) {
	tc := startTaskCluster(t, sqliteDSN(t), 1, nil)
	u, _ := url.Parse(tc.nodes[0].srv.URL)
	c, err := octoclient.NewClient(nil, u, testKey, "Spaces-1")
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	in := tasks.NewTask()
	in.Name, in.Description, in.SpaceID = octopusapi.TaskKindHealth, "from go-octopusdeploy", "Spaces-1"
	in.Arguments = map[string]any{"DurationMs": 60000}
	created, err := c.Tasks.Add(in)
	if err != nil {
		t.Fatalf("add: %v", err)
	}
	if created.GetID() == "" || created.State != octopusapi.TaskQueued || created.Arguments["DurationMs"] != float64(60000) {
		t.Fatalf("created %+v", created)
	}
	waitUntil(t, 2*time.Second, "the task to run", func() bool {
		got, err := c.Tasks.Get(tasks.TasksQuery{IDs: []string{created.GetID()}, States: []string{octopusapi.TaskExecuting}, Node: "Node1", Take: 10})
		return err == nil && len(got.Items) == 1 && got.Items[0].ServerNode == "Node1" && got.Items[0].StartTime != nil
	})
	canc, err := tasks.Cancel(c, "Spaces-1", created.GetID())
	if err != nil || canc.State != octopusapi.TaskCancelling {
		t.Fatalf("cancel: %+v %v", canc, err)
	}
	waitUntil(t, 2*time.Second, "the task to be Canceled", func() bool {
		got, err := c.Tasks.Get(tasks.TasksQuery{IDs: []string{created.GetID()}})
		return err == nil && len(got.Items) == 1 && got.Items[0].State == octopusapi.TaskCanceled &&
			*got.Items[0].IsCompleted && !*got.Items[0].FinishedSuccessfully
	})
	d, err := tasks.GetDetails(c, "Spaces-1", created.GetID())
	if err != nil || d.Task.GetID() != created.GetID() || d.PhysicalLogSize == 0 {
		t.Fatalf("details %+v %v", d, err)
	}
}

// Task logs and artifacts on an SMB share (as the docker provider and a
// real cluster keep them): two nodes' runs land in the share and the raw
// log reads back through either node.
func TestTaskLogsOnSMB(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: no Samba")
	}
	if _, err := samba.Available(); err != nil {
		t.Skipf("Samba not usable here: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	smb, err := samba.Start(ctx, samba.Options{Dir: t.TempDir(), Host: "127.0.110.2"})
	if err != nil {
		t.Fatalf("start Samba: %v", err)
	}
	t.Cleanup(func() { _ = smb.Close(context.Background()) })
	openSMB := func(share string) blob.Store {
		s, err := blob.Open(ctx, smb.URLWithoutPassword(share), blob.WithPassword(smb.Password()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	tc := startTaskCluster(t, sqliteDSN(t), 2, func(i int, c *Config) {
		c.TaskLogs, c.Artifacts = openSMB("TaskLogs"), openSMB("Artifacts")
		c.MaxConcurrentTasks = 1
	})
	a, b := tc.nodes[0], tc.nodes[1]
	var ids []string
	for range 4 {
		ids = append(ids, a.create(t, octopusapi.TaskKindAdHocScript, octopusapi.TaskArguments{DurationMs: 300, Artifact: true}).Id)
	}
	waitUntil(t, 10*time.Second, "every task to finish", func() bool {
		return b.listTasks(t, octopusapi.TaskListQuery([]string{octopusapi.TaskSuccess}, "", nil, 0, 0)).TotalResults == len(ids)
	})
	nodes := map[string]bool{}
	arts := openSMB("Artifacts")
	for _, id := range ids {
		ex := executions(t, b.raw(t, id))
		if len(ex) != 1 || ex[0].State != octopusapi.TaskSuccess {
			t.Fatalf("%s executions %+v", id, ex)
		}
		nodes[ex[0].Node] = true
		if _, err := arts.Stat(ctx, octopusapi.TaskArtifactPath(id, ex[0].Node)); err != nil {
			t.Errorf("artifact of %s: %v", id, err)
		}
	}
	if len(nodes) != 2 {
		t.Fatalf("with a cap of 1 each, both nodes should have run tasks: %v", nodes)
	}
	// Every log at once through both nodes, as a dashboard polling several
	// tasks does: each read sets up an SMB session of its own, and those
	// set-ups overlapping once answered 503.
	var failed []string
	var mu sync.Mutex
	for range 4 {
		var wg sync.WaitGroup
		for _, n := range tc.nodes {
			for _, id := range ids {
				wg.Go(func() {
					req, _ := http.NewRequestWithContext(ctx, http.MethodGet, n.srv.URL+octopusapi.TaskRawPath(id), nil)
					req.Header.Set(octopusapi.HeaderAPIKey, testKey)
					resp, err := http.DefaultClient.Do(req)
					msg := ""
					if err != nil {
						msg = err.Error()
					} else {
						b, _ := io.ReadAll(resp.Body)
						resp.Body.Close()
						if resp.StatusCode != http.StatusOK {
							msg = fmt.Sprintf("%d %s", resp.StatusCode, b)
						}
					}
					if msg != "" {
						mu.Lock()
						failed = append(failed, fmt.Sprintf("%s via %s: %s", id, n.Name(), msg))
						mu.Unlock()
					}
				})
			}
		}
		wg.Wait()
	}
	if len(failed) > 0 {
		t.Fatalf("%d of %d concurrent raw log reads failed, e.g. %s", len(failed), 4*len(tc.nodes)*len(ids), failed[0])
	}
}

// Octopus's distribution rule: a node takes tasks only while its load
// stays within the cluster's, so six long tasks on three nodes of cap 5
// run two on each, not five on whichever polled first.
func TestTasksSpreadOverNodes(t *testing.T) {
	tc := startTaskCluster(t, sqliteDSN(t), 3, nil)
	a := tc.nodes[0]
	for range 6 {
		a.create(t, octopusapi.TaskKindHealth, octopusapi.TaskArguments{DurationMs: 30_000})
	}
	waitUntil(t, 3*time.Second, "all six running", func() bool {
		return a.listTasks(t, octopusapi.TaskListQuery([]string{octopusapi.TaskExecuting}, "", nil, 0, 0)).TotalResults == 6
	})
	for _, n := range tc.nodes {
		if got := a.listTasks(t, octopusapi.TaskListQuery([]string{octopusapi.TaskExecuting}, n.Name(), nil, 0, 0)).TotalResults; got != 2 {
			t.Errorf("%s runs %d tasks, want 2", n.Name(), got)
		}
	}
}

// A database outage mid-queue (PostgreSQL paused for longer than
// OfflineAfter): runs that end during it are recorded once it is back (the
// node retries), and every task ends Success, run once, none failed as a
// dead node's.
func TestTasksSurviveDatabaseOutage(t *testing.T) {
	pg := startPostgres(t)
	tc := startTaskCluster(t, pg.DSN(), 3, nil)
	a := tc.nodes[0]
	var ids []string
	for range 12 {
		ids = append(ids, a.create(t, octopusapi.TaskKindHealth, octopusapi.TaskArguments{DurationMs: 1500}).Id)
	}
	waitUntil(t, 3*time.Second, "all twelve running", func() bool {
		return a.listTasks(t, octopusapi.TaskListQuery([]string{octopusapi.TaskExecuting}, "", nil, 0, 0)).TotalResults == 12
	})
	if err := pg.Pause(); err != nil {
		t.Fatal(err)
	}
	resumed := false
	t.Cleanup(func() {
		if !resumed {
			_ = pg.Resume()
		}
	})
	time.Sleep(3 * a.cfg.OfflineAfter) // the outage itself: no condition to wait for
	if err := pg.Resume(); err != nil {
		t.Fatal(err)
	}
	resumed = true
	waitUntil(t, 15*time.Second, "every task to end after the outage", func() bool {
		return a.listTasks(t, octopusapi.TaskListQuery([]string{octopusapi.TaskQueued, octopusapi.TaskExecuting, octopusapi.TaskCancelling}, "", nil, 0, 0)).TotalResults == 0
	})
	for _, id := range ids {
		tk := a.task(t, id)
		ex := executions(t, a.raw(t, id))
		if tk.State != octopusapi.TaskSuccess || len(ex) != 1 {
			t.Errorf("%s: %s %q, %d runs", id, tk.State, tk.ErrorMessage, len(ex))
		}
	}
}

// A leader judges other nodes only once its own database connection has
// been good for OfflineAfter: a node just back from a database outage (or
// just started) must not take the others' old LastSeen for death.
func TestLeaderWaitsBeforeJudgingNodes(t *testing.T) {
	dsn := sqliteDSN(t)
	db, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	// A node last seen an hour ago, holding a task.
	if err := db.Heartbeat(ctx, store.Node{ID: "OctopusServerNodes-9", Name: "Node9", LastSeen: time.Now().Add(-time.Hour), Version: "x"}); err != nil {
		t.Fatal(err)
	}
	tk, err := db.CreateTask(ctx, store.Task{SpaceID: octopusapi.DefaultSpaceID, Name: octopusapi.TaskKindHealth, Args: `{"DurationMs":60000}`})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := db.ClaimTask(ctx, tk.ID, "Node9", time.Now()); err != nil || !ok {
		t.Fatal(ok, err)
	}
	start := time.Now()
	tc := startTaskCluster(t, dsn, 1, nil)
	a := tc.nodes[0]
	waitUntil(t, 5*time.Second, "the dead node's task to be Failed", func() bool { return a.task(t, tk.ID).State == octopusapi.TaskFailed })
	got := a.task(t, tk.ID)
	if d := got.CompletedTime.Sub(start); d < a.cfg.OfflineAfter {
		t.Fatalf("failed %v after the leader started, before its connection had been good for %v", d, a.cfg.OfflineAfter)
	}
	if !strings.Contains(got.ErrorMessage, "Node9") {
		t.Fatalf("%+v", got)
	}
}
