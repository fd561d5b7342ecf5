package postgres

// Controlling a running server: stop, kill, start again, restart, pause\n// and resume (its whole process tree).

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/octoha/octoha/internal/proc"
)

// Stop shuts the server down cleanly ("fast" shutdown: SIGINT to the
// postmaster, which disconnects clients and writes a checkpoint) and waits
// for it to exit. A paused server is resumed first. If ctx ends or the
// shutdown takes longer than 30s, the server is killed.
func (s *Server) Stop(ctx context.Context) error {
	p := s.running()
	if p == nil {
		return nil
	}
	// Only the postmaster gets SIGINT: it shuts its children down in order.
	if err := proc.SignalPID(p.PID(), syscall.SIGINT); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("postgres: stop %s: %w", s.Addr(), err)
	}
	resumeTree(p)
	t := time.NewTimer(stopGrace)
	defer t.Stop()
	select {
	case <-p.Done():
		return nil
	case <-t.C:
		if err := s.Kill(ctx); err != nil {
			return fmt.Errorf("postgres: kill %s after a %v fast shutdown: %w", s.Addr(), stopGrace, err)
		}
		return nil
	case <-ctx.Done():
		_ = s.Kill(context.WithoutCancel(ctx))
		return fmt.Errorf("postgres: stop %s: %w (killed)", s.Addr(), ctx.Err())
	}
}

// PostgreSQL makes every child of the postmaster (backends, checkpointer,
// WAL writer…) the leader of its own process group, so a signal to the
// postmaster's group reaches the postmaster alone. Pause and Kill must reach
// every process, or a "paused" server keeps answering on open connections
// and a "crashed" one leaves backends behind. The postmaster is stopped
// first so that it cannot fork while its children are being listed.

// Kill sends SIGKILL to the postmaster and all its children (a crash) and
// waits until they are gone. StartAgain then runs crash recovery.
func (s *Server) Kill(ctx context.Context) error {
	p := s.running()
	if p == nil {
		return nil
	}
	freeze(p.PID())
	kids := proc.Descendants(p.PID())
	for _, k := range kids {
		_ = proc.SignalPID(k, syscall.SIGKILL)
	}
	if err := p.Kill(ctx); err != nil {
		return fmt.Errorf("postgres: kill %s: %w", s.Addr(), err)
	}
	// The children are reparented and reaped by init; wait until they are
	// gone so that a restart finds no old backend holding shared memory.
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		alive := 0
		for _, k := range kids {
			if proc.Alive(k) {
				alive++
			}
		}
		if alive == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("postgres: kill %s: %d child processes still alive: %w", s.Addr(), alive, ctx.Err())
		case <-tick.C:
		}
	}
}

// StartAgain starts the server on the same data directory, address and
// credentials after Stop or Kill, and waits until a connection succeeds.
func (s *Server) StartAgain(ctx context.Context) error {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return fmt.Errorf("postgres: start %s again: server was closed", s.Addr())
	}
	if err := s.launch(ctx); err != nil {
		return err
	}
	return s.waitReady(ctx)
}

// Restart stops the server (if running) and starts it again.
func (s *Server) Restart(ctx context.Context) error {
	if err := s.Stop(ctx); err != nil {
		return err
	}
	return s.StartAgain(ctx)
}

// Pause freezes the postmaster and all its children (SIGSTOP): connections
// stay open but nothing answers, like a hung VM.
func (s *Server) Pause() error {
	p := s.running()
	if p == nil {
		return fmt.Errorf("postgres: pause %s: not running", s.Addr())
	}
	if !freeze(p.PID()) {
		return fmt.Errorf("postgres: pause %s: postmaster pid %d did not stop", s.Addr(), p.PID())
	}
	for _, k := range proc.Descendants(p.PID()) {
		_ = proc.StopPID(k)
	}
	return nil
}

// Resume continues a paused server.
func (s *Server) Resume() error {
	p := s.running()
	if p == nil {
		return fmt.Errorf("postgres: resume %s: not running", s.Addr())
	}
	resumeTree(p)
	return nil
}

// resumeTree continues the postmaster's children, then the postmaster.
func resumeTree(p *proc.Process) {
	for _, k := range proc.Descendants(p.PID()) {
		_ = proc.ContinuePID(k)
	}
	_ = p.Resume()
}

// freeze sends SIGSTOP to pid and waits (briefly) until it has stopped:
// kill(2) returns before the signal is acted on. It reports whether the
// process stopped (or is gone).
func freeze(pid int) bool {
	if err := proc.StopPID(pid); err != nil {
		return errors.Is(err, syscall.ESRCH)
	}
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		st, ok := proc.State(pid)
		if !ok || st == 'T' || st == 't' || st == 'Z' || st == 'X' {
			return true
		}
		time.Sleep(time.Millisecond) // polling a kernel state change, bounded above
	}
	return false
}

// Close stops the server (killing it if a clean stop fails) and removes the
// directory if Start created it; a Dir given in Options is left for the
// caller. Close is idempotent; the server cannot be started again after it.
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	err := s.Stop(ctx)
	if err != nil {
		if kerr := s.Kill(context.WithoutCancel(ctx)); kerr != nil {
			err = errors.Join(err, kerr)
		}
	}
	if s.tempSock {
		if rerr := os.RemoveAll(s.sockDir); rerr != nil {
			err = errors.Join(err, fmt.Errorf("postgres: remove %s: %w", s.sockDir, rerr))
		}
	}
	if s.createdDir {
		if rerr := os.RemoveAll(s.opts.Dir); rerr != nil {
			err = errors.Join(err, fmt.Errorf("postgres: remove %s: %w", s.opts.Dir, rerr))
		}
	}
	return err
}
