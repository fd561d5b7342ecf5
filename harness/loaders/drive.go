package loaders

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"
)

// startDelay is how far ahead of the release the workers are told to
// start, so that they start together although the release reaches them
// one by one.
const startDelay = 300 * time.Millisecond

// poll is how often the run looks for silent workers; lookEvery how
// often it asks the engine (a docker CLI call or two each time).
const (
	poll      = 500 * time.Millisecond
	lookEvery = 2 * time.Second
)

// run is one Run between Start and Remove.
type run struct {
	o      Options
	c      *coordinator
	ws     Workers
	engine map[int]WorkerState // the engine's last view, by index
	start  time.Time
	startC time.Time // start on the coordinator's clock (its records' clock)
	looked time.Time
}

// drive waits for the joins, releases the start and waits for every
// worker to finish or die.
func (r *run) drive(ctx context.Context) error {
	if err := r.waitJoins(ctx); err != nil {
		r.c.abort(err.Error())
		return err
	}
	r.start = time.Now().Add(startDelay)
	r.startC = r.c.now().Add(startDelay)
	r.c.release(r.startC)
	r.o.Logger.Info("loaders started", "count", r.o.Count)
	return r.waitDone(ctx)
}

// waitJoins waits (bounded) until every worker has joined; a worker the
// engine reports failed before it joined ends the wait.
func (r *run) waitJoins(ctx context.Context) error {
	deadline := time.NewTimer(r.o.JoinTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for {
		joined := 0
		r.c.snapshot(func() {
			for _, w := range r.c.workers {
				if w.joined {
					joined++
				}
			}
		})
		if joined == r.o.Count {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("interrupted while the loaders joined (%d of %d): %w", joined, r.o.Count, context.Cause(ctx))
		case <-deadline.C:
			return fmt.Errorf("%d of %d loaders joined within %s (engine: %s)", joined, r.o.Count, r.o.JoinTimeout, r.engineView(ctx))
		case <-r.c.changed:
		case <-tick.C:
			if time.Since(r.looked) >= lookEvery {
				r.look(ctx)
			}
			if msg := r.failedBeforeJoin(); msg != "" {
				return fmt.Errorf("a loader failed before it joined: %s", msg)
			}
		}
	}
}

// look refreshes the engine's view of the workers; an error keeps the
// last view (a slow engine must not end the run).
func (r *run) look(ctx context.Context) {
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	r.looked = time.Now()
	sts, err := r.ws.Status(sctx)
	if err != nil {
		r.o.Logger.Warn("engine status", "err", err)
		return
	}
	m := map[int]WorkerState{}
	for _, s := range sts {
		// A slot the engine restarted has several tasks: a running or
		// complete one says more than an old failed one.
		if old, ok := m[s.Index]; ok && old.State != StateFailed {
			continue
		}
		m[s.Index] = s
	}
	r.engine = m
}

func (r *run) failedBeforeJoin() string {
	var failed []int
	r.c.snapshot(func() {
		for i, w := range r.c.workers {
			if s, ok := r.engine[i]; ok && s.State == StateFailed && !w.joined {
				failed = append(failed, i)
			}
		}
	})
	var msgs []string
	for _, i := range failed { // outside the lock: reading logs takes a while
		s := r.engine[i]
		msg := fmt.Sprintf("loader %d (%s): %s", i, s.ID, s.Message)
		if l := r.logs(i); l != "" {
			msg += "; its output ends:\n" + l
		}
		msgs = append(msgs, msg)
	}
	return strings.Join(msgs, "; ")
}

func (r *run) engineView(ctx context.Context) string {
	r.look(ctx)
	if len(r.engine) == 0 {
		return "no workers seen"
	}
	idx := make([]int, 0, len(r.engine))
	for i := range r.engine {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	var parts []string
	for _, i := range idx {
		s := r.engine[i]
		p := fmt.Sprintf("%d %s", i, s.State)
		if s.Message != "" {
			p += " (" + s.Message + ")"
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, ", ")
}

// waitDone waits until every worker has handed in its Done or is dead.
// Ctrl-C or the run timeout asks the workers to stop and gives them
// stopGrace to hand in what they have.
func (r *run) waitDone(ctx context.Context) error {
	deadline := time.NewTimer(time.Until(r.start) + r.o.RunTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(poll)
	defer tick.Stop()
	var kill <-chan time.Time
	if r.o.Kill != nil {
		t := time.NewTimer(time.Until(r.start) + r.o.Kill.After)
		defer t.Stop()
		kill = t.C
	}
	done := ctx.Done()
	var cause error
	var grace <-chan time.Time
	for {
		if r.finished() {
			return cause
		}
		select {
		case <-done:
			done, cause = nil, fmt.Errorf("interrupted: %w", context.Cause(ctx))
			grace = r.stop("the run was interrupted")
		case <-deadline.C:
			cause = fmt.Errorf("the loaders did not finish within %s", r.o.RunTimeout)
			grace = r.stop("the run timed out")
		case <-kill:
			kill = nil
			r.kill(ctx, r.o.Kill.Index)
		case <-grace:
			r.markAll(fmt.Sprintf("did not hand in its records within %s of the stop", stopGrace))
		case <-r.c.changed:
		case <-tick.C:
			if time.Since(r.looked) >= lookEvery {
				r.look(context.WithoutCancel(ctx))
			}
			r.markDead()
		}
	}
}

// stop asks the workers to stop and returns the end of their grace.
func (r *run) stop(why string) <-chan time.Time {
	r.o.Logger.Warn("stopping the loaders", "why", why)
	r.c.stop()
	return time.After(stopGrace)
}

// kill ends a worker through the engine, as a fault of the loaders.
func (r *run) kill(ctx context.Context, i int) {
	kctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	err := r.ws.Kill(kctx, i)
	r.o.Logger.Warn("killed a loader on request", "index", i, "err", err)
	reason := "killed on request (--kill-loader)"
	if err != nil {
		reason = fmt.Sprintf("asked to be killed, but the kill failed: %v", err)
	}
	r.c.snapshot(func() {
		if w := r.c.workers[i]; w.done == nil && w.dead == "" && err == nil {
			w.dead, w.diedAt, w.killed = reason, r.c.now(), true
		}
	})
}

// finished: every worker is done or dead.
func (r *run) finished() bool {
	all := true
	r.c.snapshot(func() {
		for _, w := range r.c.workers {
			if w.done == nil && w.dead == "" {
				all = false
			}
		}
	})
	return all
}

// markDead declares dead a worker silent for DeadAfter, or one the
// engine says has ended without handing in its Done.
func (r *run) markDead() {
	r.c.snapshot(func() {
		for i, w := range r.c.workers {
			if w.done != nil || w.dead != "" {
				continue
			}
			if s, ok := r.engine[i]; ok && w.indexed && (s.State == StateFailed || s.State == StateComplete) {
				w.dead, w.diedAt = fmt.Sprintf("the engine reports it %s (%s) before it handed in its records", s.State, orNone(s.Message)), r.lastSeen(w)
				continue
			}
			if silent := time.Since(w.lastSeen); silent > r.o.DeadAfter {
				w.dead, w.diedAt = fmt.Sprintf("silent for %s", silent.Round(time.Second)), r.lastSeen(w)
			}
		}
	})
}

func (r *run) markAll(reason string) {
	r.c.snapshot(func() {
		for _, w := range r.c.workers {
			if w.done == nil && w.dead == "" {
				w.dead, w.diedAt = reason, r.lastSeen(w)
			}
		}
	})
}

// lastSeen is when worker w was last heard from, on the coordinator's
// clock: when a worker that died unseen stopped counting.
func (r *run) lastSeen(w *workerState) time.Time {
	return w.lastSeen.Add(time.Until(r.c.now()))
}

func orNone(s string) string {
	if s == "" {
		return "no message"
	}
	return s
}
