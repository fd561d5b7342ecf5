package loaders

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/octoha/octoha/harness/history"
)

// Options configures Run.
type Options struct {
	Engine Engine
	// Count is the number of workers.
	Count int
	Job   Job
	// Recorder is the run's one history; Results its vegeta results
	// stream (nil: none). Run writes the workers' records into both.
	Recorder *history.Recorder
	Results  io.Writer
	// Observe, if set, sees every merged result (e.g. traffic.Spread.Add).
	Observe func(*vegeta.Result)
	// Listen is where the coordinator listens (default "127.0.0.1:0":
	// workers on this machine, such as a one-node swarm on the host
	// network). Bind it no wider than the workers need.
	Listen string
	// Advertise is the coordinator's URL as workers reach it (default
	// http://<the bound address>).
	Advertise string
	// Image, Network and Namespace are passed to the engine (WorkerSpec).
	Image, Network, Namespace string
	// Command is the workers' argv (default ["octoha", "loader"]).
	Command []string
	// JoinTimeout bounds the wait for every worker to join (default
	// DefaultJoinTimeout); RunTimeout the load once started (default: an
	// attack's duration and request timeout plus a minute; an upload needs it).
	JoinTimeout, RunTimeout time.Duration
	// ReportEvery is the workers' report interval (default
	// DefaultReportEvery); DeadAfter how long a started worker may stay
	// silent before it counts as dead (default 15s).
	ReportEvery, DeadAfter time.Duration
	// Kill, if set, kills one worker through the engine that long after
	// the start: a test of the loaders themselves.
	Kill   *KillPlan
	Logger *slog.Logger
}

// KillPlan kills worker Index After the start.
type KillPlan struct {
	Index int
	After time.Duration
}

// stopGrace is how long workers asked to stop get to hand in their
// records; removeTimeout bounds the engine's Remove.
const (
	stopGrace     = 20 * time.Second
	removeTimeout = time.Minute
)

func (o Options) withDefaults() (Options, error) {
	if o.Engine == nil {
		return o, errors.New("no engine to run the loaders on")
	}
	if err := o.Job.Validate(o.Count); err != nil {
		return o, err
	}
	if o.Listen == "" {
		o.Listen = "127.0.0.1:0"
	}
	if len(o.Command) == 0 {
		o.Command = []string{"octoha", "loader"}
	}
	if o.JoinTimeout <= 0 {
		o.JoinTimeout = DefaultJoinTimeout
	}
	if o.RunTimeout <= 0 {
		if o.Job.Kind != KindAttack {
			return o, errors.New("a run timeout is needed: an upload has no duration of its own")
		}
		o.RunTimeout = o.Job.Attack.Duration + max(o.Job.Attack.Timeout, 10*time.Second) + time.Minute
	}
	if o.ReportEvery <= 0 {
		o.ReportEvery = DefaultReportEvery
	}
	if o.DeadAfter <= 0 {
		o.DeadAfter = 15 * time.Second
	}
	if o.Kill != nil && (o.Kill.Index < 0 || o.Kill.Index >= o.Count) {
		return o, fmt.Errorf("kill loader %d: there are %d", o.Kill.Index, o.Count)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, nil
}

// Run sends the job from o.Count workers placed by o.Engine and merges
// their records into o.Recorder and o.Results. However it ends (done,
// ctx cancelled, an error) every worker is removed before it returns.
// The Result is non-nil once the workers were started, also with an error.
func Run(ctx context.Context, opts Options) (*Result, error) {
	return runWith(ctx, opts, nil)
}

// runWith is Run with a hook that sees the coordinator before any worker
// is started (tests skew its clock or act at the start).
func runWith(ctx context.Context, opts Options, hook func(*coordinator)) (res *Result, err error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	runID, token := randomHex(4), randomHex(32)
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen for loaders on %s: %w", o.Listen, err)
	}
	c := newCoordinator(runID, []byte(token), o.Count, o.Job, o.ReportEvery)
	c.batch = history.NewBatch(o.Recorder, 0)
	if o.Results != nil {
		c.encBuf = bufio.NewWriterSize(o.Results, 64<<10)
		c.enc = vegeta.NewEncoder(c.encBuf)
	}
	c.observe = o.Observe
	if hook != nil {
		hook(c)
	}
	srv := &http.Server{Handler: c.handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	url := o.Advertise
	if url == "" {
		url = "http://" + ln.Addr().String()
	}
	_, portS, _ := net.SplitHostPort(ln.Addr().String())
	port, _ := strconv.Atoi(portS)
	spec := WorkerSpec{
		RunID: runID, Count: o.Count, Image: o.Image, Command: o.Command,
		Env:     map[string]string{CoordinatorEnv: url, TokenEnv: token},
		Network: o.Network, Namespace: o.Namespace, CoordinatorPort: port,
		Timeout: o.JoinTimeout + o.RunTimeout + stopGrace + time.Minute,
	}
	began := time.Now()
	o.Logger.Info("starting loaders", "engine", o.Engine.Name(), "count", o.Count, "run", runID, "coordinator", url)
	ws, err := o.Engine.Start(ctx, spec)
	if err != nil {
		return nil, fmt.Errorf("start %d loaders on %s: %w", o.Count, o.Engine.Name(), err)
	}
	r := &run{o: o, c: c, ws: ws}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), removeTimeout)
		defer cancel()
		if rerr := ws.Remove(rctx); rerr != nil {
			err = errors.Join(err, fmt.Errorf("remove the loaders: %w", rerr))
		}
	}()
	err = r.drive(ctx)
	res = r.result(runID, time.Since(began))
	if berr := c.batch.Close(); berr != nil {
		err = errors.Join(err, berr)
	}
	if c.encErr != nil {
		err = errors.Join(err, c.encErr)
	}
	return res, err
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}
