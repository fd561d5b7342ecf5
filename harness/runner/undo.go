package runner

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Undo is one recovery the run owes the cluster, and how it went.
type Undo struct {
	What string `json:"what"`
	// Error is why the recovery failed ("" when it worked). A failed
	// recovery is reported, never hidden: the cluster may need a hand.
	Error    string        `json:"error,omitempty"`
	Duration time.Duration `json:"duration"`
}

// Stack holds recoveries registered before their fault is injected and
// undoes them, last first, however the run ends. It implements
// nemesis.Undoer.
type Stack struct {
	mu      sync.Mutex
	entries []stackEntry
	log     *slog.Logger
	// Timeout bounds each recovery (a node that does not come back).
	Timeout time.Duration
}

type stackEntry struct {
	what string
	fn   func(ctx context.Context) error
}

// NewStack returns an empty stack whose recoveries each get timeout.
func NewStack(log *slog.Logger, timeout time.Duration) *Stack {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Stack{log: log, Timeout: timeout}
}

// Push registers a recovery.
func (s *Stack) Push(what string, fn func(ctx context.Context) error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.entries = append(s.entries, stackEntry{what, fn})
}

// Len is how many recoveries are pending.
func (s *Stack) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.entries)
}

// Unwind runs every pending recovery, last registered first, each on a
// context that ctx's cancellation does not reach (an interrupted run must
// still be undone) but bounded by the stack's timeout. It goes on after a
// failure and returns what it did.
func (s *Stack) Unwind(ctx context.Context) []Undo {
	var done []Undo
	for {
		s.mu.Lock()
		if len(s.entries) == 0 {
			s.mu.Unlock()
			return done
		}
		e := s.entries[len(s.entries)-1]
		s.entries = s.entries[:len(s.entries)-1]
		s.mu.Unlock()
		done = append(done, s.run(ctx, e))
	}
}

func (s *Stack) run(ctx context.Context, e stackEntry) (u Undo) {
	u.What = e.what
	start := time.Now()
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.Timeout)
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			u.Error = fmt.Sprintf("panic: %v", p)
		}
		u.Duration = time.Since(start)
		if u.Error != "" {
			s.log.Error("undo failed", "what", e.what, "err", u.Error)
		} else {
			s.log.Info("undone", "what", e.what, "in", u.Duration.Round(time.Millisecond))
		}
	}()
	if err := e.fn(rctx); err != nil {
		u.Error = err.Error()
		if rctx.Err() != nil {
			u.Error = fmt.Sprintf("not done within %s: %v", s.Timeout, err)
		}
	}
	return u
}
