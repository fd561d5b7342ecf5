package loaders

import (
	"bufio"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/octoha/octoha/harness/history"
)

// maxReportBody bounds one report's request body.
const maxReportBody = 64 << 20

// coordinator is the HTTP side of a run: it hands out assignments, holds
// the start barrier and merges the workers' records into the run's one
// history and results stream, each timestamp moved onto its own clock.
type coordinator struct {
	token   []byte
	runID   string
	job     Job
	every   time.Duration
	batch   *history.Batch
	enc     vegeta.Encoder // nil: no results file
	encBuf  *bufio.Writer  // under enc: one write per report, not per result
	observe func(*vegeta.Result)
	// now is the coordinator's clock (a test skews it); afterRelease,
	// if set, runs when the start barrier opens (a test acts then).
	now          func() time.Time
	afterRelease func()

	mu       sync.Mutex
	workers  []*workerState
	started  chan struct{} // closed by release
	startAt  time.Time
	abortMsg string
	stopping bool
	merged   vegeta.Metrics
	busy     time.Duration // time spent merging
	records  int
	encErr   error
	changed  chan struct{} // signalled on every join and Done
}

// workerState is what the coordinator knows of one worker.
type workerState struct {
	joined   bool
	host     string
	offset   Offset
	lastSeen time.Time
	seq      int
	done     *Done
	dead     string
	diedAt   time.Time // on the coordinator's clock
	killed   bool      // by Options.Kill
	// indexed: the worker joined with the engine's index, so the
	// engine's state of that index is this worker's.
	indexed  bool
	ops      int
	results  int
	metrics  vegeta.Metrics
	outcomes map[string]history.Outcome // upload version → best outcome seen
	opsOf    map[string]int             // upload version → ops seen
}

func newCoordinator(runID string, token []byte, count int, job Job, every time.Duration) *coordinator {
	c := &coordinator{token: token, runID: runID, job: job, every: every,
		started: make(chan struct{}), changed: make(chan struct{}, 1), now: time.Now}
	for range count {
		c.workers = append(c.workers, &workerState{outcomes: map[string]history.Outcome{}, opsOf: map[string]int{}})
	}
	return c
}

func (c *coordinator) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+pathTime, c.handleTime)
	mux.HandleFunc("POST "+pathJoin, c.handleJoin)
	mux.HandleFunc("POST "+pathStart, c.handleStart)
	mux.HandleFunc("POST "+pathReport, c.handleReport)
	return c.auth(mux)
}

