package toxiproxy

// The client of Toxiproxy's API, over the owner's unix socket or TCP with\n// the cluster's secret, and the toxics octoha uses.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	tpclient "github.com/Shopify/toxiproxy/v2/client"
)

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

// Client drives a Toxiproxy server through its API: on a unix socket
// (NewUnixClient) or on TCP with the cluster's secret (NewTCPClient).
// Every call is bounded by ctx and by the client's timeout.
type Client struct {
	addr   string // the socket path or host:port, for messages
	base   string // URL prefix of the API
	secret string
	hc     *http.Client
	// mu serialises read-modify-write of a proxy (enable/disable).
	mu sync.Mutex
}

// NewUnixClient returns a client of the API on the unix socket at path.
func NewUnixClient(path string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
		MaxIdleConnsPerHost: 4,
	}
	return &Client{addr: path, base: "http://toxiproxy", hc: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// NewTCPClient returns a client of the API at addr (host:port) that sends
// secret with every request.
func NewTCPClient(addr, secret string) *Client {
	return &Client{addr: addr, base: "http://" + addr, secret: secret, hc: &http.Client{Timeout: 30 * time.Second}}
}

// Addr is where the API is: a socket path or host:port.
func (c *Client) Addr() string { return c.addr }

// do sends a request with a JSON body (nil: none) and decodes a JSON
// answer into out (nil: discarded); a status other than want is an error
// carrying Toxiproxy's message.
func (c *Client) do(ctx context.Context, method, path string, body, out any, want int) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.secret != "" {
		req.Header.Set("Authorization", "Bearer "+c.secret)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("toxiproxy API %s: %w", c.addr, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("toxiproxy API %s: %s %s: read answer: %w", c.addr, method, path, err)
	}
	if resp.StatusCode != want {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(b))
		}
		return &APIError{Status: resp.StatusCode, Message: e.Error}
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("toxiproxy API %s: %s %s: %w", c.addr, method, path, err)
		}
	}
	return nil
}

// APIError is an answer of the API other than the one expected.
type APIError struct {
	Status  int
	Message string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("toxiproxy API: %d %s: %s", e.Status, http.StatusText(e.Status), e.Message)
}

// proxy is a proxy as the API describes it.
type proxy struct {
	Name     string  `json:"name"`
	Listen   string  `json:"listen"`
	Upstream string  `json:"upstream"`
	Enabled  bool    `json:"enabled"`
	Toxics   []Toxic `json:"toxics"`
}

func (p proxy) link() Link { return Link(p) }

// Ping checks that the API answers.
func (c *Client) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := c.do(ctx, http.MethodGet, "/version", nil, nil, http.StatusOK); err != nil {
		return fmt.Errorf("toxiproxy API %s: GET /version: %w", c.addr, err)
	}
	return nil
}

// AddLink creates a proxy: once it returns, listen accepts connections
// and forwards them to upstream.
func (c *Client) AddLink(ctx context.Context, name, listen, upstream string) error {
	body := proxy{Name: name, Listen: listen, Upstream: upstream, Enabled: true}
	if err := c.do(ctx, http.MethodPost, "/proxies", body, nil, http.StatusCreated); err != nil {
		return fmt.Errorf("create link %s (%s → %s): %w", name, listen, upstream, err)
	}
	return nil
}

// Links lists every link, sorted by name.
func (c *Client) Links(ctx context.Context) ([]Link, error) {
	var ps map[string]proxy
	if err := c.do(ctx, http.MethodGet, "/proxies", nil, &ps, http.StatusOK); err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	out := make([]Link, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.link())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Link returns one link.
func (c *Client) Link(ctx context.Context, name string) (Link, error) {
	var p proxy
	if err := c.do(ctx, http.MethodGet, "/proxies/"+url.PathEscape(name), nil, &p, http.StatusOK); err != nil {
		return Link{}, fmt.Errorf("link %s: %w", name, err)
	}
	return p.link(), nil
}

// AddToxic adds t to a link.
func (c *Client) AddToxic(ctx context.Context, link string, t Toxic) error {
	if err := c.do(ctx, http.MethodPost, "/proxies/"+url.PathEscape(link)+"/toxics", t, nil, http.StatusOK); err != nil {
		return fmt.Errorf("add %s toxic %s to link %s: %w", t.Type, t.Name, link, err)
	}
	return nil
}

// RemoveToxic removes a toxic from a link; a toxic that is not there is
// not an error (recoveries are idempotent).
func (c *Client) RemoveToxic(ctx context.Context, link, name string) error {
	err := c.do(ctx, http.MethodDelete, "/proxies/"+url.PathEscape(link)+"/toxics/"+url.PathEscape(name), nil, nil, http.StatusNoContent)
	if ae := (*APIError)(nil); errors.As(err, &ae) && ae.Status == http.StatusNotFound {
		// Either the toxic or the link is missing: only the first is fine.
		if _, lerr := c.Link(ctx, link); lerr == nil {
			return nil
		}
	}
	if err != nil {
		return fmt.Errorf("remove toxic %s from link %s: %w", name, link, err)
	}
	return nil
}

// SetEnabled enables or disables a link. A disabled link does not listen,
// and its open connections are closed: a cut.
func (c *Client) SetEnabled(ctx context.Context, link string, on bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	body := map[string]bool{"enabled": on}
	if err := c.do(ctx, http.MethodPost, "/proxies/"+url.PathEscape(link), body, nil, http.StatusOK); err != nil {
		return fmt.Errorf("set link %s enabled=%v: %w", link, on, err)
	}
	return nil
}
