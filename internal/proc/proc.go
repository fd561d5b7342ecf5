// Package proc starts and controls the child processes of a run (fake
// nodes, load balancers, database and share servers) so that none outlives
// the harness: each child leads its own process group, is sent SIGKILL by
// the kernel if the harness dies (parent-death signal), and is stopped as a
// group.
package proc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

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
	Credential *syscall.Credential
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

// Start starts the child in its own process group.
func Start(spec Spec) (*Process, error) {
	cmd := exec.Command(spec.Path, spec.Args...)
	cmd.Dir = spec.Dir
	cmd.Env = spec.Env
	if spec.Log != nil {
		cmd.Stdout = spec.Log
		cmd.Stderr = spec.Log
	}
	attr := &syscall.SysProcAttr{Setpgid: true, Credential: spec.Credential}
	if !spec.Detached {
		attr.Pdeathsig = syscall.SIGKILL
	} else {
		attr.Setpgid = false
		attr.Setsid = true
	}
	cmd.SysProcAttr = attr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s (%s): %w", spec.Name, spec.Path, err)
	}
	p := &Process{Name: spec.Name, cmd: cmd, done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(p.done)
	}()
	return p, nil
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

// Signal sends sig to the child's whole process group.
func (p *Process) Signal(sig syscall.Signal) error {
	if p.Exited() {
		return nil
	}
	if err := syscall.Kill(-p.PID(), sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signal %v to %s (pgid %d): %w", sig, p.Name, p.PID(), err)
	}
	return nil
}

// Kill sends SIGKILL to the group and waits for the child to be reaped.
func (p *Process) Kill(ctx context.Context) error {
	// A stopped group must be continued after the kill so it can die promptly.
	if err := p.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	_ = p.Signal(syscall.SIGCONT)
	return p.Wait(ctx)
}

// Pause stops the group with SIGSTOP (a frozen, not dead, process).
func (p *Process) Pause() error { return p.Signal(syscall.SIGSTOP) }

// Resume continues a paused group.
func (p *Process) Resume() error { return p.Signal(syscall.SIGCONT) }

// Stop asks the group to exit with SIGTERM and kills it if it has not
// exited within grace.
func (p *Process) Stop(ctx context.Context, grace time.Duration) error {
	if p.Exited() {
		return nil
	}
	if err := p.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	_ = p.Signal(syscall.SIGCONT) // a paused child cannot act on SIGTERM
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
		return nil
	case <-t.C:
		return p.Kill(ctx)
	case <-ctx.Done():
		_ = p.Signal(syscall.SIGKILL)
		return ctx.Err()
	}
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

// Alive reports whether a process with this PID exists (and is not a zombie
// we could see).
func Alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	if err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	// A zombie still answers kill(0); look at its state.
	b, rerr := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if rerr != nil {
		return true
	}
	for i := len(b) - 1; i > 0; i-- {
		if b[i] == ')' && i+2 < len(b) {
			return b[i+2] != 'Z' && b[i+2] != 'X'
		}
	}
	return true
}

// KillPID sends SIGKILL to a process group we started earlier (known by PID
// from a state file) and to the process itself.
func KillPID(pid int) error {
	if pid <= 0 {
		return nil
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill pid %d: %w", pid, err)
	}
	return nil
}
