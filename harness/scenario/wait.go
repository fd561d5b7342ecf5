package scenario

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/traffic"
)

// Eventually polls cond every poll until it returns nil, and returns the
// last error, wrapped with what was awaited, when within passes or ctx
// ends.
func Eventually(ctx context.Context, what string, within, poll time.Duration, cond func() error) error {
	deadline := time.Now().Add(within)
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not within %s: %w", what, within, err)
		}
		t := time.NewTimer(poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%s: %w (last: %v)", what, context.Cause(ctx), err)
		case <-t.C:
		}
	}
}

// Consistently polls cond every poll for d and fails at the first error.
func Consistently(ctx context.Context, what string, d, poll time.Duration, cond func() error) error {
	deadline := time.Now().Add(d)
	for {
		if err := cond(); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if time.Now().After(deadline) {
			return nil
		}
		t := time.NewTimer(poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%s: %w", what, context.Cause(ctx))
		case <-t.C:
		}
	}
}

// Sleep lets a measurement window pass (the measurement itself, never a
// readiness wait), ending early when ctx ends.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// Ping returns a base URL's ping status (0 if nothing answered).
func Ping(ctx context.Context, base string) int {
	client := &http.Client{Timeout: time.Second}
	code, _, _ := cluster.PingStatus(ctx, client, base)
	return code
}

// PingIs is a condition: base's ping answers want.
func PingIs(ctx context.Context, base string, want int) func() error {
	return func() error {
		if got := Ping(ctx, base); got != want {
			return fmt.Errorf("ping of %s answered %d, want %d", base, got, want)
		}
		return nil
	}
}

// PingIsNot is a condition: base's ping does not answer code.
func PingIsNot(ctx context.Context, base string, code int) func() error {
	return func() error {
		if got := Ping(ctx, base); got == code {
			return fmt.Errorf("ping of %s still answers %d", base, got)
		}
		return nil
	}
}

// LBBound is how long the load balancer may take to act on a health-check
// change: (checks+1) intervals plus a margin for a loaded 2-core machine.
// The margin is the harness/lb tests' slack (1.5 s): with 750 ms, Kill
// mid-upload failed its convergence check by 54 ms (HAProxy marked the
// node out 2.304 s after the kill, bound 2.25 s) on a machine running
// other test suites beside a busy core. With the default timings (500 ms
// checks, fall 2) the bound is 3 s, still half of what HAProxy's own
// defaults (inter 2s, fall 3) take, and a balancer without active checks
// never marks a node out at all.
func LBBound(spec cluster.Spec, checks int) time.Duration {
	return time.Duration(checks+1)*spec.LB.Interval + 1500*time.Millisecond
}

// AwaitUploads waits up to within for background uploads and returns
// their summary; uploads that did not all succeed are an error saying what
// must hold ("uploads retried through the outage must succeed").
func AwaitUploads(ctx context.Context, ch <-chan UploadResult, within time.Duration, must string) (*traffic.UploadSummary, error) {
	t := time.NewTimer(within)
	defer t.Stop()
	var res UploadResult
	select {
	case res = <-ch:
	case <-t.C:
		return nil, fmt.Errorf("uploads did not finish within %s", within)
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
	if res.Err != nil {
		return nil, res.Err
	}
	if err := res.Summary.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", must, err)
	}
	return res.Summary, nil
}

// ErrSkip marks an error that skips the scenario instead of failing it
// (a component turned out to be missing).
var ErrSkip = errors.New("skip")

// Skip returns an error that skips the scenario with a reason.
func Skip(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrSkip, fmt.Sprintf(format, args...))
}
