package tasks

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/octoha/octoha/harness/checker"
	"github.com/octoha/octoha/harness/history"
	"github.com/octoha/octoha/octopusapi"
)

const testKey = "API-TASKSTEST0000000000000000"

// queue is an in-process stand-in for a cluster's task API: tasks start
// on Node1 when first listed and succeed when listed again; a cancelled
// task ends Canceled. double makes every task run on Node1 and Node2 at
// once (the broken queue of OctopusDeploy/Issues#8356).
type queue struct {
	mu     sync.Mutex
	n      int
	tasks  map[string]*octopusapi.Task
	logs   map[string]*bytes.Buffer
	cap    int
	keys   []string // API keys seen
	double bool
}

func newQueue() *queue {
	return &queue{tasks: map[string]*octopusapi.Task{}, logs: map[string]*bytes.Buffer{}, cap: 5}
}

func (q *queue) handler(node string) http.Handler {
	mux := http.NewServeMux()
	js := func(w http.ResponseWriter, code int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(v)
	}
	mux.HandleFunc("POST /api/{space}/tasks", func(w http.ResponseWriter, r *http.Request) {
		var c octopusapi.TaskCreate
		if err := json.NewDecoder(r.Body).Decode(&c); err != nil || !octopusapi.ValidTaskKind(c.Name) {
			js(w, 400, octopusapi.Error{ErrorMessage: "bad task"})
			return
		}
		q.mu.Lock()
		q.n++
		now := time.Now()
		t := &octopusapi.Task{Id: fmt.Sprintf("ServerTasks-%d", q.n), Name: c.Name, State: octopusapi.TaskQueued, QueueTime: &now, Arguments: c.Arguments}
		q.tasks[t.Id] = t
		q.logs[t.Id] = &bytes.Buffer{}
		cp := *t
		q.mu.Unlock()
		js(w, 201, cp)
	})
	mux.HandleFunc("GET /api/tasks", func(w http.ResponseWriter, r *http.Request) {
		ids := strings.Split(r.URL.Query().Get("ids"), ",")
		q.mu.Lock()
		var items []octopusapi.Task
		for _, id := range ids {
			if t, ok := q.tasks[id]; ok {
				q.advance(t)
				items = append(items, *t)
			}
		}
		q.mu.Unlock()
		js(w, 200, octopusapi.NewPage("Task", items, len(items), 0, len(items), "/api/tasks"))
	})
	mux.HandleFunc("GET /api/tasks/{id}", func(w http.ResponseWriter, r *http.Request) {
		q.mu.Lock()
		defer q.mu.Unlock()
		t, ok := q.tasks[r.PathValue("id")]
		if !ok {
			js(w, 404, octopusapi.Error{ErrorMessage: "not found"})
			return
		}
		js(w, 200, *t)
	})
	mux.HandleFunc("GET /api/tasks/{id}/raw", func(w http.ResponseWriter, r *http.Request) {
		q.mu.Lock()
		defer q.mu.Unlock()
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write(q.logs[r.PathValue("id")].Bytes())
	})
	mux.HandleFunc("POST /api/tasks/{id}/cancel", func(w http.ResponseWriter, r *http.Request) {
		q.mu.Lock()
		defer q.mu.Unlock()
		t := q.tasks[r.PathValue("id")]
		if !octopusapi.TaskTerminal(t.State) {
			now := time.Now()
			if t.State == octopusapi.TaskExecuting {
				fmt.Fprintln(q.logs[t.Id], octopusapi.TaskFinishedLine(t.Id, t.ServerNode, now, octopusapi.TaskCanceled))
			}
			t.State, t.CompletedTime = octopusapi.TaskCanceled, &now
		}
		js(w, 200, *t)
	})
	mux.HandleFunc("GET /api/octopusservernodes/summary", func(w http.ResponseWriter, r *http.Request) {
		q.mu.Lock()
		defer q.mu.Unlock()
		running := 0
		for _, t := range q.tasks {
			if octopusapi.TaskActive(t.State) {
				running++
			}
		}
		js(w, 200, octopusapi.NodeSummary{Nodes: []octopusapi.Node{
			{Id: "OctopusServerNodes-1", Name: "Node1", Rank: octopusapi.RankLeader, MaxConcurrentTasks: q.cap, RunningTaskCount: running},
			{Id: "OctopusServerNodes-2", Name: "Node2", Rank: octopusapi.RankFollower, MaxConcurrentTasks: 5},
		}})
	})
	mux.HandleFunc("PUT /api/octopusservernodes/{id}", func(w http.ResponseWriter, r *http.Request) {
		var u octopusapi.NodeUpdate
		_ = json.NewDecoder(r.Body).Decode(&u)
		q.mu.Lock()
		defer q.mu.Unlock()
		if u.Id != "OctopusServerNodes-1" || u.MaxConcurrentTasks == nil {
			js(w, 400, octopusapi.Error{ErrorMessage: "bad update"})
			return
		}
		q.cap = *u.MaxConcurrentTasks
		js(w, 200, octopusapi.Node{Id: u.Id, Name: "Node1", MaxConcurrentTasks: q.cap})
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q.mu.Lock()
		q.keys = append(q.keys, r.Header.Get(octopusapi.HeaderAPIKey))
		q.mu.Unlock()
		w.Header().Set(octopusapi.HeaderNode, node)
		mux.ServeHTTP(w, r)
	})
}

