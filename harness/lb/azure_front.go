package lb

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// startIdleRelay relays TCP from listen to target (HAProxy, which expects
// the PROXY protocol) and drops a flow that carried no byte either way
// for idle the way Azure Load Balancer does by default: silently. The
// client gets no FIN and no RST; what it writes afterwards is accepted by
// the kernel and discarded, and no answer ever comes, so it learns only
// from its own timeout. (Azure drops the packets, so the client would
// retransmit until its TCP gives up; either way only a timeout tells.)
// The HAProxy side is closed at the drop.
func startIdleRelay(ctx context.Context, listen, target string, idle time.Duration, log *slog.Logger) (func(context.Context) error, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", listen)
	if err != nil {
		return nil, err
	}
	r := &idleRelay{target: target, idle: idle, log: log, conns: map[net.Conn]struct{}{}}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if !r.track(c) {
				c.Close()
				return
			}
			r.wg.Add(1)
			go func() { defer r.wg.Done(); r.flow(c) }()
		}
	}()
	log.Info("idle relay listening", "addr", listen, "haproxy", target, "idle_timeout", idle)
	return func(context.Context) error {
		err := ln.Close()
		r.mu.Lock()
		r.closed = true
		for c := range r.conns {
			c.Close()
		}
		r.mu.Unlock()
		r.wg.Wait()
		return err
	}, nil
}

type idleRelay struct {
	target string
	idle   time.Duration
	log    *slog.Logger

	wg     sync.WaitGroup
	mu     sync.Mutex
	closed bool
	conns  map[net.Conn]struct{}
}

func (r *idleRelay) track(c net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	r.conns[c] = struct{}{}
	return true
}

func (r *idleRelay) untrack(c net.Conn) {
	r.mu.Lock()
	delete(r.conns, c)
	r.mu.Unlock()
	c.Close()
}

// proxyHeader is the PROXY protocol v1 line for a TCP connection c.
func proxyHeader(c net.Conn) string {
	src, _ := c.RemoteAddr().(*net.TCPAddr)
	dst, _ := c.LocalAddr().(*net.TCPAddr)
	if src == nil || dst == nil || src.IP.To4() == nil || dst.IP.To4() == nil {
		return "PROXY UNKNOWN\r\n"
	}
	return fmt.Sprintf("PROXY TCP4 %s %s %d %d\r\n", src.IP, dst.IP, src.Port, dst.Port)
}

func (r *idleRelay) flow(c net.Conn) {
	defer r.untrack(c)
	up, err := net.DialTimeout("tcp", r.target, 5*time.Second)
	if err != nil {
		r.log.Warn("idle relay: dial haproxy", "err", err)
		return
	}
	if !r.track(up) {
		up.Close()
		return
	}
	defer r.untrack(up)
	if _, err := io.WriteString(up, proxyHeader(c)); err != nil {
		return
	}
	var last atomic.Int64
	last.Store(time.Now().UnixNano())
	var dropped atomic.Bool
	stopWatch := make(chan struct{})
	go func() {
		tick := time.NewTicker(max(r.idle/20, 5*time.Millisecond))
		defer tick.Stop()
		for {
			select {
			case <-stopWatch:
				return
			case now := <-tick.C:
				if now.Sub(time.Unix(0, last.Load())) >= r.idle {
					dropped.Store(true)
					r.log.Info("idle timeout: flow dropped silently (no FIN, no RST to the client)", "client", c.RemoteAddr().String(), "idle", r.idle)
					up.Close()
					return
				}
			}
		}
	}()
	defer close(stopWatch)
	done := make(chan struct{})
	// HAProxy → client. After a drop, the client is told nothing.
	go func() {
		defer close(done)
		buf := make([]byte, 64<<10)
		for {
			n, err := up.Read(buf)
			if n > 0 && !dropped.Load() {
				last.Store(time.Now().UnixNano())
				if _, werr := c.Write(buf[:n]); werr != nil {
					up.Close()
					return
				}
			}
			if err != nil {
				if !dropped.Load() {
					// The backend side ended the flow: that FIN passes through.
					if tc, ok := c.(*net.TCPConn); ok {
						_ = tc.CloseWrite()
					}
				}
				return
			}
		}
	}()
	// Client → HAProxy; after a drop, whatever the client sends vanishes.
	buf := make([]byte, 64<<10)
	var late int64
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if dropped.Load() {
				if late == 0 {
					r.log.Info("idle-dropped flow: client wrote again; discarded, no answer", "client", c.RemoteAddr().String(), "bytes", n)
				}
				late += int64(n)
			} else {
				last.Store(time.Now().UnixNano())
				if _, werr := up.Write(buf[:n]); werr != nil && !dropped.Load() {
					break
				}
			}
		}
		if err != nil {
			if !dropped.Load() {
				if tc, ok := up.(*net.TCPConn); ok {
					_ = tc.CloseWrite()
				}
				<-done
			}
			break
		}
	}
}

