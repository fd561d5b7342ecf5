// Package toxiproxy runs Shopify's Toxiproxy (the TCP proxy that injects
// latency, bandwidth limits, timeouts, resets and cuts) as a child process
// of a cluster, and drives it through Toxiproxy's own Go client. The
// server is embedded in the octoha binary (`octoha toxiproxy`, see Serve),
// so nothing needs installing.
//
// It imports no harness or fakes package, so both can use it.
package toxiproxy

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/octoha/octoha/internal/proc"
)

// DefaultPort is the API port, Toxiproxy's own default (the docker
// provider's container listens on it, on the cluster's private network).
const DefaultPort = 8474

// Subcommand is the octoha subcommand that runs Serve.
const Subcommand = "toxiproxy"

// SecretEnv is the environment variable that carries the per-cluster
// secret a TCP API requires (never a flag: argv is world-readable in /proc).
const SecretEnv = "OCTOHA_TOXIPROXY_SECRET"

// ErrListenRefused is the cause of a proxy refused because it would listen
// outside the networks the server was told it may use.
var ErrListenRefused = errors.New("listen address outside the cluster's networks")

// ServeOptions configures Serve. Exactly one of Socket and Listen is set.
type ServeOptions struct {
	// Socket serves the API on this unix socket (mode 0600); its directory
	// must be the caller's and private (0700): only the cluster's owner
	// may reach it.
	Socket string
	// Listen serves the API on TCP host:port (a container's private
	// network): every request must then carry Secret as a bearer token.
	Listen string
	// Secret is required with Listen (at least 16 bytes).
	Secret string
	// Allow are the networks proxies may listen on; a proxy that would
	// listen anywhere else (another interface, a host name) is refused
	// with 403, so the API cannot open a door outside the cluster.
	Allow []netip.Prefix
	// Log receives the server's log.
	Log io.Writer
}

// Serve runs the Toxiproxy API until ctx is done; proxies are created
// through the API. It is what `octoha toxiproxy` runs, in a process of its
// own: Toxiproxy keeps global state, so it is never run inside the harness.
func Serve(ctx context.Context, o ServeOptions) error {
	if (o.Socket == "") == (o.Listen == "") {
		return errors.New("toxiproxy: serve on exactly one of a unix socket and a TCP address")
	}
	if len(o.Allow) == 0 {
		return errors.New("toxiproxy: no networks proxies may listen on")
	}
	if o.Listen != "" && len(o.Secret) < 16 {
		return fmt.Errorf("toxiproxy: a TCP API needs a secret of at least 16 bytes in $%s", SecretEnv)
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	var l net.Listener
	var err error
	if o.Socket != "" {
		l, err = listenPrivate(o.Socket)
	} else {
		l, err = net.Listen("tcp", o.Listen)
		if err != nil {
			err = fmt.Errorf("toxiproxy API address %s is not free: %w", o.Listen, err)
		}
	}
	if err != nil {
		return err
	}
	logger := zerolog.New(o.Log).With().Timestamp().Logger().Level(zerolog.InfoLevel)
	api := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), logger)
	srv := &http.Server{Handler: handler(api, o), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second}
	fmt.Fprintf(o.Log, "Starting HTTP server on %s\n", l.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case <-ctx.Done():
		// Proxies' listeners close with the process.
		_ = srv.Close()
		if o.Socket != "" {
			_ = os.Remove(o.Socket)
		}
		return nil
	case err := <-errc:
		return fmt.Errorf("toxiproxy API: %w", err)
	}
}

