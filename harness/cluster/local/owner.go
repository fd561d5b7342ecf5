package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/octoha/octoha/internal/proc"
)

// OwnerOptions start a detached cluster's owner: a process, in a session
// of its own, that brings the cluster up in Dir, keeps it running and
// tears it down when signalled (DownDir).
type OwnerOptions struct {
	// Dir is the run directory (absolute).
	Dir string
	// Path is the owner's executable; Args its arguments, given the path
	// of the log the owner writes until it moves it into the run
	// directory.
	Path string
	Args func(logPath string) []string
	// Timeout is how long the owner may take to report ready (the owner's
	// own ready timeout; ten seconds more are allowed for starting it).
	Timeout time.Duration
}

// StartOwner starts a cluster's owner and waits until it reports the
// cluster ready, returning its state. A run directory that holds a live
// cluster is refused (ErrRunning). The owner's log sits next to the run
// directory (which the owner clears): in the checked base directory by
// default, else in the run directory's parent, which may be shared
// (/tmp); it is created afresh, never through a link someone planted.
func StartOwner(ctx context.Context, o OwnerOptions) (*State, error) {
	if st, err := ReadState(o.Dir); err == nil && st.Alive() {
		return nil, fmt.Errorf("%w: %s (pid %d); run `octoha down --run-dir %s` first", ErrRunning, o.Dir, st.SupervisorPID, o.Dir)
	}
	if err := PrepareParent(o.Dir); err != nil {
		return nil, err
	}
	logPath := o.Dir + ".up.log"
	logf, err := CreateFile(logPath, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create supervisor log: %w", err)
	}
	defer logf.Close()
	p, err := proc.Start(proc.Spec{Name: "cluster owner", Path: o.Path, Args: o.Args(logPath), Log: logf, Detached: true, Env: os.Environ()})
	if err != nil {
		return nil, err
	}
	deadline := time.After(o.Timeout + 10*time.Second)
	for {
		if st, err := ReadState(o.Dir); err == nil && st.Ready && st.SupervisorPID == p.PID() {
			return st, nil
		}
		select {
		case <-p.Done():
			// Through the open file: the owner may have moved it.
			b, _ := io.ReadAll(io.NewSectionReader(logf, 0, 1<<30))
			os.Remove(logPath)
			return nil, fmt.Errorf("cluster did not come up:\n%s", lastLines(string(b), 40))
		case <-ctx.Done():
			_ = p.Signal(syscall.SIGTERM)
			_ = p.Wait(context.Background())
			os.Remove(logPath)
			return nil, ctx.Err()
		case <-deadline:
			_ = p.Signal(syscall.SIGTERM)
			_ = p.Wait(context.Background())
			return nil, errors.New("cluster did not become ready in time; see " + logPath)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// lastLines is the last n lines of s.
func lastLines(s string, n int) string {
	parts := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(parts) > n {
		parts = parts[len(parts)-n:]
	}
	return strings.Join(parts, "\n")
}
