package traffic

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/octoha/octoha/harness/apiclient"
	"github.com/octoha/octoha/internal/redact"
)

// maxResponseBody caps how much of a response is read: Octopus answers
// uploads and reads with small JSON documents.
const maxResponseBody = 1 << 20

// userAgent identifies the harness in node and load-balancer logs.
const userAgent = "octoha (traffic)"

// newTransport returns a transport for loopback load: no proxy from the
// environment (traffic must not leave 127.0.0.0/8), bounded dials, an
// answer that arrives while a body is still being sent recorded as that
// answer (answerFirstConn), and enough idle connections per host for the
// workers.
func newTransport(idlePerHost int) *http.Transport {
	return &http.Transport{
		Proxy: nil,
		DialContext: answerFirstDial((&net.Dialer{
			Timeout:   10 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext),
		MaxIdleConns:        max(idlePerHost, 100),
		MaxIdleConnsPerHost: max(idlePerHost, 2),
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		WriteBufferSize:     64 << 10,
		ReadBufferSize:      64 << 10,
	}
}

// clientFor returns a copy of c (or a fresh loopback client) that talks to
// base's origin only, sends key there, and does not follow redirects:
// following a 302 would turn an upload into a GET and hide what the
// server said. The caller's client is not changed.
func clientFor(c *http.Client, idlePerHost int, base, key string) (*http.Client, error) {
	if c == nil {
		c = &http.Client{Transport: newTransport(idlePerHost)}
	}
	return apiclient.New(apiclient.Options{APIKey: key, Origins: []string{base}, Base: c, NoRedirects: true})
}

// parseBaseURL checks a base URL (a load balancer or a node, optionally with
// a virtual directory) and returns it without a trailing slash.
func parseBaseURL(raw string) (string, error) {
	if raw == "" {
		return "", errors.New("URL is required")
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error quotes the URL: scrub its secrets from the message.
		return "", fmt.Errorf("URL %q: %w", redact.URL(raw), redact.Error(err, redact.Secrets(raw)))
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("URL %q: scheme must be http or https", redact.URL(raw))
	}
	if u.Host == "" {
		return "", fmt.Errorf("URL %q: no host", redact.URL(raw))
	}
	if u.RawQuery != "" || u.Fragment != "" {
		// Never echo the query: ?apikey= is how Octopus takes a key.
		return "", fmt.Errorf("URL %q: a base URL takes no query or fragment", redact.URL(raw))
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// newNonce returns a short random tag that makes op IDs unique across runs.
func newNonce() string { return fmt.Sprintf("%06x", rand.Uint32()&0xffffff) }

// resultWriter encodes vegeta Results to one stream from many goroutines
// with vegeta's own (gob) encoder, keeping the first error. Writes are
// buffered (a write call per result cost an attack about as much as
// encoding it); Flush writes the rest.
type resultWriter struct {
	mu  sync.Mutex
	buf *bufio.Writer
	enc vegeta.Encoder
	err error
}

func newResultWriter(w io.Writer) *resultWriter {
	if w == nil {
		return nil
	}
	buf := bufio.NewWriterSize(w, 64<<10)
	return &resultWriter{buf: buf, enc: vegeta.NewEncoder(buf)}
}

func (rw *resultWriter) write(r *vegeta.Result) {
	if rw == nil {
		return
	}
	rw.mu.Lock()
	defer rw.mu.Unlock()
	if rw.err != nil {
		return
	}
	if err := rw.enc.Encode(r); err != nil {
		rw.err = fmt.Errorf("encode vegeta result: %w", err)
	}
}

// Flush writes what is buffered and returns the first error.
func (rw *resultWriter) Flush() error {
	if rw == nil {
		return nil
	}
	rw.mu.Lock()
	defer rw.mu.Unlock()
	if err := rw.buf.Flush(); err != nil && rw.err == nil {
		rw.err = fmt.Errorf("write vegeta results: %w", err)
	}
	return rw.err
}

// discardLogger is used when no logger is given.
func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
