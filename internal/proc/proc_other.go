//go:build !linux

package proc

import (
	"context"
	"fmt"
	"runtime"
	"syscall"
	"time"
)

func unsupported(what string) error {
	return fmt.Errorf("%s: %w; this is %s/%s", what, ErrUnsupported, runtime.GOOS, runtime.GOARCH)
}

// Credential is the user and group a child runs as (Spec.Credential).
type Credential struct {
	Uid, Gid uint32
}

// Start fails: see ErrUnsupported.
func Start(spec Spec) (*Process, error) {
	return nil, unsupported(fmt.Sprintf("start %s (%s)", spec.Name, spec.Path))
}

// Signal fails: see ErrUnsupported. (No Process exists here: Start fails.)
func (p *Process) Signal(sig syscall.Signal) error {
	return unsupported(fmt.Sprintf("signal %v to %s", sig, p.Name))
}

// Kill fails: see ErrUnsupported.
func (p *Process) Kill(ctx context.Context) error { return p.Signal(syscall.SIGKILL) }

// Pause fails: see ErrUnsupported.
func (p *Process) Pause() error { return unsupported("pause " + p.Name) }

// Resume fails: see ErrUnsupported.
func (p *Process) Resume() error { return unsupported("resume " + p.Name) }

// Stop fails: see ErrUnsupported.
func (p *Process) Stop(ctx context.Context, grace time.Duration) error {
	return p.Signal(syscall.SIGTERM)
}

// Alive reports false: no process started by this package can exist here.
func Alive(pid int) bool { return false }

// KillPID fails: see ErrUnsupported.
func KillPID(pid int) error {
	if pid <= 0 {
		return nil
	}
	return unsupported(fmt.Sprintf("kill pid %d", pid))
}

// SignalPID fails: see ErrUnsupported.
func SignalPID(pid int, sig syscall.Signal) error {
	return unsupported(fmt.Sprintf("signal %v to pid %d", sig, pid))
}

// StopPID fails: see ErrUnsupported.
func StopPID(pid int) error { return unsupported(fmt.Sprintf("stop pid %d", pid)) }

// ContinuePID fails: see ErrUnsupported.
func ContinuePID(pid int) error { return unsupported(fmt.Sprintf("continue pid %d", pid)) }

// StartTime reports false: there is no /proc here.
func StartTime(pid int) (uint64, bool) { return 0, false }

// KillOrphanedGroup is Linux-only.
func KillOrphanedGroup(pgid int, leaderStart uint64) (int, error) {
	return 0, unsupported(fmt.Sprintf("kill the orphaned group %d", pgid))
}

// State reports false: there is no /proc here.
func State(pid int) (byte, bool) { return 0, false }

// Children finds none: there is no /proc here.
func Children(pid int) []int { return nil }

// Descendants finds none: there is no /proc here.
func Descendants(pid int) []int { return nil }

// Cmdline is empty: there is no /proc here.
func Cmdline(pid int) string { return "" }

// RSS is 0: there is no /proc here.
func RSS(pid int) int64 { return 0 }
