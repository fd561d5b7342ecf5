package loaders

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// inprocEngine runs workers as goroutines calling Work, each with its own
// HTTP client, so that Kill can cut a worker off as abruptly as SIGKILL
// (its requests fail from then on, its load is cancelled).
type inprocEngine struct {
	t *testing.T
	// noIndex starts workers without an index (the coordinator assigns).
	noIndex bool
	// failStart makes Start fail.
	failStart bool

	mu      sync.Mutex
	started []*inprocWorkers
}

func (e *inprocEngine) Name() string { return "inproc" }

func (e *inprocEngine) Start(_ context.Context, spec WorkerSpec) (Workers, error) {
	if e.failStart {
		return nil, errors.New("engine refused")
	}
	ws := &inprocWorkers{states: make([]WorkerState, spec.Count)}
	for i := range spec.Count {
		ctx, cancel := context.WithCancel(context.Background())
		kt := &killableTransport{base: http.DefaultTransport.(*http.Transport).Clone()}
		w := &inprocWorker{cancel: cancel, kt: kt}
		ws.ws = append(ws.ws, w)
		ws.states[i] = WorkerState{Index: i, ID: "inproc-" + spec.RunID + "-" + strconv.Itoa(i), State: StateRunning}
		idx := i
		if e.noIndex {
			idx = -1
		}
		o := WorkerOptions{Coordinator: spec.Env[CoordinatorEnv], Token: spec.Env[TokenEnv], Index: idx,
			Client: &http.Client{Transport: kt, Timeout: 30 * time.Second}, JoinTimeout: 20 * time.Second, GiveUpAfter: 2 * time.Second}
		ws.wg.Add(1)
		go func(i int) {
			defer ws.wg.Done()
			err := Work(ctx, o)
			ws.mu.Lock()
			defer ws.mu.Unlock()
			if err != nil {
				ws.states[i].State, ws.states[i].Message = StateFailed, err.Error()
			} else {
				ws.states[i].State = StateComplete
			}
		}(i)
	}
	e.mu.Lock()
	e.started = append(e.started, ws)
	e.mu.Unlock()
	return ws, nil
}

type inprocWorker struct {
	cancel context.CancelFunc
	kt     *killableTransport
}

type inprocWorkers struct {
	ws      []*inprocWorker
	wg      sync.WaitGroup
	mu      sync.Mutex
	states  []WorkerState
	removed atomic.Int32
}

func (w *inprocWorkers) Status(context.Context) ([]WorkerState, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]WorkerState(nil), w.states...), nil
}

func (w *inprocWorkers) Kill(_ context.Context, i int) error {
	if i < 0 || i >= len(w.ws) {
		return fmt.Errorf("no worker %d", i)
	}
	w.ws[i].kt.killed.Store(true)
	w.ws[i].cancel()
	return nil
}

// silence cuts worker i off from the coordinator without telling the
// engine (a network partition): only its silence gives it away.
func (w *inprocWorkers) silence(i int) { w.ws[i].kt.killed.Store(true) }

func (w *inprocWorkers) Remove(context.Context) error {
	for _, x := range w.ws {
		x.cancel()
	}
	done := make(chan struct{})
	go func() { w.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		return errors.New("in-process workers did not end within 30s")
	}
	w.removed.Add(1)
	return nil
}

// killableTransport fails every request once killed.
type killableTransport struct {
	base   http.RoundTripper
	killed atomic.Bool
}

func (k *killableTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if k.killed.Load() {
		return nil, errors.New("killed")
	}
	return k.base.RoundTrip(r)
}
