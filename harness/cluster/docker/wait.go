package docker

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/octoha/octoha/harness/cluster"
)

// loopbackStrategy waits for a container through the port it publishes on
// 127.0.0.1, failing fast if the container stops. testcontainers' own
// network strategies dial the daemon's "host", which, when this process
// runs inside a container, is the bridge gateway rather than the loopback
// address our ports are published on.
type loopbackStrategy struct {
	what    string
	addr    string         // 127.0.0.1:port
	ping    bool           // GET the ping path over HTTP; else a TCP connect
	ok      func(int) bool // accepted ping statuses
	timeout time.Duration
}

var _ wait.Strategy = loopbackStrategy{}

// pingWait waits until the ping path on 127.0.0.1:port answers a status ok
// accepts.
func pingWait(what string, port int, timeout time.Duration, ok func(int) bool) loopbackStrategy {
	return loopbackStrategy{what: what, addr: fmt.Sprintf("127.0.0.1:%d", port), ping: true, ok: ok, timeout: timeout}
}

// tcpWait waits until 127.0.0.1:port accepts a TCP connection.
func tcpWait(what string, port int, timeout time.Duration) loopbackStrategy {
	return loopbackStrategy{what: what, addr: fmt.Sprintf("127.0.0.1:%d", port), timeout: timeout}
}

func (s loopbackStrategy) WaitUntilReady(ctx context.Context, target wait.StrategyTarget) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	hc := &http.Client{Timeout: 2 * time.Second}
	var last string
	for i := 0; ; i++ {
		if s.ping {
			code, _, err := cluster.PingStatus(ctx, hc, "http://"+s.addr)
			if err == nil && s.ok(code) {
				return nil
			}
			if err != nil {
				last = err.Error()
			} else {
				last = fmt.Sprintf("ping answered %d", code)
			}
		} else {
			var d net.Dialer
			c, err := d.DialContext(ctx, "tcp", s.addr)
			if err == nil {
				c.Close()
				return nil
			}
			last = err.Error()
		}
		if i%10 == 0 {
			st, err := target.State(ctx)
			if err != nil {
				return fmt.Errorf("%s: container state: %w", s.what, err)
			}
			if !st.Running {
				return fmt.Errorf("%s: container %s (exit code %d) before it answered on %s", s.what, st.Status, st.ExitCode, s.addr)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not answer on %s within %v (last: %s): %w", s.what, s.addr, s.timeout, last, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
