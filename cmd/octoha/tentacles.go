package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/octoha/octoha/harness/checker"
	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/history"
	"github.com/octoha/octoha/harness/tentacle"
)

// runTentacles runs a fleet of polling Tentacles against a cluster started
// by `octoha up` in one layout, queues work for them, and judges the
// pickups with the tentacles check (exit 1 when a request was not picked
// up within poll + bound).
func runTentacles(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("tentacles", stderr)
	var (
		count    = fs.Int("count", 3, "how many Tentacles")
		layout   = fs.String("layout", cluster.LayoutUniqueAddress, "what they poll: unique-address (each node's address, same port), unique-port (a port per node on the load balancer) or via-lb (one balanced endpoint)")
		poll     = fs.Duration("poll", tentacle.DefaultPoll, "how often each Tentacle polls each endpoint")
		duration = fs.Duration("duration", 20*time.Second, "how long to queue work")
		every    = fs.Duration("tasks-every", 2*time.Second, "queue a task for each Tentacle this often (each at a random instant of the period)")
		wait     = fs.Duration("task-wait", 30*time.Second, "how long a task waits for its pickup before it times out")
		bound    = fs.Duration("bound", time.Second, "how late after one poll interval a pickup may be")
		out      = fs.String("out", "", "run directory shared with upload, fault and check (default "+byHandRoot()+"/<cluster>-<owner pid>)")
	)
	cf := addClusterFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *count < 1 || *poll <= 0 || *duration <= 0 || *every <= 0 || *wait <= 0 || *bound < 0 {
		return fmt.Errorf("%w: --count, --poll, --duration, --tasks-every and --task-wait must be positive", errUsage)
	}
	st, _, err := cf.state(fs)
	if err != nil {
		return err
	}
	endpoints, err := st.Spec.PollingEndpoints(*layout)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if *out == "" {
		*out = defaultOutDir(st, *cf.name)
	}
	arts, err := openArtefacts(*out, "tentacles", st, history.Command{Labels: map[string]string{
		"layout": *layout, "count": fmt.Sprint(*count), "poll": poll.String(),
	}}, false)
	if err != nil {
		return err
	}
	defer arts.close()
	fleet, err := tentacle.Register(ctx, tentacle.Options{Count: *count, Endpoints: endpoints, Layout: *layout, Thumbprint: st.Spec.PollingThumbprint,
		Poll: *poll, URL: st.LBURL, APIKey: clusterAPIKey("", st), Recorder: arts.rec, Prefix: strings.ReplaceAll(arts.name, "-", "") + "-T"})
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "%d Tentacles (%s) poll %s every %s; a task for each every %s for %s (as %s)\n", *count, *layout, strings.Join(endpoints, ", "), *poll, *every, *duration, arts.name)
	fctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); fleet.Run(fctx) }()
	defer func() { stop(); wg.Wait() }()
	rounds := max(1, int(*duration / *every))
	ids, err := fleet.Work(ctx, tentacle.WorkOptions{Rounds: rounds, Every: *every, Wait: *wait, Seed: time.Now().UnixNano()})
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "waiting for %d tasks to end (at most %s each)\n", len(ids), *wait)
	for deadline := time.Now().Add(*wait + 30*time.Second); ; {
		left, err := fleet.Unfinished(ctx, ids)
		if err != nil {
			return err
		}
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("tasks still running after %s: %s", *wait+30*time.Second, strings.Join(left, ", "))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	stop()
	wg.Wait()
	if _, err := fleet.Lost(ctx, ids); err != nil {
		return err
	}
	if err := arts.close(); err != nil {
		return err
	}
	h, err := history.Load(arts.historyPath())
	if err != nil {
		return err
	}
	// Only this command's ops: the run directory may hold others'.
	var mine history.History
	for _, op := range h.Ops {
		if op.Command == arts.name {
			mine.Ops = append(mine.Ops, op)
		}
	}
	res := checker.Tentacles(&mine, checker.TentacleOptions{Within: *poll + *bound})
	fmt.Fprintf(stdout, "tentacles %s: %s\n", strings.ToUpper(string(res.Status)), res.Summary)
	for _, e := range res.Evidence {
		fmt.Fprintf(stdout, "  %s\n", e)
	}
	fmt.Fprintf(stdout, "history: %s (as %s)\n", arts.historyPath(), arts.name)
	if res.Status == checker.Fail {
		return errCheckFailed
	}
	return nil
}

var errCheckFailed = errors.New("the tentacles check failed")
