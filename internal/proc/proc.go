// Package proc starts and controls the child processes of a run (fake
// nodes, load balancers, database and share servers) so that none outlives
// the harness: each child leads its own process group, is sent SIGKILL by
// the kernel if the harness dies (parent-death signal), and is stopped as a
// group. All of that is Linux's: elsewhere Start and the functions that
// signal processes return ErrUnsupported (see proc_other.go).
package proc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"sync"
)

// ErrUnsupported is returned on every platform but Linux by the functions
// that start or signal processes: the guarantees this package gives (a
// process group per child, the parent-death signal, SIGSTOP/SIGCONT) are
// Linux's. The harness uses processes only for the local provider; the
// external provider and the client commands need none of this.
var ErrUnsupported = errors.New("starting and signalling child processes needs Linux (process groups, parent-death signal, SIGSTOP)")

// Spec describes a child process.
type Spec struct {
	Name string   // for errors and logs, e.g. "node Node1"
	Path string   // executable
	Args []string // arguments, without argv[0]
	Dir  string
	Env  []string // nil: inherit
	// Log receives stdout and stderr; nil discards them.
	Log io.Writer
	// Credential runs the child as another user (e.g. postgres refuses root).
	Credential *Credential
	// Detached leaves out the parent-death signal, for children that must
	// outlive the process that started them (a detached cluster supervisor).
	Detached bool
}

// Process is a running child.
type Process struct {
	Name string
	cmd  *exec.Cmd
	done chan struct{}
	mu   sync.Mutex
	err  error // exit error, set when done closes
}

// PID returns the child's process ID (also its process group ID).
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Done is closed when the child has exited and been reaped.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the child has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Err returns the exit error once Done is closed.
func (p *Process) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// Wait waits for the child to exit.
func (p *Process) Wait(ctx context.Context) error {
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for %s to exit: %w", p.Name, ctx.Err())
	}
}
