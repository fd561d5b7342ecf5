package traffic

import (
	"context"
	"errors"
	"net"
	"sync"
	"syscall"
	"time"
)

// answerGrace bounds how long a write that met a closed connection waits
// for the connection's reader (see answerFirstConn). The reader learns of
// a reset at once; the bound only guards against a peer that stops
// reading without closing.
const answerGrace = 10 * time.Second

// answerFirstConn makes the server's answer win over the client's own
// write error. A server (or a load balancer) may answer an upload before
// taking all of it — a 413, a 409, Caddy's empty 200 at its read_body
// limit — and close at once with the client still sending; the client's
// next write then fails (reset, broken pipe) while the answer is already
// in its socket. net/http's Transport returns whichever of the two its
// goroutines report first, so the same answer was recorded sometimes as a
// 200 and sometimes as a connection that broke. Here a write that meets a
// closed connection reports its error only once the reader has failed too
// (it has read whatever the server sent) or the connection is closed (the
// Transport took the answer and gave the connection up).
type answerFirstConn struct {
	net.Conn
	once     sync.Once
	readDone chan struct{} // closed when a Read fails or the conn is closed
}

func newAnswerFirstConn(c net.Conn) *answerFirstConn {
	return &answerFirstConn{Conn: c, readDone: make(chan struct{})}
}

func (c *answerFirstConn) stop() { c.once.Do(func() { close(c.readDone) }) }

func (c *answerFirstConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil {
		c.stop()
	}
	return n, err
}

func (c *answerFirstConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if err != nil && (errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)) {
		t := time.NewTimer(answerGrace)
		defer t.Stop()
		select {
		case <-c.readDone:
		case <-t.C:
		}
	}
	return n, err
}

func (c *answerFirstConn) Close() error {
	c.stop()
	return c.Conn.Close()
}

// answerFirstDial wraps dial's connections in answerFirstConn.
func answerFirstDial(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return newAnswerFirstConn(c), nil
	}
}
