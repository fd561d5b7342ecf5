package local

import (
	"context"
	"fmt"
	"time"
)

// StatusOf reads the state of the cluster in dir and its status.
func StatusOf(ctx context.Context, dir string) (StatusReport, error) {
	st, err := ReadState(dir)
	if err != nil {
		return StatusReport{}, fmt.Errorf("no cluster in %s (start one with octoha up): %w", dir, err)
	}
	return Status(ctx, st), nil
}

// WatchStatus hands the status of the cluster in dir to show every
// interval until ctx ends, and returns the last status shown. Stopped
// mid-refresh, the last complete view stands.
func WatchStatus(ctx context.Context, dir string, every time.Duration, show func(StatusReport) error) (StatusReport, error) {
	var rep StatusReport
	for shown := false; ; shown = true {
		r, err := StatusOf(ctx, dir)
		if ctx.Err() != nil && shown {
			return rep, nil
		}
		if err != nil {
			return rep, err
		}
		rep = r
		if err := show(rep); err != nil {
			return rep, err
		}
		select {
		case <-ctx.Done():
			return rep, nil
		case <-time.After(every):
		}
	}
}
