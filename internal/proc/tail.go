package proc

import (
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
)

// Tail keeps the last bytes of a child's output so that an error can quote
// why it failed to start, and forwards everything to another writer
// (best effort: a failing log sink must never stall or kill the child's
// output pipe). It is safe for concurrent writers.
type Tail struct {
	mu      sync.Mutex
	max     int
	b       []byte
	forward io.Writer
}

// NewTail keeps the last max bytes and forwards to w (which may be nil).
func NewTail(max int, w io.Writer) *Tail { return &Tail{max: max, forward: w} }

func (t *Tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	t.mu.Unlock()
	if t.forward != nil {
		_, _ = t.forward.Write(p)
	}
	return len(p), nil
}

// String is the kept output, without surrounding blank space.
func (t *Tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.b))
}

// Indented is the kept output indented by two spaces, or "(no output)".
func (t *Tail) Indented() string {
	s := t.String()
	if s == "" {
		return "  (no output)"
	}
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}

// FreePort asks the kernel for a TCP port free on host right now. Another
// process may take it before the child binds it; the child's own bind
// error then says so.
func FreePort(host string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, fmt.Errorf("pick a free port on %s: %w", host, err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