// advance moves a listed task one step: Queued → Executing → Success.
func (q *queue) advance(t *octopusapi.Task) {
	now := time.Now()
	switch t.State {
	case octopusapi.TaskQueued:
		t.State, t.ServerNode, t.StartTime = octopusapi.TaskExecuting, "Node1", &now
		fmt.Fprintln(q.logs[t.Id], octopusapi.TaskStartedLine(t.Id, "Node1", now))
		if q.double {
			fmt.Fprintln(q.logs[t.Id], octopusapi.TaskStartedLine(t.Id, "Node2", now.Add(time.Millisecond)))
		}
	case octopusapi.TaskExecuting:
		t.State, t.CompletedTime = octopusapi.TaskSuccess, &now
		fmt.Fprintln(q.logs[t.Id], octopusapi.TaskFinishedLine(t.Id, "Node1", now, octopusapi.TaskSuccess))
		if q.double {
			fmt.Fprintln(q.logs[t.Id], octopusapi.TaskFinishedLine(t.Id, "Node2", now.Add(time.Millisecond), octopusapi.TaskSuccess))
		}
	}
}

func start(t *testing.T, q *queue) (*Driver, string) {
	t.Helper()
	lb := httptest.NewServer(q.handler("Node1"))
	n1 := httptest.NewServer(q.handler("Node1"))
	n2 := httptest.NewServer(q.handler("Node2"))
	t.Cleanup(func() { lb.Close(); n1.Close(); n2.Close() })
	path := filepath.Join(t.TempDir(), "history.jsonl")
	rec, err := history.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rec.Close() })
	d, err := New(Options{URL: lb.URL, APIKey: testKey, Recorder: rec, Nodes: []Node{{"Node1", n1.URL}, {"Node2", n2.URL}}})
	if err != nil {
		t.Fatal(err)
	}
	return d, path
}

