package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/octoha/octoha/harness/byhand"
	"github.com/octoha/octoha/harness/checker"
	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/tentacle"
)

// runTentacles runs a fleet of polling Tentacles against a cluster started
// by `octoha up` in one layout, queues work for them, and judges the
// pickups with the tentacles check (exit 1 when a request was not picked
// up within poll + bound).
func runTentacles(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("tentacles", stderr)
	o := byhand.TentaclesOptions{Print: stderr}
	fs.IntVar(&o.Count, "count", 3, "how many Tentacles")
	fs.StringVar(&o.Layout, "layout", cluster.LayoutUniqueAddress, "what they poll: unique-address (each node's address, same port), unique-port (a port per node on the load balancer) or via-lb (one balanced endpoint)")
	fs.DurationVar(&o.Poll, "poll", tentacle.DefaultPoll, "how often each Tentacle polls each endpoint")
	fs.DurationVar(&o.Duration, "duration", 20*time.Second, "how long to queue work")
	fs.DurationVar(&o.Every, "tasks-every", 2*time.Second, "queue a task for each Tentacle this often (each at a random instant of the period)")
	fs.DurationVar(&o.Wait, "task-wait", 30*time.Second, "how long a task waits for its pickup before it times out")
	fs.DurationVar(&o.Bound, "bound", time.Second, "how late after one poll interval a pickup may be")
	fs.StringVar(&o.Out, "out", "", "run directory shared with upload, fault and check (default "+byHandRoot()+"/<cluster>-<owner pid>)")
	cf := addClusterFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := o.Validate(); err != nil {
		return err
	}
	st, _, err := cf.state(fs)
	if err != nil {
		return err
	}
	o.State, o.Name = st, *cf.name
	tr, err := byhand.Tentacles(ctx, o)
	if err != nil {
		return err
	}
	res := tr.Result
	fmt.Fprintf(stdout, "tentacles %s: %s\n", strings.ToUpper(string(res.Status)), res.Summary)
	for _, e := range res.Evidence {
		fmt.Fprintf(stdout, "  %s\n", e)
	}
	fmt.Fprintf(stdout, "history: %s (as %s)\n", tr.History, tr.Name)
	if res.Status == checker.Fail {
		return errCheckFailed
	}
	return nil
}

var errCheckFailed = errors.New("the tentacles check failed")