// Gateway front errors, each naming the Azure setting behind it.
var (
	errGatewayTimeout = errors.New("application gateway request timeout")
	errWAFLimit       = errors.New("application gateway WAF size limit")
)

// startGatewayFront serves Application Gateway's L7 behaviour HAProxy has
// no setting for, and forwards everything else to HAProxy at target:
//
//   - the backend request timeout: from the moment the gateway starts
//     forwarding a request until the backend's response headers arrive,
//     a total limit (not an inactivity timer). The request body streams
//     (request buffering off, as a 1 GB upload needs), so an upload that
//     lasts longer than the timeout gets 504, as it does behind a gateway
//     with the default 20 s;
//   - with WAF on, the file-upload limit for multipart bodies with a
//     filename and the request-body limit for other bodies, on declared
//     Content-Length (413 at once) and on streamed bytes for chunked
//     bodies (the official clients send them): the request to the backend
//     is cut where the limit is crossed, and the client gets 413.
func startGatewayFront(ctx context.Context, o Options, target string, log *slog.Logger) (func(context.Context) error, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", o.Listen)
	if err != nil {
		return nil, err
	}
	a := o.Azure
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: o.ConnectTimeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	to := &url.URL{Scheme: "http", Host: target}
	g := &gatewayFront{a: a, log: log}
	g.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(to)
			pr.Out.Host = pr.In.Host
			pr.SetXForwarded()
		},
		Transport:     tr,
		FlushInterval: -1,
		ModifyResponse: func(resp *http.Response) error {
			// The backend answered: the request timeout no longer applies.
			if st, ok := resp.Request.Context().Value(frontKey{}).(*frontState); ok {
				st.timer.Stop()
			}
			return nil
		},
		ErrorHandler: g.proxyError,
	}
	srv := &http.Server{
		Handler:           g,
		ReadHeaderTimeout: o.HeaderTimeout,
		IdleTimeout:       o.ClientTimeout,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("gateway front", "err", err)
		}
	}()
	log.Info("gateway front listening", "addr", o.Listen, "haproxy", target, "request_timeout", a.RequestTimeout, "waf", a.WAF)
	return func(ctx context.Context) error {
		sctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		err := srv.Shutdown(sctx)
		if err != nil {
			err = srv.Close()
		}
		<-done
		tr.CloseIdleConnections()
		return err
	}, nil
}

type gatewayFront struct {
	a     Azure
	log   *slog.Logger
	proxy *httputil.ReverseProxy
}

// frontState is one request's request-timeout timer and WAF counter.
type frontState struct {
	timer *time.Timer
	waf   *wafLimitBody
}

type frontKey struct{}

func (g *gatewayFront) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	st := &frontState{}
	if g.a.WAF && r.Body != nil && r.Body != http.NoBody {
		lb, err := g.wafBody(r)
		if err != nil {
			g.log.Info("WAF: request refused", "method", r.Method, "path", r.URL.Path, "err", err)
			lingerAnswer(w, http.StatusRequestEntityTooLarge, "413 Request Entity Too Large: "+err.Error()+"\n")
			return
		}
		r.Body, st.waf = lb, lb
	}
	ctx, cancel := context.WithCancelCause(r.Context())
	defer cancel(nil)
	st.timer = time.AfterFunc(g.a.RequestTimeout, func() { cancel(errGatewayTimeout) })
	defer st.timer.Stop()
	g.proxy.ServeHTTP(w, r.WithContext(context.WithValue(ctx, frontKey{}, st)))
}

