// Package toxiproxy runs Shopify's Toxiproxy (the TCP proxy that injects
// latency, bandwidth limits, timeouts, resets and cuts) as a child process
// of a cluster, and drives it through Toxiproxy's own Go client. The
// server is embedded in the octoha binary (`octoha toxiproxy`, see Serve),
// so nothing needs installing.
//
// It imports no harness or fakes package, so both can use it.
package toxiproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sort"
	"sync"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	tpclient "github.com/Shopify/toxiproxy/v2/client"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/octoha/octoha/internal/proc"
)

// DefaultPort is the API port, Toxiproxy's own default.
const DefaultPort = 8474

// Subcommand is the octoha subcommand that runs Serve.
const Subcommand = "toxiproxy"

// Serve runs the Toxiproxy API server on addr (host:port) until ctx is
// done; proxies are created through the API. It is what `octoha
// toxiproxy` runs, in a process of its own: Toxiproxy's server exits the
// process on a listen error and keeps global state, so it is never run
// inside the harness.
func Serve(ctx context.Context, addr string, log io.Writer) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("toxiproxy listen address %q: %w", addr, err)
	}
	// Fail clearly (Toxiproxy would exit with a log line) when the address is taken.
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("toxiproxy API address %s is not free: %w", addr, err)
	}
	l.Close()
	if log == nil {
		log = io.Discard
	}
	logger := zerolog.New(log).With().Timestamp().Logger().Level(zerolog.InfoLevel)
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), logger)
	go srv.Listen(host, port)
	<-ctx.Done()
	// Proxies' listeners close with the process.
	return nil
}

// Toxic is one fault on a link, as Toxiproxy's client describes it.
type Toxic = tpclient.Toxic

// Streams: Upstream is client → server, Downstream server → client.
const (
	Upstream   = "upstream"
	Downstream = "downstream"
)

// Latency delays every chunk by d ± jitter.
func Latency(name, stream string, d, jitter time.Duration) Toxic {
	return Toxic{Name: name, Type: "latency", Stream: stream, Toxicity: 1,
		Attributes: tpclient.Attributes{"latency": d.Milliseconds(), "jitter": jitter.Milliseconds()}}
}

// Bandwidth limits the link to bytesPerSecond (Toxiproxy counts in KB/s,
// so the rate is rounded down to whole KiB/s, at least 1).
func Bandwidth(name, stream string, bytesPerSecond int64) Toxic {
	return Toxic{Name: name, Type: "bandwidth", Stream: stream, Toxicity: 1,
		Attributes: tpclient.Attributes{"rate": max(bytesPerSecond/1024, 1)}}
}

// Timeout stops all data on the link (a black hole); with after > 0 the
// connection is closed after that long, with 0 it is held open forever.
func Timeout(name, stream string, after time.Duration) Toxic {
	return Toxic{Name: name, Type: "timeout", Stream: stream, Toxicity: 1,
		Attributes: tpclient.Attributes{"timeout": after.Milliseconds()}}
}

// ResetPeer resets (TCP RST) every connection after it has carried data
// for after.
func ResetPeer(name, stream string, after time.Duration) Toxic {
	return Toxic{Name: name, Type: "reset_peer", Stream: stream, Toxicity: 1,
		Attributes: tpclient.Attributes{"timeout": after.Milliseconds()}}
}

// SlowClose delays the close of each connection by d.
func SlowClose(name, stream string, d time.Duration) Toxic {
	return Toxic{Name: name, Type: "slow_close", Stream: stream, Toxicity: 1,
		Attributes: tpclient.Attributes{"delay": d.Milliseconds()}}
}

// Link is one proxied connection path: Listen forwards to Upstream.
type Link struct {
	Name     string
	Listen   string
	Upstream string
	Enabled  bool
	Toxics   []Toxic
}

// Client drives a Toxiproxy server through its API. Toxiproxy's client has
// no contexts; every call is bounded by the server's own timeouts, and a
// cancelled ctx is checked before each call.
type Client struct {
	addr string
	c    *tpclient.Client
	// mu serialises read-modify-write of a proxy (enable/disable).
	mu sync.Mutex
}

// NewClient returns a client of the API at addr (host:port).
func NewClient(addr string) *Client {
	return &Client{addr: addr, c: tpclient.NewClient("http://" + addr)}
}

// Addr is the API's host:port.
func (c *Client) Addr() string { return c.addr }

// Ping checks that the API answers.
func (c *Client) Ping(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+c.addr+"/version", nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Timeout: 2 * time.Second}).Do(req)
	if err != nil {
		return fmt.Errorf("toxiproxy API %s: %w", c.addr, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("toxiproxy API %s: GET /version: %s", c.addr, resp.Status)
	}
	return nil
}

// AddLink creates a proxy: once it returns, listen accepts connections
// and forwards them to upstream.
func (c *Client) AddLink(ctx context.Context, name, listen, upstream string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, err := c.c.CreateProxy(name, listen, upstream); err != nil {
		return fmt.Errorf("create link %s (%s → %s): %w", name, listen, upstream, err)
	}
	return nil
}