// auth lets through only requests that carry the run's token: the
// coordinator hands out the API key and writes the run's history.
func (c *coordinator) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), c.token) != 1 {
			http.Error(w, "this run's token is required", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (c *coordinator) handleTime(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, timeReply{T: c.now().Round(0)})
}

func (c *coordinator) handleJoin(w http.ResponseWriter, r *http.Request) {
	var req joinRequest
	if !readJSON(w, r, &req) {
		return
	}
	c.mu.Lock()
	i, err := c.claim(req.Index)
	if err != nil {
		c.mu.Unlock()
		http.Error(w, err.Error(), http.StatusConflict)
		return
	}
	ws := c.workers[i]
	ws.joined, ws.host, ws.offset, ws.lastSeen, ws.indexed = true, req.Host, req.Offset, time.Now(), req.Index >= 0
	c.mu.Unlock()
	c.signal()
	writeJSON(w, Assignment{RunID: c.runID, Segment: Segment{Index: i, Count: len(c.workers)}, Job: c.job, ReportEvery: c.every})
}

// claim gives a joining worker its index: the engine's, or the lowest
// free one. Callers hold c.mu.
func (c *coordinator) claim(index int) (int, error) {
	if c.abortMsg != "" {
		return 0, fmt.Errorf("the run was aborted: %s", c.abortMsg)
	}
	if index < 0 {
		for i, ws := range c.workers {
			if !ws.joined {
				return i, nil
			}
		}
		return 0, fmt.Errorf("all %d loaders have joined", len(c.workers))
	}
	if index >= len(c.workers) {
		return 0, fmt.Errorf("loader index %d: this run has %d loaders", index, len(c.workers))
	}
	if c.workers[index].joined {
		return 0, fmt.Errorf("loader %d has joined already", index)
	}
	return index, nil
}

func (c *coordinator) handleStart(w http.ResponseWriter, r *http.Request) {
	var req joinRequest
	if !readJSON(w, r, &req) {
		return
	}
	if _, ok := c.joined(w, req.Index); !ok {
		return
	}
	t := time.NewTimer(longPoll)
	defer t.Stop()
	select {
	case <-c.started:
	case <-t.C:
	case <-r.Context().Done():
		return
	}
	c.mu.Lock()
	reply := startReply{Abort: c.abortMsg}
	select {
	case <-c.started:
		reply.Start, reply.At = reply.Abort == "", c.startAt
	default:
	}
	c.mu.Unlock()
	writeJSON(w, reply)
}

// joined returns worker index's state, or answers 409 for one that has
// not joined.
func (c *coordinator) joined(w http.ResponseWriter, index int) (*workerState, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if index < 0 || index >= len(c.workers) || !c.workers[index].joined {
		http.Error(w, fmt.Sprintf("loader %d has not joined", index), http.StatusConflict)
		return nil, false
	}
	return c.workers[index], true
}

func (c *coordinator) handleReport(w http.ResponseWriter, r *http.Request) {
	var rep report
	r.Body = http.MaxBytesReader(w, r.Body, maxReportBody)
	if !readJSON(w, r, &rep) {
		return
	}
	ws, ok := c.joined(w, rep.Index)
	if !ok {
		return
	}
	c.mu.Lock()
	ws.lastSeen = time.Now()
	switch {
	case rep.Seq <= ws.seq: // a retry of a report already merged
	case rep.Seq != ws.seq+1:
		c.mu.Unlock()
		http.Error(w, fmt.Sprintf("report %d after %d: one is missing", rep.Seq, ws.seq), http.StatusConflict)
		return
	default:
		ws.seq = rep.Seq
		c.merge(ws, rep)
	}
	stop := c.stopping
	c.mu.Unlock()
	if rep.Done != nil {
		c.signal()
	}
	writeJSON(w, reportReply{Stop: stop})
}

// merge takes one report into the run's records. Callers hold c.mu.
func (c *coordinator) merge(ws *workerState, rep report) {
	began := time.Now()
	off := ws.offset.Offset
	for _, op := range rep.Ops {
		op.Seq, op.Command = 0, ""
		op.Start, op.End = shift(op.Start, off), shift(op.End, off)
		if op.Kind == history.KindUpload && op.Version != "" {
			ws.opsOf[op.Version]++
			if op.Outcome == history.OK || ws.outcomes[op.Version] != history.OK {
				ws.outcomes[op.Version] = op.Outcome
			}
		}
		c.batch.Add(op)
	}
	for i := range rep.Results {
		res := &rep.Results[i]
		res.Timestamp = shift(res.Timestamp, off)
		ws.metrics.Add(res)
		c.merged.Add(res)
		if c.enc != nil && c.encErr == nil {
			if err := c.enc.Encode(res); err != nil {
				c.encErr = fmt.Errorf("write merged vegeta results: %w", err)
			}
		}
		if c.observe != nil {
			c.observe(res)
		}
	}
	if c.encBuf != nil && c.encErr == nil && len(rep.Results) > 0 {
		if err := c.encBuf.Flush(); err != nil {
			c.encErr = fmt.Errorf("write merged vegeta results: %w", err)
		}
	}
	ws.ops += len(rep.Ops)
	ws.results += len(rep.Results)
	c.records += len(rep.Ops) + len(rep.Results)
	if rep.Done != nil {
		d := *rep.Done
		if d.Upload != nil {
			for i := range d.Upload.Packages {
				p := &d.Upload.Packages[i]
				p.Start, p.End = shift(p.Start, off), shift(p.End, off)
			}
		}
		ws.done = &d
	}
	c.busy += time.Since(began)
}

// shift moves a worker's time onto the coordinator's clock.
func shift(t time.Time, off time.Duration) time.Time {
	if t.IsZero() {
		return t
	}
	return t.Add(off)
}

// signal wakes the run loop (a join or a Done).
func (c *coordinator) signal() {
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

// release opens the start barrier: workers start at at.
func (c *coordinator) release(at time.Time) {
	c.mu.Lock()
	c.startAt = at
	c.mu.Unlock()
	close(c.started)
	if c.afterRelease != nil {
		c.afterRelease()
	}
}

// abort refuses further joins and tells waiting workers to give up.
func (c *coordinator) abort(reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.abortMsg != "" {
		return
	}
	c.abortMsg = reason
	select {
	case <-c.started:
	default:
		close(c.started)
	}
}

// stop asks every worker to end its load early (at its next report).
func (c *coordinator) stop() {
	c.mu.Lock()
	c.stopping = true
	c.mu.Unlock()
}

// Merged figures: for the tests and the run's result.
func (c *coordinator) snapshot(fn func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fn()
}

func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		http.Error(w, "bad request body: "+err.Error(), http.StatusBadRequest)
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
