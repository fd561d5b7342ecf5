package byhand

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/octoha/octoha/harness/checker"
	"github.com/octoha/octoha/harness/cluster/local"
	"github.com/octoha/octoha/harness/history"
	"github.com/octoha/octoha/harness/tentacle"
)

// TentaclesOptions are a by-hand run of polling Tentacles.
type TentaclesOptions struct {
	// State is the cluster (octoha up's); Name its name as given.
	State *local.State
	Name  string
	// Count Tentacles poll in Layout (cluster.Layout*) every Poll.
	Count  int
	Layout string
	Poll   time.Duration
	// Work is queued for Duration, a task for each Tentacle every Every;
	// each waits Wait for its pickup.
	Duration, Every, Wait time.Duration
	// Bound is how late after one poll interval a pickup may be.
	Bound time.Duration
	// Out is the output directory ("" DefaultOutDir).
	Out string
	// Print receives what is under way.
	Print io.Writer
}

// Validate refuses counts and durations a run cannot have, before any
// cluster is looked for.
func (o TentaclesOptions) Validate() error {
	if o.Count < 1 || o.Poll <= 0 || o.Duration <= 0 || o.Every <= 0 || o.Wait <= 0 || o.Bound < 0 {
		return fmt.Errorf("%w: --count, --poll, --duration, --tasks-every and --task-wait must be positive", ErrUsage)
	}
	return nil
}

// TentaclesRun is what a run of Tentacles left: its verdict, and where
// it is recorded.
type TentaclesRun struct {
	Result  checker.Result
	History string // the shared history
	Name    string // the command's name in it
}

// Tentacles registers a fleet of polling Tentacles on the cluster, queues
// work for them, waits for every task to end and judges this command's
// pickups with the tentacles check.
func Tentacles(ctx context.Context, o TentaclesOptions) (*TentaclesRun, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	st := o.State
	endpoints, err := st.Spec.PollingEndpoints(o.Layout)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUsage, err)
	}
	if o.Out == "" {
		o.Out = DefaultOutDir(st, o.Name)
	}
	arts, err := Open(o.Out, "tentacles", st, history.Command{Labels: map[string]string{
		"layout": o.Layout, "count": fmt.Sprint(o.Count), "poll": o.Poll.String(),
	}}, false)
	if err != nil {
		return nil, err
	}
	defer arts.Close()
	fleet, err := tentacle.Register(ctx, tentacle.Options{Count: o.Count, Endpoints: endpoints, Layout: o.Layout, Thumbprint: st.Spec.PollingThumbprint,
		Poll: o.Poll, URL: st.LBURL, APIKey: APIKey("", st), Recorder: arts.Rec, Prefix: strings.ReplaceAll(arts.Name, "-", "") + "-T"})
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(o.Print, "%d Tentacles (%s) poll %s every %s; a task for each every %s for %s (as %s)\n", o.Count, o.Layout, strings.Join(endpoints, ", "), o.Poll, o.Every, o.Duration, arts.Name)
	if err := work(ctx, fleet, o); err != nil {
		return nil, err
	}
	if err := arts.Close(); err != nil {
		return nil, err
	}
	h, err := history.Load(arts.HistoryPath())
	if err != nil {
		return nil, err
	}
	// Only this command's ops: the run directory may hold others'.
	var mine history.History
	for _, op := range h.Ops {
		if op.Command == arts.Name {
			mine.Ops = append(mine.Ops, op)
		}
	}
	res := checker.Tentacles(&mine, checker.TentacleOptions{Within: o.Poll + o.Bound})
	return &TentaclesRun{Result: res, History: arts.HistoryPath(), Name: arts.Name}, nil
}

// work runs the fleet while it queues the work, waits for every task to
// end, then stops it and records the tasks never picked up.
func work(ctx context.Context, fleet *tentacle.Fleet, o TentaclesOptions) error {
	fctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); fleet.Run(fctx) }()
	defer func() { stop(); wg.Wait() }()
	rounds := max(1, int(o.Duration/o.Every))
	ids, err := fleet.Work(ctx, tentacle.WorkOptions{Rounds: rounds, Every: o.Every, Wait: o.Wait, Seed: time.Now().UnixNano()})
	if err != nil {
		return err
	}
	fmt.Fprintf(o.Print, "waiting for %d tasks to end (at most %s each)\n", len(ids), o.Wait)
	for deadline := time.Now().Add(o.Wait + 30*time.Second); ; {
		left, err := fleet.Unfinished(ctx, ids)
		if err != nil {
			return err
		}
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("tasks still running after %s: %s", o.Wait+30*time.Second, strings.Join(left, ", "))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	stop()
	wg.Wait()
	_, err = fleet.Lost(ctx, ids)
	return err
}
