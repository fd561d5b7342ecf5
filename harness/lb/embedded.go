package lb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// embeddedLB is an in-process reverse proxy with HAProxy-like semantics:
// round robin over healthy servers, active checks, optional cookie
// stickiness, streamed bodies without a size limit. It exists only as the
// fallback when no load-balancer binary is installed.
type embeddedLB struct {
	o Options

	mu      sync.Mutex
	srv     *http.Server
	checker *healthChecker
	cancel  context.CancelFunc
	done    chan struct{} // closed when the checker and server have stopped
	logFile *os.File
}

var (
	_ Balancer   = (*embeddedLB)(nil)
	_ Controller = (*embeddedLB)(nil)
)

func newEmbedded(o Options) *embeddedLB { return &embeddedLB{o: o} }

func (e *embeddedLB) Kind() Kind  { return Embedded }
func (e *embeddedLB) URL() string { return "http://" + e.o.Listen }
func (e *embeddedLB) PID() int    { return 0 }

func (e *embeddedLB) Describe() string {
	if e.o.RequestTimeout > 0 {
		return fmt.Sprintf("in-process Go proxy with a total request read timeout of %s (Go's ReadTimeout, as Traefik v3's readTimeout; checks every %s fall %d rise %d)",
			cfgDuration(e.o.RequestTimeout), cfgDuration(e.o.Interval), e.o.Fall, e.o.Rise)
	}
	return fmt.Sprintf("EMBEDDED in-process Go proxy (no load-balancer binary installed; checks every %s fall %d rise %d)",
		cfgDuration(e.o.Interval), e.o.Fall, e.o.Rise)
}

// Start listens on Listen and starts the health checker.
func (e *embeddedLB) Start(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.srv != nil {
		return errors.New("start embedded proxy: already running")
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", e.o.Listen)
	if err != nil {
		return fmt.Errorf("start embedded proxy: %w", err)
	}
	var logw io.Writer = io.Discard
	var logFile *os.File
	if e.o.Dir != "" {
		if err := os.MkdirAll(e.o.Dir, 0o755); err != nil {
			ln.Close()
			return fmt.Errorf("start embedded proxy: %w", err)
		}
		logFile, err = openPrivateLog(filepath.Join(e.o.Dir, "embedded.log"))
		if err != nil {
			ln.Close()
			return fmt.Errorf("start embedded proxy: %w", err)
		}
		logw = logFile
	}
	if e.o.Log != nil {
		logw = io.MultiWriter(logw, e.o.Log)
	}
	log := slog.New(slog.NewTextHandler(logw, nil)).With("lb", "embedded")

	checker := newHealthChecker(e.o, log)
	h := &embeddedHandler{o: e.o, checker: checker, log: log, proxies: map[string]*httputil.ReverseProxy{}}
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: e.o.ConnectTimeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: e.o.ServerTimeout, // think time after the body
		DisableCompression:    true,
	}
	for _, be := range e.o.Backends {
		target := &url.URL{Scheme: "http", Host: be.Addr}
		h.proxies[be.Name] = &httputil.ReverseProxy{
			Rewrite: func(pr *httputil.ProxyRequest) {
				pr.SetURL(target)
				pr.Out.Host = pr.In.Host // pass Host through, as HAProxy does
				if e.o.RequestTimeout > 0 && pr.Out.Body != nil && pr.Out.Body != http.NoBody {
					pr.Out.Body = &deadlineBody{ReadCloser: pr.Out.Body}
				}
			},
			Transport:     tr,
			FlushInterval: -1, // stream responses; request bodies stream anyway
			ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
				log.Warn("proxy error", "server", be.Name, "method", r.Method, "path", r.URL.Path, "err", err)
				if db, ok := r.Body.(*deadlineBody); ok && db.expired.Load() {
					// The client's request outlasted the total read limit.
					requestTimedOut(w, fmt.Sprintf("408 Request Timeout: the whole request must arrive within %s (readTimeout)\n", e.o.RequestTimeout))
					return
				}
				http.Error(w, "502 Bad Gateway: "+be.Name+" failed", http.StatusBadGateway)
			},
		}
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: e.o.HeaderTimeout,
		ReadTimeout:       e.o.RequestTimeout,
		IdleTimeout:       e.o.ClientTimeout,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	cctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); checker.run(cctx) }()
	go func() {
		defer wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("serve", "err", err)
		}
	}()
	go func() { wg.Wait(); tr.CloseIdleConnections(); close(done) }()
	e.srv, e.checker, e.cancel, e.done, e.logFile = srv, checker, cancel, done, logFile
	log.Info("listening", "addr", e.o.Listen, "backends", len(e.o.Backends))
	return nil
}