// Links lists every link, sorted by name.
func (c *Client) Links(ctx context.Context) ([]Link, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ps, err := c.c.Proxies()
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	out := make([]Link, 0, len(ps))
	for _, p := range ps {
		out = append(out, Link{Name: p.Name, Listen: p.Listen, Upstream: p.Upstream, Enabled: p.Enabled, Toxics: p.ActiveToxics})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Link returns one link.
func (c *Client) Link(ctx context.Context, name string) (Link, error) {
	if err := ctx.Err(); err != nil {
		return Link{}, err
	}
	p, err := c.c.Proxy(name)
	if err != nil {
		return Link{}, fmt.Errorf("link %s: %w", name, err)
	}
	return Link{Name: p.Name, Listen: p.Listen, Upstream: p.Upstream, Enabled: p.Enabled, Toxics: p.ActiveToxics}, nil
}

// AddToxic adds t to a link.
func (c *Client) AddToxic(ctx context.Context, link string, t Toxic) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := c.c.Proxy(link)
	if err != nil {
		return fmt.Errorf("add %s toxic to link %s: %w", t.Type, link, err)
	}
	if _, err := p.AddToxic(t.Name, t.Type, t.Stream, t.Toxicity, t.Attributes); err != nil {
		return fmt.Errorf("add %s toxic %s to link %s: %w", t.Type, t.Name, link, err)
	}
	return nil
}

// RemoveToxic removes a toxic from a link; a toxic that is not there is
// not an error (recoveries are idempotent).
func (c *Client) RemoveToxic(ctx context.Context, link, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := c.c.Proxy(link)
	if err != nil {
		return fmt.Errorf("remove toxic %s from link %s: %w", name, link, err)
	}
	// The client wraps API errors with %v, so a 404 cannot be told apart:
	// look first.
	if !slices.ContainsFunc(p.ActiveToxics, func(t Toxic) bool { return t.Name == name }) {
		return nil
	}
	if err := p.RemoveToxic(name); err != nil {
		return fmt.Errorf("remove toxic %s from link %s: %w", name, link, err)
	}
	return nil
}

// SetEnabled enables or disables a link. A disabled link does not listen,
// and its open connections are closed: a cut.
func (c *Client) SetEnabled(ctx context.Context, link string, on bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	p, err := c.c.Proxy(link)
	if err != nil {
		return fmt.Errorf("set link %s enabled=%v: %w", link, on, err)
	}
	if p.Enabled == on {
		return nil
	}
	if on {
		err = p.Enable()
	} else {
		err = p.Disable()
	}
	if err != nil {
		return fmt.Errorf("set link %s enabled=%v: %w", link, on, err)
	}
	return nil
}

// Options configures Start.
type Options struct {
	// Binary is the octoha executable (runs `octoha toxiproxy`).
	Binary string
	// Addr is the API's host:port.
	Addr string
	// Dir is the child's working directory.
	Dir string
	// Env is the child's environment (nil: inherit).
	Env []string
	// Log receives the server's log.
	Log io.Writer
	// ReadyTimeout bounds the wait for the API (default 10s).
	ReadyTimeout time.Duration
}

// Server is a running Toxiproxy child process and a client of it.
type Server struct {
	*Client
	p *proc.Process
}

// Start runs `octoha toxiproxy --listen addr` in its own process group
// (killed with the harness) and waits until its API answers.
func Start(ctx context.Context, o Options) (*Server, error) {
	if o.Binary == "" || o.Addr == "" {
		return nil, errors.New("toxiproxy: Binary and Addr are required")
	}
	if o.ReadyTimeout <= 0 {
		o.ReadyTimeout = 10 * time.Second
	}
	p, err := proc.Start(proc.Spec{Name: "toxiproxy", Path: o.Binary, Args: []string{Subcommand, "--listen", o.Addr}, Dir: o.Dir, Env: o.Env, Log: o.Log})
	if err != nil {
		return nil, err
	}
	s := &Server{Client: NewClient(o.Addr), p: p}
	rctx, cancel := context.WithTimeout(ctx, o.ReadyTimeout)
	defer cancel()
	for {
		err := s.Ping(rctx)
		if err == nil {
			return s, nil
		}
		select {
		case <-p.Done():
			return nil, fmt.Errorf("toxiproxy exited during startup: %v (last: %w)", p.Err(), err)
		case <-rctx.Done():
			_ = p.Kill(context.WithoutCancel(ctx))
			return nil, fmt.Errorf("toxiproxy API %s did not answer within %s: %w", o.Addr, o.ReadyTimeout, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// PID is the server's process ID, 0 once it has exited.
func (s *Server) PID() int {
	if s == nil || s.p == nil || s.p.Exited() {
		return 0
	}
	return s.p.PID()
}

// Close stops the server; every link stops listening with it.
func (s *Server) Close(ctx context.Context) error {
	if s == nil || s.p == nil {
		return nil
	}
	return s.p.Stop(ctx, 2*time.Second)
}
