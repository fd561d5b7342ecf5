package cluster

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/octoha/octoha/harness/history"
	"github.com/octoha/octoha/harness/lb"
	"github.com/octoha/octoha/octopusapi"
)

// pollEvery is how often readiness conditions are re-checked.
const pollEvery = 50 * time.Millisecond

// PingStatus GETs a base URL's ping endpoint and returns the status code
// (0 when nothing answered) and the node named in the response header.
func PingStatus(ctx context.Context, client *http.Client, baseURL string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(baseURL, "/")+octopusapi.PingPath, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	return resp.StatusCode, resp.Header.Get(octopusapi.HeaderNode), nil
}

// WaitNodePing waits until a node's ping answers want.
func WaitNodePing(ctx context.Context, baseURL string, want int) error {
	client := &http.Client{Timeout: 2 * time.Second}
	var last string
	for {
		code, _, err := PingStatus(ctx, client, baseURL)
		if err == nil && code == want {
			return nil
		}
		if err != nil {
			last = err.Error()
		} else {
			last = fmt.Sprintf("ping answered %d", code)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %s to answer %d: %s: %w", baseURL, want, last, ctx.Err())
		case <-time.After(pollEvery):
		}
	}
}

// WaitLBState waits until the load balancer reports the named nodes in one
// of the wanted states (e.g. UP). Balancers that cannot tell (nginx OSS)
// report UNKNOWN, which is accepted.
func WaitLBState(ctx context.Context, c Cluster, names []string, want ...lb.State) error {
	want = append(want, lb.StateUnknown)
	var last []lb.ServerState
	for {
		states, err := c.LBStates(ctx)
		if err == nil {
			ok := true
			for _, s := range states {
				// HAProxy reports a server UP before its first check
				// ("INI"); only a passed check counts as ready.
				if slices.Contains(names, s.Name) && (!slices.Contains(want, s.State) || strings.HasPrefix(s.Check, "INI")) {
					ok = false
				}
			}
			if ok {
				return nil
			}
			last = states
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for load balancer to report %v as %v (last: %v): %w", names, want, last, ctx.Err())
		case <-time.After(pollEvery):
		}
	}
}

// WaitReady waits until every node answers 200 directly and the load
// balancer reports all of them UP and itself answers the ping with 200.
func WaitReady(ctx context.Context, c Cluster) error {
	names := make([]string, 0, len(c.Nodes()))
	for _, n := range c.Nodes() {
		if err := WaitNodePing(ctx, n.URL, http.StatusOK); err != nil {
			return err
		}
		names = append(names, n.Name)
	}
	if err := WaitLBState(ctx, c, names, lb.StateUp); err != nil {
		return err
	}
	return WaitNodePing(ctx, c.URL(), http.StatusOK)
}

// WatchLB samples the load balancer's view of each node every interval and
// records every change in the history, until ctx is done. It is how the
// harness measures ejection from the balancer's own point of view.
func WatchLB(ctx context.Context, c Cluster, rec *history.Recorder, every time.Duration) {
	NewLBWatcher(c, rec).Watch(ctx, every)
}

// LBWatcher records each change of the load balancer's view of the nodes
// into a history: the scenarios' watch and octoha fault's alike, so that
// the checks time ejection and readmission the same way for both.
type LBWatcher struct {
	c    Cluster
	rec  *history.Recorder
	last map[string]lb.State
}

// NewLBWatcher watches c's balancer into rec.
func NewLBWatcher(c Cluster, rec *history.Recorder) *LBWatcher {
	return &LBWatcher{c: c, rec: rec, last: map[string]lb.State{}}
}

// Sample reads the balancer's view once and records what changed.
func (w *LBWatcher) Sample(ctx context.Context) ([]lb.ServerState, error) {
	states, err := w.c.LBStates(ctx)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	for _, s := range states {
		if w.last[s.Name] != s.State {
			w.last[s.Name] = s.State
			w.rec.LB(history.LBState{Time: now, Server: s.Name, State: string(s.State), Detail: s.Check})
		}
	}
	return states, nil
}

// Watch samples every interval until ctx is done.
func (w *LBWatcher) Watch(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		_, _ = w.Sample(ctx) // an unreadable view is tried again at the next tick
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Settle samples until the balancer has node (every node when node is "")
// in service (up) or out of it, for at most bound, and says what it saw:
// settled is false when the bound passed first or the view cannot be read
// or is UNKNOWN (a balancer without one, such as nginx OSS).
func (w *LBWatcher) Settle(ctx context.Context, node string, up bool, bound time.Duration) (seen string, settled bool) {
	ctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	start := time.Now()
	want := "out of rotation"
	if up {
		want = "UP"
	}
	for {
		states, err := w.Sample(ctx)
		if err != nil {
			return "load balancer's view unreadable: " + err.Error(), false
		}
		done, which := true, []string{}
		for _, s := range states {
			if node != "" && s.Name != node {
				continue
			}
			if s.State == lb.StateUnknown {
				return "this load balancer's view is not observable", false
			}
			which = append(which, s.Name+" "+string(s.State))
			// HAProxy reports a server UP before its first check ("INI").
			if lb.Serving(string(s.State)) != up || (up && strings.HasPrefix(s.Check, "INI")) {
				done = false
			}
		}
		if done {
			return fmt.Sprintf("%s (%s after)", strings.Join(which, ", "), time.Since(start).Round(time.Millisecond)), true
		}
		select {
		case <-ctx.Done():
			return fmt.Sprintf("%s, not yet %s after %s", strings.Join(which, ", "), want, bound), false
		case <-time.After(100 * time.Millisecond):
		}
	}
}
