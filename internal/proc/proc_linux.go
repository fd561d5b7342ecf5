//go:build linux

package proc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Credential is the user and group a child runs as (Spec.Credential).
type Credential = syscall.Credential

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

// KillPID sends SIGKILL to a process we started earlier (known by PID from
// a state file) and, if it leads its own process group (as every child
// Start makes does), to that group. A group the process does not lead was
// not made by Start, and is never signalled. The caller must have made sure
// pid is still the process it started (StartTime).
func KillPID(pid int) error {
	if pid <= 0 {
		return nil
	}
	if pgid, err := syscall.Getpgid(pid); err == nil && pgid == pid {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill pid %d: %w", pid, err)
	}
	return nil
}

// SignalPID sends sig to the single process pid (not its group), e.g. a
// reload (SIGHUP) to a server's master process, or SIGTERM to a detached
// cluster owner known from a state file.
func SignalPID(pid int, sig syscall.Signal) error { return syscall.Kill(pid, sig) }

// StopPID freezes the single process pid (SIGSTOP).
func StopPID(pid int) error { return syscall.Kill(pid, syscall.SIGSTOP) }

// ContinuePID continues the single process pid (SIGCONT).
func ContinuePID(pid int) error { return syscall.Kill(pid, syscall.SIGCONT) }

// StartTime is a process's start time (field 22 of /proc/<pid>/stat, in
// clock ticks since boot): with the PID it names one process for the life
// of the system, where the PID alone may be reused (pid_max is often
// 32768). ok is false when it cannot be read.
func StartTime(pid int) (uint64, bool) {
	if pid <= 0 {
		return 0, false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	// The command (field 2) may hold spaces and parentheses: count fields
	// after the last ')', where field 3 (state) is index 0.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return 0, false
	}
	t, err := strconv.ParseUint(f[19], 10, 64)
	return t, err == nil
}

// statFields returns a process's /proc/<pid>/stat fields from field 3
// (state) on; nil when it cannot be read.
func statFields(pid int) []string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(string(b[i+1:]))
}

// KillOrphanedGroup SIGKILLs what is left of a process group whose leader
// (pid pgid, started at leaderStart) has died: a server's workers outlive
// their master when the master is killed (an nginx worker survived its
// master's SIGKILL for half an hour). It acts only when no process holds
// the PID pgid any more — Linux never hands out a PID that is still some
// group's ID, so the members left are the leader's own — or only by the
// leader itself as an unreaped zombie, and only on members started after
// the leader. It returns how many it signalled.
func KillOrphanedGroup(pgid int, leaderStart uint64) (int, error) {
	if pgid <= 1 {
		return 0, nil
	}
	if f := statFields(pgid); f != nil {
		// The PID is still taken: by our dead leader as a zombie nobody
		// reaped (its start time says so), or by someone else.
		if start, err := strconv.ParseUint(f[19], 10, 64); len(f) < 20 || f[0] != "Z" || err != nil || start != leaderStart {
			return 0, nil
		}
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, fmt.Errorf("list processes: %w", err)
	}
	n := 0
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		f := statFields(pid)
		// f[2] is field 5 (pgrp), f[19] field 22 (starttime).
		if len(f) < 20 || f[2] != strconv.Itoa(pgid) {
			continue
		}
		if start, err := strconv.ParseUint(f[19], 10, 64); err != nil || start < leaderStart {
			continue
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err == nil {
			n++
		}
	}
	return n, nil
}

// State is the state letter of a process (field 3 of /proc/<pid>/stat:
// R, S, D, T when stopped, Z when a zombie, …); ok is false when the
// process cannot be read.
func State(pid int) (byte, bool) {
	f := statFields(pid)
	if len(f) < 1 || f[0] == "" {
		return 0, false
	}
	return f[0][0], true
}

// parents maps every process's PID to its parent's, with its state, from
// one scan of /proc.
func parents() map[int]struct {
	ppid  int
	state string
} {
	out := map[int]struct {
		ppid  int
		state string
	}{}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return out
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		f := statFields(pid)
		if len(f) < 2 {
			continue
		}
		if ppid, err := strconv.Atoi(f[1]); err == nil {
			out[pid] = struct {
				ppid  int
				state string
			}{ppid, f[0]}
		}
	}
	return out
}

// Children lists the live children of pid (zombies left out).
func Children(pid int) []int {
	var kids []int
	for c, p := range parents() {
		if p.ppid == pid && p.state != "Z" && p.state != "X" {
			kids = append(kids, c)
		}
	}
	return kids
}

// Descendants lists every process below pid, breadth first.
func Descendants(pid int) []int {
	children := map[int][]int{}
	for c, p := range parents() {
		children[p.ppid] = append(children[p.ppid], c)
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		for _, c := range children[cur] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}

// Cmdline is a process's command line, its arguments joined by NULs ("" when
// it cannot be read).
func Cmdline(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return ""
	}
	return string(b)
}

// RSS is a process's resident set size in bytes (0 when it cannot be read).
func RSS(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