func TestDriverRecordsATaskRunThatTheCheckersPass(t *testing.T) {
	q := newQueue()
	d, path := start(t, q)
	ctx := context.Background()
	ids, err := d.CreateMany(ctx, 4, 200, FakeTemplate(100*time.Millisecond))
	if err != nil || len(ids) != 4 {
		t.Fatalf("CreateMany = %v, %v", ids, err)
	}
	if err := d.Cancel(ctx, ids[3]); err != nil {
		t.Fatal(err)
	}
	d.ObserveNodes(ctx)
	if got := d.Leader(); got != "Node1" {
		t.Errorf("Leader = %q, want Node1", got)
	}
	if err := d.SetCap(ctx, "Node1", 7); err != nil {
		t.Fatal(err)
	}
	open, err := d.WaitTerminal(ctx, 5*time.Second, 10*time.Millisecond)
	if err != nil || len(open) != 0 {
		t.Fatalf("WaitTerminal = %v, %v", open, err)
	}
	if err := d.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	if c := d.Counts(); c[history.TaskSuccess] != 3 || c[history.TaskCanceled] != 1 {
		t.Errorf("counts = %v", c)
	}
	h, err := history.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, o := range h.Ops {
		kinds[o.Kind]++
		if o.Start.IsZero() || o.End.Before(o.Start) {
			t.Errorf("op %d %s has bad times %v–%v", o.Seq, o.Kind, o.Start, o.End)
		}
	}
	for _, k := range []string{history.KindTaskCreate, history.KindTaskCancel, history.KindTaskPoll, history.KindTaskFinal, history.KindTaskLog, history.KindTaskNodes, history.KindTaskCap} {
		if kinds[k] == 0 {
			t.Errorf("no %s op recorded (%v)", k, kinds)
		}
	}
	for _, r := range checker.Tasks(h, checker.TaskOptions{Bound: 10 * time.Second}) {
		if r.Status == checker.Fail {
			t.Errorf("%s failed: %s\n%s", r.Name, r.Summary, strings.Join(r.Evidence, "\n"))
		}
	}
	once := checker.TasksOnce(h, checker.NewTaskModel(h))
	if once.Status != checker.Pass || once.Value("logs-with-executions") != 3 {
		t.Errorf("tasks-once: %s %s", once.Status, once.Summary)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, k := range q.keys {
		if k != testKey {
			t.Fatalf("a request carried key %q", k)
		}
	}
	raw, _ := json.Marshal(h)
	if bytes.Contains(raw, []byte(testKey)) {
		t.Fatal("the API key is in the history")
	}
}

func TestDriverHistoryShowsDoubleExecution(t *testing.T) {
	q := newQueue()
	q.double = true
	d, path := start(t, q)
	ctx := context.Background()
	if _, err := d.CreateMany(ctx, 2, 0, FakeTemplate(time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if _, err := d.WaitTerminal(ctx, 5*time.Second, 10*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := d.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	h, err := history.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	r := checker.TasksOnce(h, checker.NewTaskModel(h))
	if r.Status != checker.Fail || r.Value(checker.FindingDoubleExecution) != 2 {
		t.Fatalf("tasks-once = %s %s", r.Status, r.Summary)
	}
	if !strings.Contains(strings.Join(r.Evidence, "\n"), "ServerTasks-1 ran on Node1 and Node2 at once") {
		t.Errorf("evidence does not name the task and both nodes:\n%s", strings.Join(r.Evidence, "\n"))
	}
}

func TestNewRefusesBadOptions(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Error("no URL accepted")
	}
	if _, err := New(Options{URL: "http://127.0.0.1:1", Nodes: []Node{{Name: "Node1"}}}); err == nil {
		t.Error("a node without a URL accepted")
	}
	if _, err := New(Options{URL: "ftp://x"}); err == nil {
		t.Error("an ftp URL accepted")
	}
}

func TestCreateFailureIsRecordedAndReturned(t *testing.T) {
	q := newQueue()
	d, path := start(t, q)
	_, err := d.CreateMany(context.Background(), 2, 0, Template{Name: "NoSuchTask"})
	if err == nil || !strings.Contains(err.Error(), "none of 2 tasks was created") || !strings.Contains(err.Error(), "400 bad task") {
		t.Fatalf("err = %v", err)
	}
	h, _ := history.Load(path)
	if n := len(h.OpsOfKind(history.KindTaskCreate)); n != 2 {
		t.Errorf("%d create ops recorded, want 2", n)
	}
}

// A read the harness abandons itself (its watch stopped mid-request) is
// not a client failure and is not recorded; a read the cluster fails is.
func TestAbandonedReadsAreNotRecordedAsFailures(t *testing.T) {
	q := newQueue()
	var hang atomic.Bool // set: task reads through the LB never answer
	lb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hang.Load() && r.Method == http.MethodGet && r.URL.Path == "/api/tasks" {
			<-r.Context().Done()
			return
		}
		q.handler("Node1").ServeHTTP(w, r)
	}))
	t.Cleanup(lb.Close)
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	path := filepath.Join(t.TempDir(), "history.jsonl")
	rec, err := history.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(Options{URL: lb.URL, APIKey: testKey, Recorder: rec, Nodes: []Node{{"Node2", down.URL}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.CreateMany(context.Background(), 1, 0, FakeTemplate(time.Minute)); err != nil {
		t.Fatal(err)
	}
	hang.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_ = d.Poll(ctx)
	d.ObserveNodes(context.Background())
	rec.Close()
	h, err := history.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if polls := h.OpsOfKind(history.KindTaskPoll); len(polls) != 0 {
		t.Errorf("abandoned polls recorded: %+v", polls)
	}
	if ops := h.OpsOfKind(history.KindTaskNodes); len(ops) != 1 || ops[0].Outcome != history.Failed {
		t.Errorf("node reads recorded %+v, want Node2's refused read, failed", ops)
	}
}