// listenPrivate listens on the unix socket path, in a directory that must
// be a real directory of the caller's that no one else may enter.
func listenPrivate(path string) (net.Listener, error) {
	dir := filepath.Dir(path)
	fi, err := os.Lstat(dir)
	if err != nil {
		return nil, fmt.Errorf("toxiproxy API socket directory: %w", err)
	}
	if !fi.IsDir() || fi.Mode().Perm()&0o077 != 0 || !ownedBySelf(fi) {
		return nil, fmt.Errorf("toxiproxy API socket directory %s must be a directory of the user's with mode 0700 (is %s)", dir, fi.Mode())
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("toxiproxy API socket: remove stale %s: %w", path, err)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("toxiproxy API socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("toxiproxy API socket: %w", err)
	}
	return l, nil
}

// handler is Toxiproxy's API (the routes its own server registers, less
// /populate and /metrics, which the harness does not use) behind two
// guards: the bearer secret on TCP, and the allowed listen addresses.
func handler(api *toxiproxy.ApiServer, o ServeOptions) http.Handler {
	r := mux.NewRouter()
	r.HandleFunc("/reset", api.ResetState).Methods("POST")
	r.HandleFunc("/proxies", api.ProxyIndex).Methods("GET")
	r.Handle("/proxies", checkListen(o.Allow, true, http.HandlerFunc(api.ProxyCreate))).Methods("POST")
	r.HandleFunc("/proxies/{proxy}", api.ProxyShow).Methods("GET")
	r.Handle("/proxies/{proxy}", checkListen(o.Allow, false, http.HandlerFunc(api.ProxyUpdate))).Methods("POST")
	r.HandleFunc("/proxies/{proxy}", api.ProxyDelete).Methods("DELETE")
	r.HandleFunc("/proxies/{proxy}/toxics", api.ToxicIndex).Methods("GET")
	r.HandleFunc("/proxies/{proxy}/toxics", api.ToxicCreate).Methods("POST")
	r.HandleFunc("/proxies/{proxy}/toxics/{toxic}", api.ToxicShow).Methods("GET")
	r.HandleFunc("/proxies/{proxy}/toxics/{toxic}", api.ToxicUpdate).Methods("POST")
	r.HandleFunc("/proxies/{proxy}/toxics/{toxic}", api.ToxicDelete).Methods("DELETE")
	r.HandleFunc("/version", api.Version).Methods("GET")
	var h http.Handler = r
	if o.Listen != "" {
		want := []byte("Bearer " + o.Secret)
		next := h
		h = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if subtle.ConstantTimeCompare([]byte(req.Header.Get("Authorization")), want) != 1 {
				http.Error(w, `{"error":"the Toxiproxy API needs the cluster's secret","status":401}`, http.StatusUnauthorized)
				return
			}
			next.ServeHTTP(w, req)
		})
	}
	return h
}

// checkListen refuses a proxy body whose listen address is outside allow
// (required: a creation without one would listen wherever Toxiproxy picks),
// then hands the body on unchanged.
func checkListen(allow []netip.Prefix, required bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, err := io.ReadAll(io.LimitReader(req.Body, 64<<10))
		if err != nil {
			http.Error(w, `{"error":"read body","status":400}`, http.StatusBadRequest)
			return
		}
		var in struct {
			Listen *string `json:"listen"`
		}
		if err := json.Unmarshal(b, &in); err != nil {
			http.Error(w, `{"error":"bad request body","status":400}`, http.StatusBadRequest)
			return
		}
		if in.Listen != nil || required {
			listen := ""
			if in.Listen != nil {
				listen = *in.Listen
			}
			if err := allowedListen(allow, listen); err != nil {
				msg, _ := json.Marshal(map[string]any{"error": err.Error(), "status": http.StatusForbidden})
				http.Error(w, string(msg), http.StatusForbidden)
				return
			}
		}
		req.Body = io.NopCloser(bytes.NewReader(b))
		req.ContentLength = int64(len(b))
		next.ServeHTTP(w, req)
	})
}

// allowedListen says why a proxy may not listen on addr (nil: it may):
// it must be an IP literal (a name could resolve anywhere) in allow.
func allowedListen(allow []netip.Prefix, addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("listen %q: %w: want ip:port", addr, ErrListenRefused)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("listen %q: %w: not an IP address", addr, ErrListenRefused)
	}
	ip = ip.Unmap()
	for _, p := range allow {
		if p.Contains(ip) {
			return nil
		}
	}
	return fmt.Errorf("listen %q: %w", addr, ErrListenRefused)
}

