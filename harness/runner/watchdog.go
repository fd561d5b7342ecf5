package runner

import (
	"context"
	"fmt"
	"time"

	"github.com/octoha/octoha/harness/history"
)

// Stop-condition parameters: the error rate is judged over requests
// through the load balancer that started outside every fault window (and
// its grace after recovery), once there are enough of them to mean
// something.
const (
	watchEvery     = time.Second
	watchMinOps    = 50
	watchFaultTail = 5 * time.Second
)

// watchdog stops the scenario (abort with ErrAborted) when the load
// balancer's error rate outside fault windows exceeds the threshold: a
// certification run must not hurt a real cluster more than planned.
func (r *run) watchdog(ctx context.Context, abort context.CancelCauseFunc) {
	t := time.NewTicker(watchEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		h, err := r.History()
		if err != nil {
			continue
		}
		total, failed := ErrorRateOutsideFaults(h, watchFaultTail)
		if total < watchMinOps {
			continue
		}
		if rate := float64(failed) / float64(total); rate > r.opts.AbortErrorRate {
			abort(fmt.Errorf("%w: %.1f%% of %d requests through the load balancer failed outside fault windows (limit %.1f%%)",
				ErrAborted, 100*rate, total, 100*r.opts.AbortErrorRate))
			return
		}
	}
}

// ErrorRateOutsideFaults counts requests through the load balancer that
// started outside every fault window (extended by tail after its end, or
// still open), and how many of them failed (no answer or a 5xx).
func ErrorRateOutsideFaults(h *history.History, tail time.Duration) (total, failed int) {
	for _, op := range h.Ops {
		if op.Via != "lb" || op.Kind == history.KindUpload {
			continue
		}
		inFault := false
		for _, f := range h.Faults {
			end := f.End
			if end.IsZero() {
				inFault = !op.Start.Before(f.Start)
			} else {
				inFault = !op.Start.Before(f.Start) && op.Start.Before(end.Add(tail))
			}
			if inFault {
				break
			}
		}
		if inFault {
			continue
		}
		total++
		if op.Outcome != history.OK && (op.Status == 0 || op.Status >= 500) {
			failed++
		}
	}
	return total, failed
}
