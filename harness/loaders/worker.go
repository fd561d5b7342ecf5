package loaders

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/octoha/octoha/harness/history"
)

// WorkerOptions configures Work.
type WorkerOptions struct {
	// Coordinator is the coordinator's base URL; Token the run's join
	// token (see CoordinatorEnv, TokenEnv).
	Coordinator, Token string
	// Index is the worker's index from the engine, or -1 for one the
	// coordinator assigns at join.
	Index int
	// Client talks to the coordinator (default: a client with
	// requestTimeout per request).
	Client *http.Client
	// JoinTimeout bounds reaching the coordinator, joining and waiting at
	// the start barrier (default DefaultJoinTimeout).
	JoinTimeout time.Duration
	// GiveUpAfter is how long the worker retries a report the
	// coordinator does not take before it ends its load (default
	// DefaultGiveUpAfter): a worker must not load a cluster nobody records.
	GiveUpAfter time.Duration
	// Timeout bounds the worker's whole life (0: none); an engine
	// without deadlines passes it as TimeoutEnv.
	Timeout time.Duration
	Logger  *slog.Logger
}

// DefaultJoinTimeout bounds a worker's wait to join and start, and the
// coordinator's wait for every worker to join.
const DefaultJoinTimeout = 2 * time.Minute

// requestTimeout bounds one request to the coordinator; longPoll is how
// long the coordinator holds a start request open.
const (
	requestTimeout = 30 * time.Second
	longPoll       = 10 * time.Second
)

// WorkerOptionsFromEnv reads the coordinator, token and index a worker
// was started with.
func WorkerOptionsFromEnv() (WorkerOptions, error) {
	o := WorkerOptions{Coordinator: os.Getenv(CoordinatorEnv), Token: os.Getenv(TokenEnv), Index: -1}
	if o.Coordinator == "" || o.Token == "" {
		return o, fmt.Errorf("$%s and $%s must be set (the engine sets them)", CoordinatorEnv, TokenEnv)
	}
	if s := os.Getenv(SlotEnv); s != "" && os.Getenv(IndexEnv) == "" {
		o.Index = 0 // see SlotEnv: slot 0 arrives as the task ID
		if i, err := strconv.Atoi(s); err == nil && i >= 0 {
			o.Index = i
		}
	}
	if s := os.Getenv(IndexEnv); s != "" {
		i, err := strconv.Atoi(s)
		if err != nil || i < 0 {
			return o, fmt.Errorf("$%s=%q is not a worker index", IndexEnv, s)
		}
		o.Index = i
	}
	if s := os.Getenv(TimeoutEnv); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return o, fmt.Errorf("$%s=%q is not a positive duration", TimeoutEnv, s)
		}
		o.Timeout = d
	}
	return o, nil
}

// Work joins the coordinator, waits for the start, sends this worker's
// part of the job while streaming its records back, and reports how it
// went. It returns when the load is over (or the coordinator said stop,
// or ctx ended) and everything recorded was handed over.
func Work(ctx context.Context, o WorkerOptions) error {
	w, err := newWorker(o)
	if err != nil {
		return err
	}
	if o.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Timeout)
		defer cancel()
	}
	jctx, cancel := context.WithTimeout(ctx, w.o.JoinTimeout)
	defer cancel()
	off, err := w.reach(jctx)
	if err != nil {
		return err
	}
	var a Assignment
	host, _ := os.Hostname()
	if err := w.call(jctx, pathJoin, joinRequest{Index: o.Index, Host: host, Offset: off}, &a); err != nil {
		return fmt.Errorf("join the coordinator: %w", err)
	}
	log := w.o.Logger.With("loader", a.Segment.Index)
	log.Info("joined", "segment", a.Segment.String(), "offset", off.String(), "job", a.Job.Kind)
	at, err := w.waitStart(jctx, a.Segment.Index)
	if err != nil {
		return err
	}
	// Start together: at is on the coordinator's clock.
	if wait := time.Until(at.Add(-off.Offset)); wait > 0 {
		t := time.NewTimer(min(wait, 10*time.Second))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
	return w.runLoad(ctx, a, log)
}

type worker struct {
	o    WorkerOptions
	base string
}

