// Package relay is a small TCP relay whose target can be moved and whose
// connections can be reset: the listener of a database failover group
// (clients keep one address while the primary changes), and a link that
// can be cut (WAL shipping to a standby). It exists because those
// behaviours belong to the address, not to either server.
package relay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"
)

// dialTimeout bounds one dial to the target.
const dialTimeout = 3 * time.Second

// Relay forwards every connection accepted on its address to its current
// target.
type Relay struct {
	ln  net.Listener
	log *slog.Logger

	mu     sync.Mutex
	target string
	// refusing: new connections are accepted and reset at once (until
	// refuseUntil, or until Restore when refuseUntil is zero).
	refusing    bool
	refuseUntil time.Time
	conns       map[*pair]struct{}
	closed      bool
	wg          sync.WaitGroup
}

type pair struct{ client, server net.Conn }

// Listen starts a relay on addr forwarding to target.
func Listen(addr, target string, log *slog.Logger) (*Relay, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("relay: listen on %s: %w", addr, err)
	}
	if log == nil {
		log = slog.Default()
	}
	r := &Relay{ln: ln, target: target, conns: map[*pair]struct{}{}, log: log.With("relay", ln.Addr().String())}
	r.wg.Add(1)
	go r.accept()
	return r, nil
}

// Addr is the relay's listening host:port.
func (r *Relay) Addr() string { return r.ln.Addr().String() }

// Target is where new connections go.
func (r *Relay) Target() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.target
}

// SetTarget sends new connections to addr; established ones are left
// alone (ResetAll ends them).
func (r *Relay) SetTarget(addr string) {
	r.mu.Lock()
	r.target = addr
	r.mu.Unlock()
	r.log.Info("relay target moved", "target", addr)
}

// ResetAll closes every established connection with a TCP reset on both
// sides and returns how many there were.
func (r *Relay) ResetAll() int {
	r.mu.Lock()
	ps := make([]*pair, 0, len(r.conns))
	for p := range r.conns {
		ps = append(ps, p)
	}
	r.mu.Unlock()
	for _, p := range ps {
		reset(p.client)
		reset(p.server)
	}
	return len(ps)
}

// Refuse resets every established connection and resets new ones as soon
// as they are accepted, for d (d <= 0: until Restore).
func (r *Relay) Refuse(d time.Duration) int {
	r.mu.Lock()
	r.refusing = true
	r.refuseUntil = time.Time{}
	if d > 0 {
		r.refuseUntil = time.Now().Add(d)
	}
	r.mu.Unlock()
	return r.ResetAll()
}

// Restore accepts connections again.
func (r *Relay) Restore() {
	r.mu.Lock()
	r.refusing = false
	r.refuseUntil = time.Time{}
	r.mu.Unlock()
}

// Refusing reports whether new connections are being refused now.
func (r *Relay) Refusing() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.refusingLocked(time.Now())
}

func (r *Relay) refusingLocked(now time.Time) bool {
	if !r.refusing {
		return false
	}
	if !r.refuseUntil.IsZero() && !now.Before(r.refuseUntil) {
		r.refusing = false
		return false
	}
	return true
}

// Close stops listening and resets every connection.
func (r *Relay) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.mu.Unlock()
	err := r.ln.Close()
	r.ResetAll()
	r.wg.Wait()
	return err
}

func (r *Relay) accept() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			r.log.Warn("relay accept failed", "err", err)
			time.Sleep(10 * time.Millisecond) // e.g. EMFILE: do not spin
			continue
		}
		r.mu.Lock()
		refuse, target, closed := r.refusingLocked(time.Now()), r.target, r.closed
		r.mu.Unlock()
		if refuse || closed {
			reset(c)
			continue
		}
		r.wg.Add(1)
		go r.serve(c, target)
	}
}

func (r *Relay) serve(client net.Conn, target string) {
	defer r.wg.Done()
	ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
	server, err := (&net.Dialer{}).DialContext(ctx, "tcp", target)
	cancel()
	if err != nil {
		reset(client)
		return
	}
	p := &pair{client, server}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		reset(client)
		reset(server)
		return
	}
	r.conns[p] = struct{}{}
	r.mu.Unlock()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		// Half-close so the other direction can drain; a reset ends both.
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(server, client)
	go pipe(client, server)
	<-done
	<-done
	client.Close()
	server.Close()
	r.mu.Lock()
	delete(r.conns, p)
	r.mu.Unlock()
}

// reset closes c with SO_LINGER 0: the peer gets a RST, as after a server
// or network failure, not an orderly FIN.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}