func (g *gatewayFront) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(context.Cause(r.Context()), errGatewayTimeout) {
		msg := fmt.Sprintf("504 Gateway Timeout: application gateway request timeout: the backend did not answer within %s (Azure backend setting \"Request time-out\"; octoha lb.azure.requestTimeout)\n", g.a.RequestTimeout)
		g.log.Warn("request timeout", "method", r.Method, "path", r.URL.Path, "timeout", g.a.RequestTimeout)
		lingerAnswer(w, http.StatusGatewayTimeout, msg)
		return
	}
	if st, ok := r.Context().Value(frontKey{}).(*frontState); ok && st.waf != nil && st.waf.tripped.Load() {
		b := st.waf
		msg := fmt.Sprintf("413 Request Entity Too Large: application gateway WAF %s of %d bytes exceeded by a streamed body (octoha lb.azure.%s)\n", b.what, b.limit, b.setting)
		g.log.Info("WAF: streamed body cut", "method", r.Method, "path", r.URL.Path, "limit", b.limit)
		lingerAnswer(w, http.StatusRequestEntityTooLarge, msg)
		return
	}
	g.log.Warn("proxy error", "method", r.Method, "path", r.URL.Path, "err", err)
	http.Error(w, "502 Bad Gateway", http.StatusBadGateway)
}

// wafBody picks the WAF limit that applies to r, refuses a declared length
// above it and returns the body wrapped to enforce it on streamed bytes.
func (g *gatewayFront) wafBody(r *http.Request) (*wafLimitBody, error) {
	br := bufio.NewReaderSize(r.Body, 16<<10)
	limit, what, setting := g.a.WAFRequestBodyLimit, "request body limit", "wafRequestBodyLimit"
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err == nil && mt == "multipart/form-data" {
		// The first part's headers are in the first few hundred bytes.
		head, _ := br.Peek(8 << 10)
		if i := bytes.Index(head, []byte("\r\n\r\n")); i >= 0 && bytes.Contains(bytes.ToLower(head[:i]), []byte("filename=")) {
			limit, what, setting = g.a.WAFFileUploadLimit, "file upload limit", "wafFileUploadLimit"
		}
	}
	if r.ContentLength > limit {
		return nil, fmt.Errorf("application gateway WAF %s of %d bytes exceeded (Content-Length %d; octoha lb.azure.%s)", what, limit, r.ContentLength, setting)
	}
	return &wafLimitBody{r: br, c: r.Body, limit: limit, what: what, setting: setting}, nil
}

// wafLimitBody fails the read that crosses limit.
type wafLimitBody struct {
	r       io.Reader
	c       io.Closer
	n       int64
	limit   int64
	what    string
	setting string
	tripped atomic.Bool
}

func (b *wafLimitBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.n += int64(n)
	if b.n > b.limit {
		b.tripped.Store(true)
		return 0, fmt.Errorf("%w: %s %d bytes", errWAFLimit, b.what, b.limit)
	}
	return n, err
}

func (b *wafLimitBody) Close() error { return b.c.Close() }

// lingerAnswer answers code to a client that may still be sending its
// body, then reads and discards for lingerFor before closing (closing at
// once would make the client's TCP reset the connection and drop the
// answer unread). See requestTimedOut.
func lingerAnswer(w http.ResponseWriter, code int, msg string) {
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		http.Error(w, msg, code)
		return
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(lingerFor))
	fmt.Fprintf(brw, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", code, http.StatusText(code), len(msg), msg)
	if brw.Flush() != nil {
		return
	}
	_, _ = io.Copy(io.Discard, conn)
}