func newWorker(o WorkerOptions) (*worker, error) {
	if o.Coordinator == "" || o.Token == "" {
		return nil, errors.New("a worker needs the coordinator's URL and the run's token")
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: requestTimeout}
	}
	if o.JoinTimeout <= 0 {
		o.JoinTimeout = DefaultJoinTimeout
	}
	if o.GiveUpAfter <= 0 {
		o.GiveUpAfter = DefaultGiveUpAfter
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &worker{o: o, base: strings.TrimSuffix(o.Coordinator, "/")}, nil
}

// reach measures the clock offset, retrying (bounded by ctx) while the
// coordinator cannot be reached yet.
func (w *worker) reach(ctx context.Context) (Offset, error) {
	delay := 100 * time.Millisecond
	for {
		off, err := measureOffset(ctx, w.now)
		if err == nil {
			return off, nil
		}
		var he httpError
		if errors.As(err, &he) {
			return Offset{}, fmt.Errorf("reach the coordinator: %w", err) // it answered: retrying will not help
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return Offset{}, fmt.Errorf("reach the coordinator at %s: %w (last: %v)", w.base, context.Cause(ctx), err)
		case <-t.C:
		}
		delay = min(2*delay, 2*time.Second)
	}
}

// now asks the coordinator for its time.
func (w *worker) now(ctx context.Context) (time.Time, error) {
	var r timeReply
	err := w.call(ctx, pathTime, nil, &r)
	return r.T, err
}

// waitStart waits at the barrier until the coordinator releases the run.
func (w *worker) waitStart(ctx context.Context, index int) (time.Time, error) {
	for {
		var r startReply
		if err := w.call(ctx, pathStart, joinRequest{Index: index}, &r); err != nil {
			return time.Time{}, fmt.Errorf("wait for the start: %w", err)
		}
		switch {
		case r.Abort != "":
			return time.Time{}, fmt.Errorf("the coordinator aborted the run: %s", r.Abort)
		case r.Start:
			return r.At, nil
		}
	}
}

// runLoad sends the load and streams its records.
func (w *worker) runLoad(ctx context.Context, a Assignment, log *slog.Logger) error {
	lctx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	s := newStreamer(w, a.Segment.Index, stopLoad)
	rec := history.NewRecorder(s)
	every := a.ReportEvery
	if every <= 0 {
		every = DefaultReportEvery
	}
	// The stream's reports are never cancelled mid-flight (a report the
	// coordinator may or may not have taken would leave a gap); quit
	// ends the loop between reports.
	quit := make(chan struct{})
	streamed := make(chan struct{})
	go func() { defer close(streamed); s.run(context.WithoutCancel(ctx), every, quit) }()

	d := a.Job.run(lctx, a.Segment, rec, s.observe, log)
	close(quit)
	<-streamed
	// A fresh context: the records must reach the coordinator even
	// after a Ctrl-C; the final report is bounded on its own.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*requestTimeout)
	defer cancel()
	if off, err := measureOffset(fctx, w.now); err == nil {
		d.EndOffset = off
	}
	if err := s.final(fctx, d); err != nil {
		return fmt.Errorf("hand the records to the coordinator: %w", err)
	}
	log.Info("done", "endOffset", d.EndOffset.String())
	if d.Error != "" {
		return errors.New(d.Error)
	}
	return nil
}

// httpError is a coordinator's refusal (any non-2xx answer).
type httpError struct {
	status int
	msg    string
}

func (e httpError) Error() string { return fmt.Sprintf("coordinator answered %d: %s", e.status, e.msg) }

// call posts in as JSON (or GETs for nil) and decodes the answer into out.
func (w *worker) call(ctx context.Context, path string, in, out any) error {
	method := http.MethodGet
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode %s request: %w", path, err)
		}
		method, body = http.MethodPost, bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, w.base+path, body)
	if err != nil {
		return fmt.Errorf("request %s: %w", path, err)
	}
	req.Header.Set("Authorization", "Bearer "+w.o.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := w.o.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return httpError{status: resp.StatusCode, msg: strings.TrimSpace(string(b))}
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("read %s answer: %w", path, err)
	}
	return nil
}
