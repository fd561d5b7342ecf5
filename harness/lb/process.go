package lb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/octoha/octoha/internal/proc"
)

// Helpers shared by the drivers that run a load-balancer binary as a child.

// startTimeout bounds Start when the caller's context has no deadline.
const startTimeout = 15 * time.Second

// stopGrace is how long a child gets to exit on SIGTERM before SIGKILL.
const stopGrace = 5 * time.Second

// findBinary looks name up in PATH and then in the sbin directories, which
// are often missing from a non-root PATH.
func findBinary(name, install string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/usr/local/sbin", "/sbin"} {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("lb: %s not found in PATH or sbin directories: install it (%s, or `make deps`)", name, install)
}

var versionRE = regexp.MustCompile(`version:? (?:nginx/)?([0-9]+(?:\.[0-9]+)+)`)

// binaryVersion runs `path arg` and extracts a dotted version number; ""
// when it cannot (the version is for Describe only).
func binaryVersion(path, arg string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, _ := exec.CommandContext(ctx, path, arg).CombinedOutput()
	if m := versionRE.FindSubmatch(out); m != nil {
		return string(m[1])
	}
	return ""
}

// withStartDeadline gives ctx a deadline if it has none.
func withStartDeadline(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, startTimeout)
}

// pollUntil calls ready every 20ms until it returns nil, exited is closed or
// ctx ends, and returns the last error seen in the latter two cases.
func pollUntil(ctx context.Context, exited <-chan struct{}, what string, ready func(context.Context) error) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		err := ready(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("process exited while waiting for %s (last: %v)", what, err)
		case <-ctx.Done():
			return fmt.Errorf("wait for %s: %w (last: %v)", what, ctx.Err(), err)
		case <-t.C:
		}
	}
}

// dialTCP checks that addr accepts a TCP connection.
func dialTCP(ctx context.Context, addr string) error {
	d := net.Dialer{Timeout: time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	return c.Close()
}

// checkBindable fails fast, with a plain message, when listen is taken, so
// nginx does not spend 2.5 s retrying bind() before it gives up. Another
// process can still take the address before the child binds; the child's
// own error then reports it.
func checkBindable(listen string) error {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listen address %s is not available: %w", listen, err)
	}
	return ln.Close()
}

// logSink is where a child's output goes: the caller's writer, a file in
// Dir, and a tail kept for error messages.
type logSink struct {
	file *os.File
	tail *proc.Tail
	w    io.Writer
}

func openLogSink(path string, extra io.Writer) (*logSink, error) {
	f, err := openPrivateLog(path)
	if err != nil {
		return nil, err
	}
	s := &logSink{file: f, tail: proc.NewTail(4096, nil)}
	ws := []io.Writer{f, s.tail}
	if extra != nil {
		ws = append(ws, extra)
	}
	s.w = io.MultiWriter(ws...)
	return s, nil
}

// openPrivateLog opens (creating) a log for appending, readable by its
// owner only: requests may carry keys in ways the harness does not
// control (a ?apikey= in an error line), and run directories may sit in a
// shared /tmp. A log left by an earlier run is made private too.
func openPrivateLog(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lb: open log %s: %w", path, err)
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return nil, fmt.Errorf("lb: make log %s private: %w", path, err)
	}
	return f, nil
}

func (s *logSink) Write(p []byte) (int, error) { return s.w.Write(p) }

func (s *logSink) Close() error { return s.file.Close() }

// withTail appends the child's recent output to err.
func (s *logSink) withTail(err error) error {
	if t := strings.TrimSpace(s.tail.String()); t != "" {
		return fmt.Errorf("%w\n--- recent output ---\n%s", err, t)
	}
	return err
}

// errNotRunning is returned by States and controls on a stopped balancer.
var errNotRunning = errors.New("load balancer is not running")
