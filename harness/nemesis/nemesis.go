// Package nemesis injects faults into a cluster: kill, pause, restart,
// drain (through the Octopus API, as an operator would), database outage,
// share outage and network partition. Each fault is recorded in the history
// with its start and end, and schedules of faults are declarative and
// seeded, so a run is replayed exactly from its seed.
package nemesis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/history"
)

// Env is what faults act on and record into.
type Env struct {
	Cluster  cluster.Cluster
	Recorder *history.Recorder
	// Client talks to the Octopus API (drains); nil: a default client.
	Client *http.Client
	Logger *slog.Logger
}

func (e Env) client() *http.Client {
	if e.Client != nil {
		return e.Client
	}
	return &http.Client{Timeout: 10 * time.Second}
}

func (e Env) log() *slog.Logger {
	if e.Logger != nil {
		return e.Logger
	}
	return slog.Default()
}

// Recover undoes a fault.
type Recover func(ctx context.Context) error

// Fault is one kind of failure.
type Fault interface {
	// Name is the fault's kind as recorded in the history.
	Name() string
	// Available says why the fault cannot be injected into c (nil: it can),
	// e.g. a database outage on SQLite.
	Available(c cluster.Cluster) error
	// Inject injects the fault on target (a node name, or "" for
	// cluster-wide faults) and returns how to recover from it.
	Inject(ctx context.Context, env Env, target string) (Recover, error)
	// Targeted reports whether the fault needs a node as its target.
	Targeted() bool
}

// ErrUnavailable wraps the reason a fault cannot run on a cluster.
var ErrUnavailable = errors.New("fault unavailable")

// Injection is a fault in progress, recorded in the history.
type Injection struct {
	fault   Fault
	env     Env
	record  history.Fault
	recover Recover
	done    bool
}

// Inject injects f on target and records the fault's start. Call Recover on
// the returned injection to end it (recording the end); Recover is
// idempotent.
func Inject(ctx context.Context, env Env, f Fault, target string) (*Injection, error) {
	if err := f.Available(env.Cluster); err != nil {
		return nil, fmt.Errorf("%s: %w: %v", f.Name(), ErrUnavailable, err)
	}
	if f.Targeted() && target == "" {
		return nil, fmt.Errorf("%s: a target node is required", f.Name())
	}
	rec := env.Recorder.FaultStart(f.Name(), target, "")
	env.log().Info("fault injected", "fault", f.Name(), "target", target)
	rcv, err := f.Inject(ctx, env, target)
	if err != nil {
		env.Recorder.FaultEnd(rec, err)
		return nil, fmt.Errorf("inject %s on %q: %w", f.Name(), target, err)
	}
	return &Injection{fault: f, env: env, record: rec, recover: rcv}, nil
}

// Start is when the fault was injected.
func (i *Injection) Start() time.Time { return i.record.Start }

// Fault returns the recorded fault (End is set once recovered).
func (i *Injection) Fault() history.Fault { return i.record }

// Recover ends the fault and records its end.
func (i *Injection) Recover(ctx context.Context) error {
	if i == nil || i.done {
		return nil
	}
	i.done = true
	var err error
	if i.recover != nil {
		err = i.recover(ctx)
	}
	i.record = i.env.Recorder.FaultEnd(i.record, err)
	i.env.log().Info("fault recovered", "fault", i.fault.Name(), "target", i.record.Target, "err", err)
	if err != nil {
		return fmt.Errorf("recover from %s on %q: %w", i.fault.Name(), i.record.Target, err)
	}
	return nil
}

// Hold injects f, keeps it for d (or until ctx is done), and recovers.
func Hold(ctx context.Context, env Env, f Fault, target string, d time.Duration) (history.Fault, error) {
	inj, err := Inject(ctx, env, f, target)
	if err != nil {
		return history.Fault{}, err
	}
	t := time.NewTimer(d)
	select {
	case <-t.C:
	case <-ctx.Done():
		t.Stop()
	}
	err = inj.Recover(context.WithoutCancel(ctx))
	return inj.Fault(), err
}
