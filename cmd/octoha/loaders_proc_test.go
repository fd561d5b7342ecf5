package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/octoha/octoha/fakes/blob"
	"github.com/octoha/octoha/fakes/node"
	"github.com/octoha/octoha/fakes/store"
	"github.com/octoha/octoha/harness/history"
	"github.com/octoha/octoha/harness/loaders"
	"github.com/octoha/octoha/internal/syncbuf"
	"github.com/octoha/octoha/internal/testbin"
)

// procEngine runs each worker as an `octoha loader` process on this
// machine: the command path (flags, the worker's environment, printing)
// tested without Docker.
type procEngine struct{}

func (procEngine) Name() string { return "proc" }

func (procEngine) Start(_ context.Context, spec loaders.WorkerSpec) (loaders.Workers, error) {
	w := &procWorkers{states: make([]loaders.WorkerState, spec.Count)}
	for i := range spec.Count {
		cmd := exec.Command(spec.Command[0], spec.Command[1:]...)
		cmd.Env = append(envWithout(trafficAPIKeyEnv), loaders.IndexEnv+"="+strconv.Itoa(i))
		for k, v := range spec.Env {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		log := &syncbuf.Buffer{}
		cmd.Stdout, cmd.Stderr = log, log
		if err := cmd.Start(); err != nil {
			return nil, errors.Join(err, w.Remove(context.Background()))
		}
		w.cmds = append(w.cmds, cmd)
		w.logs = append(w.logs, log)
		w.states[i] = loaders.WorkerState{Index: i, ID: "pid-" + strconv.Itoa(cmd.Process.Pid), State: loaders.StateRunning}
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			err := cmd.Wait()
			w.mu.Lock()
			defer w.mu.Unlock()
			if err != nil {
				w.states[i].State, w.states[i].Message = loaders.StateFailed, err.Error()
			} else {
				w.states[i].State = loaders.StateComplete
			}
		}()
	}
	return w, nil
}

type procWorkers struct {
	cmds   []*exec.Cmd
	logs   []*syncbuf.Buffer
	wg     sync.WaitGroup
	mu     sync.Mutex
	states []loaders.WorkerState
}

func (w *procWorkers) Status(context.Context) ([]loaders.WorkerState, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]loaders.WorkerState(nil), w.states...), nil
}

func (w *procWorkers) Kill(_ context.Context, i int) error {
	if i < 0 || i >= len(w.cmds) {
		return fmt.Errorf("no worker %d", i)
	}
	return w.cmds[i].Process.Kill()
}

func (w *procWorkers) Remove(context.Context) error {
	for _, c := range w.cmds {
		_ = c.Process.Kill() // an ended one answers "process already finished"
	}
	w.wg.Wait() // killed processes end at once
	return nil
}

const procKey = "API-PROCLOADERS01"

// procNode serves an in-process fake node and returns its URL.
func procNode(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	dir := t.TempDir()
	db, err := store.Open(ctx, "sqlite:"+filepath.Join(dir, "octopus.db"))
	if err != nil {
		t.Fatal(err)
	}
	pkgs, err := blob.Open(ctx, filepath.Join(dir, "Packages"))
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.New(node.Config{ID: "OctopusServerNodes-1", Name: "Node1", DB: db, Packages: pkgs,
		APIKeys: []string{procKey}, Heartbeat: 200 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = n.Run(ctx) }()
	srv := httptest.NewServer(n)
	t.Cleanup(func() { srv.Close(); cancel(); <-done; pkgs.Close(); db.Close() })
	return srv.URL
}

// TestLoadersAsProcesses runs attack and upload --loaders 3 through the
// command with workers that are `octoha loader` processes, one killed.
func TestLoadersAsProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds octoha and runs it as loader workers")
	}
	bin, err := testbin.Octoha()
	if err != nil {
		t.Fatal(err)
	}
	engines["proc"] = func() (loaders.Engine, []string) { return procEngine{}, []string{bin, "loader"} }
	t.Cleanup(func() { delete(engines, "proc") })
	url := procNode(t)
	out := t.TempDir()
	t.Setenv(trafficAPIKeyEnv, procKey)

	var stdout, stderr bytes.Buffer
	if code := run([]string{"attack", "--url", url, "--rate", "90/s", "--duration", "2s", "--loaders", "3", "--engine", "proc", "--out", out, "--quiet"}, &stdout, &stderr); code != 0 {
		t.Fatalf("attack: exit %d\n%s\n%s", code, stdout.String(), stderr.String())
	}
	t.Logf("attack:\n%s", stdout.String())
	h, err := history.Load(filepath.Join(out, historyFileName))
	if err != nil {
		t.Fatal(err)
	}
	checkMerged(t, h, out, "attack-1", history.KindPing, stdout.String(), 170)

	// 256 KB/s per upload: each 1 MiB package takes about 4s; loader 1
	// (packages 2 and 3) is killed 1s in.
	stdout.Reset()
	stderr.Reset()
	code := run([]string{"upload", "--url", url, "--size", "1MiB", "--count", "6", "--concurrency", "6", "--rate", "256KB/s",
		"--loaders", "3", "--engine", "proc", "--kill-loader", "1@1s", "--out", out, "--quiet"}, &stdout, &stderr)
	t.Logf("upload:\n%s\n%s", stdout.String(), stderr.String())
	if code != 0 || !strings.Contains(stdout.String(), "loader 1 died: killed on request") ||
		!strings.Contains(stdout.String(), "2 unfinished packages recorded as unknown") {
		t.Fatalf("upload with loader 1 killed: exit %d", code)
	}
	if h, err = history.Load(filepath.Join(out, historyFileName)); err != nil {
		t.Fatal(err)
	}
	outcomes := map[string]history.Outcome{}
	for _, o := range h.OpsOfKind(history.KindUpload) {
		if outcomes[o.Version] != history.OK {
			outcomes[o.Version] = o.Outcome
		}
	}
	var unknown []string
	for v, oc := range outcomes {
		if oc == history.Unknown {
			unknown = append(unknown, v)
		} else if oc != history.OK {
			t.Errorf("package %s: %s", v, oc)
		}
	}
	if len(outcomes) != 6 || len(unknown) != 2 {
		t.Fatalf("packages %v, unknown %v", outcomes, unknown)
	}
	stdout.Reset()
	stderr.Reset()
	if code := run([]string{"check", "--url", url, "--out", out}, &stdout, &stderr); code != 0 {
		t.Fatalf("check: exit %d\n%s\n%s", code, stdout.String(), stderr.String())
	}
	t.Logf("check:\n%s", stdout.String())
	if _, err := os.Stat(filepath.Join(out, "upload-2"+resultsSuffix)); err != nil {
		t.Fatal(err)
	}
}
