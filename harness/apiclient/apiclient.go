// Package apiclient builds the HTTP client the harness talks to an Octopus
// cluster with. The API key goes only to the cluster's configured origins
// (the load balancer and the nodes): a request to any other origin, be it
// a redirect or an absolute link in a response (Links.Page.Next), is
// refused with an error naming it, so that a misconfigured or hostile
// server cannot collect the key. Every harness client of the Octopus API
// (checker, external provider, nemesis, runner, traffic) is built here.
package apiclient

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/octoha/octoha/internal/redact"
	"github.com/octoha/octoha/octopusapi"
)

// ErrForeignOrigin is the cause of a request or redirect refused because
// its origin is not one of the cluster's.
var ErrForeignOrigin = errors.New("not an origin of the cluster under test")

// maxRedirects is how many redirects between allowed origins are followed,
// as net/http does by default.
const maxRedirects = 10

// Options configures New.
type Options struct {
	// APIKey is sent as X-Octopus-ApiKey with every request (they all go to
	// allowed origins), replacing any a caller set; empty: the requests'
	// own headers are sent as they are (still only to allowed origins).
	APIKey string
	// Origins are URLs of the cluster (the load balancer's, each node's):
	// only their scheme, host and port count. Requests and redirects to
	// any other origin are refused.
	Origins []string
	// Base is the client to start from (its Transport, Timeout and Jar);
	// it is copied, not changed. Nil: a client with http.DefaultTransport.
	Base *http.Client
	// Timeout, when positive, replaces Base's Timeout.
	Timeout time.Duration
	// NoRedirects returns a redirect response to the caller instead of
	// following it (uploads: following a 302 would turn a POST into a GET
	// and hide what the server said). Otherwise redirects between allowed
	// origins are followed, up to 10.
	NoRedirects bool
}

// New returns a client that talks only to the allowed origins. It fails
// when an origin is not an absolute http(s) URL, or when there is none.
func New(o Options) (*http.Client, error) {
	allowed := map[string]bool{}
	for _, raw := range o.Origins {
		org, err := Origin(raw)
		if err != nil {
			return nil, fmt.Errorf("api client: %w", err)
		}
		allowed[org] = true
	}
	if len(allowed) == 0 {
		return nil, errors.New("api client: no origins to talk to")
	}
	c := &http.Client{}
	if o.Base != nil {
		*c = *o.Base
	}
	if o.Timeout > 0 {
		c.Timeout = o.Timeout
	}
	base := c.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	g := &guard{base: base, key: o.APIKey, allowed: allowed}
	c.Transport = g
	if o.NoRedirects {
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	} else {
		c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
			if err := g.check(req.URL); err != nil {
				return fmt.Errorf("refusing redirect from %s: %w", redact.URL(via[len(via)-1].URL.String()), err)
			}
			if len(via) >= maxRedirects {
				return fmt.Errorf("stopped after %d redirects", maxRedirects)
			}
			return nil
		}
	}
	return c, nil
}

// Origin returns the origin of a URL as scheme://host:port, lower-case,
// with the scheme's default port made explicit, so that
// http://LB and http://lb:80/api compare equal.
func Origin(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("origin of %s: %w", redact.URL(raw), redact.Error(err, redact.Secrets(raw)))
	}
	return origin(u)
}

func origin(u *url.URL) (string, error) {
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" || u.Host == "" {
		return "", fmt.Errorf("origin of %s: want http(s)://host[:port]", redact.URL(u.String()))
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[scheme]
	}
	return scheme + "://" + net.JoinHostPort(strings.ToLower(u.Hostname()), port), nil
}

// guard is the transport that refuses foreign origins and adds the key.
type guard struct {
	base    http.RoundTripper
	key     string
	allowed map[string]bool
}

// check says why u may not be requested (nil: it may).
func (g *guard) check(u *url.URL) error {
	org, err := origin(u)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrForeignOrigin, err)
	}
	if !g.allowed[org] {
		return fmt.Errorf("%s: %w (allowed: %s)", org, ErrForeignOrigin, strings.Join(g.origins(), ", "))
	}
	return nil
}

func (g *guard) origins() []string {
	out := make([]string, 0, len(g.allowed))
	for o := range g.allowed {
		out = append(out, o)
	}
	slices.Sort(out)
	return out
}

// RoundTrip implements http.RoundTripper.
func (g *guard) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := g.check(req.URL); err != nil {
		if req.Body != nil {
			_ = req.Body.Close() // a RoundTripper must close the body, even on error
		}
		return nil, err
	}
	if g.key == "" || req.Header.Get(octopusapi.HeaderAPIKey) == g.key {
		return g.base.RoundTrip(req)
	}
	// A RoundTripper must not change the caller's request.
	r := req.Clone(req.Context())
	r.Header.Set(octopusapi.HeaderAPIKey, g.key)
	return g.base.RoundTrip(r)
}

// CloseIdleConnections passes through to the base transport, so that
// http.Client.CloseIdleConnections keeps working.
func (g *guard) CloseIdleConnections() {
	if c, ok := g.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}
