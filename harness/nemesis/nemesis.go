// Package nemesis injects faults into a cluster: kill, pause, restart,
// drain (through the Octopus API, as an operator would), database outage,
// share outage, network partition, and faults on one link through
// Toxiproxy (latency, bandwidth, blackhole, reset, slow close; network.go).
// Each fault is recorded in the history
// with its start and end, and schedules of faults are declarative and
// seeded, so a run is replayed exactly from its seed.
package nemesis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
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
	// Undo, when set, receives every fault's recovery before the fault is
	// injected (the runner's recovery stack).
	Undo Undoer
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

// Undoer keeps the recoveries of injected faults so that whoever runs a
// scenario can undo every one of them however the run ends (success, a
// failed check, a panic, a timeout, Ctrl-C). Inject registers a fault's
// recovery with it BEFORE injecting, so even an injection that fails half
// way (a drain PUT that landed but whose answer was lost) is undone.
type Undoer interface {
	Push(what string, undo func(ctx context.Context) error)
}

// Fault is one kind of failure.
type Fault interface {
	// Name is the fault's kind as recorded in the history; it is also the
	// cluster.Capability a cluster needs to take it.
	Name() string
	// Available says why the fault cannot be injected into c (nil: it can),
	// e.g. a database outage on SQLite. It asks cluster.Can.
	Available(c cluster.Cluster) error
	// Inject injects the fault on target (a node name, or "" for
	// cluster-wide faults).
	Inject(ctx context.Context, env Env, target string) error
	// Recover undoes the fault on target. It is safe on a target that was
	// never (or only partly) faulted: a node that already serves is not
	// started again, an undrain of a node in service changes nothing.
	Recover(ctx context.Context, env Env, target string) error
	// Targeted reports whether the fault needs a node as its target.
	Targeted() bool
}

// ErrUnavailable wraps the reason a fault cannot run on a cluster.
var ErrUnavailable = errors.New("fault unavailable")

// Injection is a fault in progress, recorded in the history.
type Injection struct {
	fault  Fault
	env    Env
	target string

	mu        sync.Mutex
	record    history.Fault
	attempted bool
	done      bool
	err       error
}

// Inject injects f on target and records the fault's start. Its recovery
// is registered with env.Undo first. Call Recover on the returned
// injection to end it (recording the end); Recover is idempotent, so the
// caller and the Undoer may both call it.
func Inject(ctx context.Context, env Env, f Fault, target string) (*Injection, error) {
	if err := f.Available(env.Cluster); err != nil {
		return nil, fmt.Errorf("%s: %w: %v", f.Name(), ErrUnavailable, err)
	}
	if f.Targeted() && target == "" {
		return nil, fmt.Errorf("%s: a target node is required", f.Name())
	}
	if f.Targeted() {
		if _, err := findNode(env.Cluster, target); err != nil {
			return nil, fmt.Errorf("%s: %w", f.Name(), err)
		}
	}
	inj := &Injection{fault: f, env: env, target: target}
	if env.Undo != nil {
		what := f.Name()
		if target != "" {
			what += " " + target
		}
		env.Undo.Push(what, inj.Recover)
	}
	inj.mu.Lock()
	inj.attempted = true
	detail := ""
	if d, ok := f.(interface{ Detail() string }); ok {
		detail = d.Detail()
	}
	inj.record = env.Recorder.FaultStart(f.Name(), target, detail)
	inj.mu.Unlock()
	env.log().Info("fault injected", "fault", f.Name(), "target", target, "detail", detail)
	if err := f.Inject(ctx, env, target); err != nil {
		// Undo whatever part of it landed, now, and record the window.
		rerr := inj.Recover(context.WithoutCancel(ctx))
		return nil, errors.Join(fmt.Errorf("inject %s on %q: %w", f.Name(), target, err), rerr)
	}
	return inj, nil
}

// Start is when the fault was injected.
func (i *Injection) Start() time.Time {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.record.Start
}

// Fault returns the recorded fault (End is set once recovered).
func (i *Injection) Fault() history.Fault {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.record
}

// Recovered reports whether the fault has been undone.
func (i *Injection) Recovered() bool {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.done
}

// Recover ends the fault and records its end. It runs the recovery once;
// later calls return the first call's result.
func (i *Injection) Recover(ctx context.Context) error {
	if i == nil {
		return nil
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.done || !i.attempted {
		return i.err
	}
	i.done = true
	err := i.fault.Recover(ctx, i.env, i.target)
	i.record = i.env.Recorder.FaultEnd(i.record, err)
	i.env.log().Info("fault recovered", "fault", i.fault.Name(), "target", i.target, "err", err)
	if err != nil {
		i.err = fmt.Errorf("recover from %s on %q: %w", i.fault.Name(), i.target, err)
	}
	return i.err
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

// findNode finds a node by name or ID.
func findNode(c cluster.Cluster, target string) (cluster.Node, error) {
	for _, n := range c.Nodes() {
		if n.Name == target || n.ID == target {
			return n, nil
		}
	}
	return cluster.Node{}, fmt.Errorf("no node named %q in this cluster", target)
}