// ParseAllow parses a comma-separated list of networks (CIDR, or single
// addresses) proxies may listen on.
func ParseAllow(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !strings.Contains(f, "/") {
			a, err := netip.ParseAddr(f)
			if err != nil {
				return nil, fmt.Errorf("allowed network %q: %w", f, err)
			}
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, fmt.Errorf("allowed network %q: %w", f, err)
		}
		out = append(out, p.Masked())
	}
	if len(out) == 0 {
		return nil, errors.New("no allowed networks")
	}
	return out, nil
}

// Options configures Start.
type Options struct {
	// Binary is the octoha executable (runs `octoha toxiproxy`).
	Binary string
	// Socket is the API's unix socket. Its directory is created 0700 if
	// missing, and must otherwise be the user's and 0700. Empty: in a
	// temporary directory (0700) removed by Close.
	Socket string
	// Allow are the networks (CIDR or single addresses) proxies may
	// listen on: the cluster's own.
	Allow []string
	// Dir is the child's working directory.
	Dir string
	// Env is the child's environment (nil: inherit).
	Env []string
	// Log receives the server's log.
	Log io.Writer
	// ReadyTimeout bounds the wait for the API (default 10s).
	ReadyTimeout time.Duration
}

// MaxSocketPath is the longest unix socket path Start takes (sun_path is
// 108 bytes on Linux, with the NUL; macOS has 104).
const MaxSocketPath = 100

// Server is a running Toxiproxy child process and a client of it.
type Server struct {
	*Client
	p       *proc.Process
	tempDir string // the socket's directory when Start made it
}

// Start runs `octoha toxiproxy --socket path --allow nets` in its own
// process group (killed with the harness) and waits until its API answers.
func Start(ctx context.Context, o Options) (*Server, error) {
	if o.Binary == "" || len(o.Allow) == 0 {
		return nil, errors.New("toxiproxy: Binary and Allow are required")
	}
	tempDir := ""
	if o.Socket == "" {
		d, err := os.MkdirTemp("", "octoha-tp-")
		if err != nil {
			return nil, fmt.Errorf("toxiproxy: create the API socket's directory: %w", err)
		}
		tempDir, o.Socket = d, filepath.Join(d, "api.sock")
	}
	ok := false
	defer func() {
		if !ok && tempDir != "" {
			_ = os.RemoveAll(tempDir)
		}
	}()
	if len(o.Socket) > MaxSocketPath {
		return nil, fmt.Errorf("toxiproxy: socket path %s is longer than %d bytes", o.Socket, MaxSocketPath)
	}
	allow := strings.Join(o.Allow, ",")
	if _, err := ParseAllow(allow); err != nil {
		return nil, fmt.Errorf("toxiproxy: %w", err)
	}
	if err := os.Mkdir(filepath.Dir(o.Socket), 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("toxiproxy: create the API socket's directory: %w", err)
	}
	if o.ReadyTimeout <= 0 {
		o.ReadyTimeout = 10 * time.Second
	}
	p, err := proc.Start(proc.Spec{Name: "toxiproxy", Path: o.Binary, Args: []string{Subcommand, "--socket", o.Socket, "--allow", allow}, Dir: o.Dir, Env: o.Env, Log: o.Log})
	if err != nil {
		return nil, err
	}
	s := &Server{Client: NewUnixClient(o.Socket), p: p, tempDir: tempDir}
	rctx, cancel := context.WithTimeout(ctx, o.ReadyTimeout)
	defer cancel()
	for {
		err := s.Ping(rctx)
		if err == nil {
			ok = true
			return s, nil
		}
		select {
		case <-p.Done():
			return nil, fmt.Errorf("toxiproxy exited during startup: %v (last: %w)", p.Err(), err)
		case <-rctx.Done():
			_ = p.Kill(context.WithoutCancel(ctx))
			return nil, fmt.Errorf("toxiproxy API %s did not answer within %s: %w", o.Socket, o.ReadyTimeout, err)
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
	err := s.p.Stop(ctx, 2*time.Second)
	if s.tempDir != "" {
		if rerr := os.RemoveAll(s.tempDir); rerr != nil {
			err = errors.Join(err, fmt.Errorf("remove the toxiproxy socket's directory: %w", rerr))
		}
	}
	return err
}
