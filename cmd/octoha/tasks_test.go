package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/octoha/octoha/harness/history"
	"github.com/octoha/octoha/octopusapi"
)

func TestTasksUsageErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"tasks"}, "needs a subcommand"},
		{[]string{"tasks", "run"}, `unknown tasks subcommand "run"`},
		{[]string{"tasks", "create", "--count", "0"}, "--count must be at least 1"},
		{[]string{"tasks", "create", "--duration", "2h"}, "--duration must be between"},
		{[]string{"tasks", "create", "--rate", "fast"}, `--rate "fast"`},
		{[]string{"tasks", "cancel"}, "name the tasks to cancel"},
		{[]string{"tasks", "watch", "--every", "0s"}, "--every and --for must be positive"},
		{[]string{"tasks", "create", "--name", "no-such-cluster-here"}, "no cluster in"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(c.args, &stdout, &stderr)
		if code == 0 || !strings.Contains(stderr.String(), c.want) {
			t.Errorf("%v: exit %d, want an error naming %q:\n%s", c.args, code, c.want, stderr.String())
		}
	}
}

// brokenCancelQueue answers the task API like a cluster whose cancels do
// not reach the node running the task (OctopusDeploy/Issues#7903): every
// task runs and ends Success, cancelled or not.
func brokenCancelQueue(t *testing.T) *httptest.Server {
	t.Helper()
	var mu sync.Mutex
	tasks := map[string]*octopusapi.Task{}
	n := 0
	js := func(w http.ResponseWriter, v any) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(v)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/{space}/tasks", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		n++
		now := time.Now()
		tk := &octopusapi.Task{Id: fmt.Sprintf("ServerTasks-%d", n), Name: octopusapi.TaskKindHealth, State: octopusapi.TaskQueued, QueueTime: &now}
		tasks[tk.Id] = tk
		w.WriteHeader(http.StatusCreated)
		js(w, tk)
	})
	mux.HandleFunc("GET /api/tasks", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		var items []octopusapi.Task
		for _, id := range strings.Split(r.URL.Query().Get("ids"), ",") {
			if tk := tasks[id]; tk != nil {
				now := time.Now()
				tk.State, tk.ServerNode, tk.StartTime, tk.CompletedTime = octopusapi.TaskSuccess, "Node1", &now, &now
				items = append(items, *tk)
			}
		}
		js(w, octopusapi.NewPage("Task", items, len(items), 0, len(items), "/api/tasks"))
	})
	mux.HandleFunc("GET /api/tasks/{id}", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		js(w, tasks[r.PathValue("id")])
	})
	mux.HandleFunc("GET /api/tasks/{id}/raw", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("POST /api/tasks/{id}/cancel", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		js(w, tasks[r.PathValue("id")]) // acknowledged, and ignored
	})
	mux.HandleFunc("GET /api/octopusservernodes/summary", func(w http.ResponseWriter, r *http.Request) {
		js(w, octopusapi.NodeSummary{Nodes: []octopusapi.Node{{Id: "OctopusServerNodes-1", Name: "Node1", MaxConcurrentTasks: 5}}})
	})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(octopusapi.HeaderAPIKey) != "API-TASKSCMD00000000000000000" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// Against any cluster (--url, the key from the environment): create,
// cancel by ID and watch, all into one history; watch exits 1 naming the
// cancelled task that ended Success.
func TestTasksByURLCatchesAnIgnoredCancel(t *testing.T) {
	srv := brokenCancelQueue(t)
	t.Setenv(trafficAPIKeyEnv, "API-TASKSCMD00000000000000000")
	out := t.TempDir()
	run1 := func(args ...string) (int, string) {
		var stdout, stderr bytes.Buffer
		code := run(append(args, "--url", srv.URL, "--out", out), &stdout, &stderr)
		return code, stdout.String() + stderr.String()
	}
	// cancel takes its IDs after the flags.
	runCancel := func(id string) (int, string) {
		var stdout, stderr bytes.Buffer
		code := run([]string{"tasks", "cancel", "--url", srv.URL, "--out", out, id}, &stdout, &stderr)
		return code, stdout.String() + stderr.String()
	}
	if code, o := run1("tasks", "create", "--count", "3", "--duration", "1s"); code != 0 || !strings.Contains(o, "created 3 of 3: ServerTasks-1 ServerTasks-2 ServerTasks-3") {
		t.Fatalf("create: exit %d\n%s", code, o)
	}
	if code, o := runCancel("ServerTasks-2"); code != 0 || !strings.Contains(o, "cancel requested: ServerTasks-2") {
		t.Fatalf("cancel: exit %d\n%s", code, o)
	}
	code, o := run1("tasks", "watch", "--every", "20ms", "--for", "10s")
	if code != 1 || !strings.Contains(o, "FAIL  tasks-cancel") || !strings.Contains(o, "ServerTasks-2 on Node1: cancelled at") || !strings.Contains(o, "ended Success") {
		t.Fatalf("watch: exit %d, want 1 naming ServerTasks-2:\n%s", code, o)
	}
	if strings.Contains(o, "API-TASKSCMD") {
		t.Error("the API key was printed")
	}
	h, err := history.Load(filepath.Join(out, historyFileName))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range h.Commands {
		names = append(names, c.Name)
	}
	if got := strings.Join(names, " "); got != "tasks-1 tasks-2 tasks-3" {
		t.Errorf("commands %q", got)
	}
}
