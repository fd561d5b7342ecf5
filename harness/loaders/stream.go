package loaders

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/octoha/octoha/harness/history"
)

// DefaultReportEvery is how often a worker sends what it recorded: what a
// killed worker loses at most (plus the attack's own batching delay).
const DefaultReportEvery = 250 * time.Millisecond

// maxPerReport bounds the records of one report.
const maxPerReport = 2000

// DefaultGiveUpAfter: see WorkerOptions.GiveUpAfter.
const DefaultGiveUpAfter = 20 * time.Second

// streamer collects a worker's records and sends them to the coordinator
// in order. It is the io.Writer of the worker's history.Recorder: each
// write holds whole JSON lines.
type streamer struct {
	w     *worker
	index int
	stop  context.CancelFunc // ends the load (the coordinator said stop)

	mu      sync.Mutex
	ops     []history.Op
	results []vegeta.Result
	err     error

	seq int // reports sent; only the sending goroutine touches it
}

func newStreamer(w *worker, index int, stop context.CancelFunc) *streamer {
	return &streamer{w: w, index: index, stop: stop}
}

// Write takes JSON lines from the recorder; it keeps the ops (faults and
// LB states are the coordinator's alone).
func (s *streamer) Write(p []byte) (int, error) {
	var ops []history.Op
	for line := range bytes.Lines(p) {
		var e struct {
			Op *history.Op `json:"op"`
		}
		if err := json.Unmarshal(line, &e); err != nil {
			return 0, fmt.Errorf("stream a history line: %w", err)
		}
		if e.Op != nil {
			ops = append(ops, *e.Op)
		}
	}
	s.mu.Lock()
	s.ops = append(s.ops, ops...)
	s.mu.Unlock()
	return len(p), nil
}

// observe takes one vegeta result.
func (s *streamer) observe(r *vegeta.Result) {
	s.mu.Lock()
	s.results = append(s.results, *r)
	s.mu.Unlock()
}

// take removes up to maxPerReport records from the queue.
func (s *streamer) take() report {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := report{Index: s.index}
	n := min(len(s.ops), maxPerReport)
	r.Ops = append([]history.Op(nil), s.ops[:n]...)
	s.ops = s.ops[n:]
	n = min(len(s.results), maxPerReport)
	r.Results = append([]vegeta.Result(nil), s.results[:n]...)
	s.results = s.results[n:]
	return r
}

func (s *streamer) pending() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.ops) > 0 || len(s.results) > 0
}

// run sends a report every interval (an empty one too: it says the worker
// is alive) until quit is closed.
func (s *streamer) run(ctx context.Context, every time.Duration, quit <-chan struct{}) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-quit:
			return
		case <-t.C:
		}
		if err := s.flush(ctx); err != nil {
			s.fail(err)
			return
		}
	}
}

// flush sends everything queued (at least one report).
func (s *streamer) flush(ctx context.Context) error {
	for first := true; first || s.pending(); first = false {
		if err := s.send(ctx, s.take()); err != nil {
			return err
		}
	}
	return nil
}

// final sends the rest and the worker's Done.
func (s *streamer) final(ctx context.Context, d Done) error {
	if s.err != nil && d.Error == "" {
		d.Error = s.err.Error()
	}
	if err := s.flush(ctx); err != nil {
		return err
	}
	r := s.take()
	r.Done = &d
	return s.send(ctx, r)
}

// fail ends the load: the coordinator no longer takes its records.
func (s *streamer) fail(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.mu.Unlock()
	s.stop()
}

// send posts one report, retrying a failed post with the same sequence
// number (the coordinator drops a duplicate) for up to GiveUpAfter.
func (s *streamer) send(ctx context.Context, r report) error {
	s.seq++
	r.Seq = s.seq
	deadline := time.Now().Add(s.w.o.GiveUpAfter)
	delay := 100 * time.Millisecond
	for {
		var reply reportReply
		err := s.w.call(ctx, pathReport, r, &reply)
		if err == nil {
			if reply.Stop {
				s.stop()
			}
			return nil
		}
		var he httpError
		if errors.As(err, &he) && he.status/100 == 4 {
			return fmt.Errorf("report %d refused: %w", r.Seq, err)
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return fmt.Errorf("report %d not taken: %w", r.Seq, err)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("report %d not taken: %w", r.Seq, ctx.Err())
		case <-t.C:
		}
		delay = min(2*delay, 2*time.Second)
	}
}
