package lb

import (
	"context"
	"fmt"
	"time"

	"github.com/octoha/octoha/harness/history"
)

// WatchAll is the LBState.Server used when the balancer itself cannot be
// read (States failed).
const WatchAll = "*"

// stateError is the LBState.State recorded when States fails.
const stateError = "ERROR"

// Watch polls b.States every interval until ctx ends and calls record with
// each server's state whenever its State or Check changes (and once for
// each at the start), so a history shows when the balancer ejected or
// readmitted a node. A failing States call is recorded once per outage as
// server WatchAll, state ERROR; afterwards every server is recorded afresh.
// It returns nil when ctx ends.
func Watch(ctx context.Context, b Balancer, interval time.Duration, record func(history.LBState)) error {
	if interval <= 0 {
		return fmt.Errorf("lb watch: interval %v must be positive", interval)
	}
	last := map[string]ServerState{}
	failing := false
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		qctx, cancel := context.WithTimeout(ctx, interval+5*time.Second)
		states, err := b.States(qctx)
		cancel()
		now := time.Now()
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			if !failing {
				record(history.LBState{Time: now, Server: WatchAll, State: stateError, Detail: err.Error()})
				failing = true
				clear(last)
			}
		default:
			failing = false
			for _, s := range states {
				if prev, ok := last[s.Name]; ok && prev.State == s.State && prev.Check == s.Check {
					continue
				}
				last[s.Name] = s
				detail := s.Detail
				if s.Check != "" && detail != "" {
					detail = s.Check + "; " + detail
				} else if s.Check != "" {
					detail = s.Check
				}
				record(history.LBState{Time: now, Server: s.Name, State: string(s.State), Detail: detail})
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