// Stop closes the listener, gives in-flight requests until ctx ends (at
// most a few seconds), then closes every connection.
func (e *embeddedLB) Stop(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.srv == nil {
		return nil
	}
	sctx, cancel := context.WithTimeout(ctx, stopGrace)
	defer cancel()
	var err error
	if serr := e.srv.Shutdown(sctx); serr != nil {
		err = e.srv.Close()
	}
	e.cancel()
	select {
	case <-e.done:
	case <-ctx.Done():
		err = errors.Join(err, ctx.Err())
	}
	if e.logFile != nil {
		e.logFile.Close()
	}
	e.srv, e.checker, e.cancel, e.done, e.logFile = nil, nil, nil, nil, nil
	if err != nil {
		return fmt.Errorf("stop embedded proxy: %w", err)
	}
	return nil
}

func (e *embeddedLB) running() (*healthChecker, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.srv == nil {
		return nil, errNotRunning
	}
	return e.checker, nil
}

// States reports the health checker's view.
func (e *embeddedLB) States(ctx context.Context) ([]ServerState, error) {
	c, err := e.running()
	if err != nil {
		return nil, fmt.Errorf("embedded states: %w", err)
	}
	return c.states(), nil
}

// SetServerState sets an operator state like HAProxy's `set server … state`:
// UP = ready, DRAIN, MAINT (DOWN = MAINT).
func (e *embeddedLB) SetServerState(ctx context.Context, name string, state State) error {
	c, err := e.running()
	if err != nil {
		return fmt.Errorf("embedded set server %s %s: %w", name, state, err)
	}
	return c.setAdmin(name, state)
}

// embeddedHandler picks a backend per request and proxies to it.
type embeddedHandler struct {
	o       Options
	checker *healthChecker
	log     *slog.Logger
	proxies map[string]*httputil.ReverseProxy
	next    atomic.Uint64
}

func (h *embeddedHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	name, setCookie := h.pick(r)
	if name == "" {
		h.log.Warn("no server available", "method", r.Method, "path", r.URL.Path)
		http.Error(w, "503 Service Unavailable: no server is available to handle this request", http.StatusServiceUnavailable)
		return
	}
	if h.o.Sticky {
		stripCookie(r, CookieName) // `indirect`: the node never sees it
		if setCookie {
			w.Header().Add("Set-Cookie", (&http.Cookie{Name: CookieName, Value: name, Path: "/"}).String())
			w.Header().Set("Cache-Control", "private") // `nocache`
		}
	}
	rec := &statusRecorder{ResponseWriter: w}
	h.proxies[name].ServeHTTP(rec, r)
	h.log.Info("request", "method", r.Method, "path", r.URL.Path, "server", name,
		"status", rec.status, "ms", time.Since(start).Milliseconds())
}

// pick returns the backend for r: its sticky server if that still takes
// sticky sessions, else the next UP server in round robin (setCookie then
// says the client must be (re)pinned).
func (h *embeddedHandler) pick(r *http.Request) (name string, setCookie bool) {
	if h.o.Sticky {
		if c, err := r.Cookie(CookieName); err == nil {
			if _, sticky := h.checker.eligible(c.Value); sticky {
				return c.Value, false
			}
		}
	}
	n := uint64(len(h.o.Backends))
	start := h.next.Add(1) - 1
	for i := range n {
		be := h.o.Backends[(start+i)%n]
		if fresh, _ := h.checker.eligible(be.Name); fresh {
			return be.Name, h.o.Sticky
		}
	}
	return "", false
}

// stripCookie removes one cookie from r's Cookie headers.
func stripCookie(r *http.Request, name string) {
	cookies := r.Cookies()
	r.Header.Del("Cookie")
	var keep []string
	for _, c := range cookies {
		if c.Name != name {
			keep = append(keep, c.String())
		}
	}
	if len(keep) > 0 {
		r.Header.Set("Cookie", strings.Join(keep, "; "))
	}
}

// statusRecorder remembers the status for the request log and passes
// flushes through so streaming keeps working.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// deadlineBody notes whether reading the client's body hit the server's
// read deadline (RequestTimeout), which the transport reports only as a
// broken request.
type deadlineBody struct {
	io.ReadCloser
	expired atomic.Bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		b.expired.Store(true)
	}
	return n, err
}

// lingerFor is how long requestTimedOut drains a client still sending.
const lingerFor = 2 * time.Second

// requestTimedOut answers 408 to a client still sending its body, then
// reads and discards what it sends for lingerFor before closing (nginx's
// lingering close): closing at once would make the client's TCP stack
// reset the connection and drop the answer unread.
func requestTimedOut(w http.ResponseWriter, msg string) {
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		http.Error(w, msg, http.StatusRequestTimeout)
		return
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(lingerFor))
	fmt.Fprintf(brw, "HTTP/1.1 408 Request Timeout\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(msg), msg)
	if brw.Flush() != nil {
		return
	}
	_, _ = io.Copy(io.Discard, conn)
}
