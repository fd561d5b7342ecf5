package lb

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/octoha/octoha/internal/proc"
)

// caddyLB runs a real Caddy (tuned or read-timeout profile) as a child
// process. Caddy 2.6's admin API lists upstreams with request and passive
// failure counts but not their active health, which Caddy only emits as
// "healthy"/"unhealthy" events; the driver reads those from Caddy's log.
type caddyLB struct {
	o       Options
	bin     string
	version string

	mu     sync.Mutex
	p      *proc.Process
	logs   *logSink
	health *caddyHealth
}

var _ Balancer = (*caddyLB)(nil)

func newCaddy(o Options) (*caddyLB, error) {
	bin, err := findBinary("caddy", "apt-get install caddy")
	if err != nil {
		return nil, err
	}
	return &caddyLB{o: o, bin: bin, version: caddyVersion(bin)}, nil
}

// caddyVersion reads `caddy version` ("2.6.2" from Debian, "v2.7.6 h1:…"
// upstream); "" when it cannot.
func caddyVersion(bin string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "version").Output()
	if err != nil {
		return ""
	}
	f := strings.Fields(string(out))
	if len(f) == 0 {
		return ""
	}
	return strings.TrimPrefix(f[0], "v")
}

func (c *caddyLB) Kind() Kind  { return c.o.Kind }
func (c *caddyLB) URL() string { return "http://" + c.o.Listen }

func (c *caddyLB) Describe() string {
	v := c.version
	if v == "" {
		v = "(unknown version)"
	}
	profile := "tuned for Octopus: no body limit, streaming, no total read timeout"
	if c.o.Kind == CaddyTimeout {
		profile = "with a total request read limit: servers timeouts read_body " + cfgDuration(c.o.RequestTimeout)
	}
	return fmt.Sprintf("Caddy %s %s (real, %s; checks every %s, 418 = DOWN; no fall/rise in Caddy 2.6: one failed check ejects, one passed check readmits)",
		v, profile, c.bin, cfgDuration(c.o.Interval))
}

func (c *caddyLB) PID() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.p == nil || c.p.Exited() {
		return 0
	}
	return c.p.PID()
}

// env keeps Caddy's autosaved config and data (locks, certificates it
// will not need) inside Dir rather than the user's home.
func (c *caddyLB) env() []string {
	env := os.Environ()
	return append(env,
		"HOME="+c.o.Dir,
		"XDG_CONFIG_HOME="+filepath.Join(c.o.Dir, "config"),
		"XDG_DATA_HOME="+filepath.Join(c.o.Dir, "data"))
}

// Start writes and validates the Caddyfile, starts `caddy run` and waits
// until the site accepts TCP and the admin socket answers.
func (c *caddyLB) Start(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.p != nil && !c.p.Exited() {
		return fmt.Errorf("start %s: already running (pid %d)", c.o.Kind, c.p.PID())
	}
	c.cleanupLocked()
	ctx, cancel := withStartDeadline(ctx)
	defer cancel()
	if err := checkBindable(c.o.Listen); err != nil {
		return fmt.Errorf("start %s: %w", c.o.Kind, err)
	}
	if err := os.MkdirAll(c.o.Dir, 0o755); err != nil {
		return fmt.Errorf("start %s: %w", c.o.Kind, err)
	}
	if err := os.MkdirAll(caddyAdminDir(c.o.Dir), 0o700); err != nil {
		return fmt.Errorf("start %s: %w", c.o.Kind, err)
	}
	if err := os.Chmod(caddyAdminDir(c.o.Dir), 0o700); err != nil {
		return fmt.Errorf("start %s: make the admin socket's directory private: %w", c.o.Kind, err)
	}
	cfg := caddyConfigPath(c.o.Dir)
	if err := os.WriteFile(cfg, []byte(caddyConfig(c.o)), 0o644); err != nil {
		return fmt.Errorf("start %s: write config: %w", c.o.Kind, err)
	}
	adapt := exec.CommandContext(ctx, c.bin, "adapt", "--config", cfg, "--adapter", "caddyfile")
	adapt.Env = c.env()
	if out, err := adapt.CombinedOutput(); err != nil {
		return fmt.Errorf("start %s: config %s rejected by `caddy adapt`: %w\n%s", c.o.Kind, cfg, err, strings.TrimSpace(string(out)))
	}
	health := newCaddyHealth()
	extra := io.Writer(health)
	if c.o.Log != nil {
		extra = io.MultiWriter(health, c.o.Log)
	}
	logs, err := openLogSink(filepath.Join(c.o.Dir, "caddy.log"), extra)
	if err != nil {
		return fmt.Errorf("start %s: %w", c.o.Kind, err)
	}
	p, err := proc.Start(proc.Spec{
		Name: "caddy",
		Path: c.bin,
		Args: []string{"run", "--config", cfg, "--adapter", "caddyfile"},
		Dir:  c.o.Dir,
		Env:  c.env(),
		Log:  logs,
	})
	if err != nil {
		logs.Close()
		return fmt.Errorf("start %s: %w", c.o.Kind, err)
	}
	c.p, c.logs, c.health = p, logs, health
	err = pollUntil(ctx, p.Done(), "caddy site and admin socket", func(ctx context.Context) error {
		if err := dialTCP(ctx, c.o.Listen); err != nil {
			return err
		}
		_, err := caddyAdminGet(ctx, c.o.Dir, "/config/")
		return err
	})
	if err != nil {
		err = logs.withTail(fmt.Errorf("start %s (pid %d, config %s): %w", c.o.Kind, p.PID(), cfg, err))
		_ = p.Kill(context.Background())
		c.cleanupLocked()
		return err
	}
	return nil
}

// Stop terminates Caddy (SIGTERM: it lets requests finish for
// caddyGrace; SIGKILL after stopGrace).
func (c *caddyLB) Stop(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.p == nil {
		return nil
	}
	err := c.p.Stop(ctx, stopGrace)
	if err != nil {
		err = fmt.Errorf("stop %s (pid %d): %w", c.o.Kind, c.p.PID(), err)
	}
	c.cleanupLocked()
	return err
}

// cleanupLocked forgets an exited child and removes its admin socket.
func (c *caddyLB) cleanupLocked() {
	if c.p != nil && !c.p.Exited() {
		return
	}
	c.p = nil
	if c.logs != nil {
		c.logs.Close()
		c.logs = nil
	}
	_ = os.Remove(caddySocketPath(c.o.Dir))
}

func (c *caddyLB) runningLocked() error {
	if c.p == nil {
		return errNotRunning
	}
	if c.p.Exited() {
		return c.logs.withTail(fmt.Errorf("caddy (pid %d) exited unexpectedly: %v", c.p.PID(), c.p.Err()))
	}
	return nil
}

// States combines the active health Caddy logged (events) with the
// request and passive-failure counts of its admin API.
func (c *caddyLB) States(ctx context.Context) ([]ServerState, error) {
	c.mu.Lock()
	err := c.runningLocked()
	health := c.health
	c.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("%s states: %w", c.o.Kind, err)
	}
	counts, err := caddyUpstreams(ctx, c.o.Dir)
	if err != nil {
		return nil, fmt.Errorf("%s states: %w", c.o.Kind, err)
	}
	states := make([]ServerState, 0, len(c.o.Backends))
	for _, be := range c.o.Backends {
		s := health.state(be.Name, be.Addr)
		if u, ok := counts[be.Addr]; ok {
			s.Detail = fmt.Sprintf("%s; %d requests in flight, %d passive fails", s.Detail, u.NumRequests, u.Fails)
		}
		states = append(states, s)
	}
	return states, nil
}

// caddyUpstream is one entry of the admin API's /reverse_proxy/upstreams.
type caddyUpstream struct {
	Address     string `json:"address"`
	NumRequests int    `json:"num_requests"`
	Fails       int    `json:"fails"`
}

func caddyUpstreams(ctx context.Context, dir string) (map[string]caddyUpstream, error) {
	body, err := caddyAdminGet(ctx, dir, "/reverse_proxy/upstreams")
	if err != nil {
		return nil, err
	}
	var ups []caddyUpstream
	if err := json.Unmarshal(body, &ups); err != nil {
		return nil, fmt.Errorf("caddy admin /reverse_proxy/upstreams: %w", err)
	}
	out := make(map[string]caddyUpstream, len(ups))
	for _, u := range ups {
		out[u.Address] = u
	}
	return out, nil
}

// caddyAdminGet GETs path from the admin API on Dir's unix socket.
func caddyAdminGet(ctx context.Context, dir, path string) ([]byte, error) {
	sock := caddySocketPath(dir)
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+caddyAdminOrigin+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return nil, fmt.Errorf("caddy admin %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("caddy admin %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("caddy admin %s: %s: %s", path, resp.Status, strings.TrimSpace(string(body)))
	}
	return body, nil
}

// caddyHealth follows Caddy's JSON log for active health: the events
// logger's "unhealthy"/"healthy" events, and the health checker's reason
// for a failed check. Upstreams start healthy, as in Caddy.
type caddyHealth struct {
	mu      sync.Mutex
	partial []byte
	down    map[string]bool   // by upstream address
	check   map[string]string // last check result, by upstream address
}

func newCaddyHealth() *caddyHealth {
	return &caddyHealth{down: map[string]bool{}, check: map[string]string{}}
}

// Write takes Caddy's output in arbitrary chunks.
func (h *caddyHealth) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.partial = append(h.partial, p...)
	for {
		i := bytes.IndexByte(h.partial, '\n')
		if i < 0 {
			break
		}
		h.lineLocked(h.partial[:i])
		h.partial = h.partial[i+1:]
	}
	if len(h.partial) > 64<<10 {
		h.partial = h.partial[:0] // not a log line of ours
	}
	return len(p), nil
}

// caddyLogLine is the part of a Caddy JSON log line the tracker reads.
type caddyLogLine struct {
	Logger     string `json:"logger"`
	Msg        string `json:"msg"`
	Name       string `json:"name"`
	Host       string `json:"host"`
	StatusCode int    `json:"status_code"`
	Error      string `json:"error"`
	Data       struct {
		Host string `json:"host"`
	} `json:"data"`
}

// caddyStartedMsg is what Caddy logs once its first config runs.
const caddyStartedMsg = "serving initial configuration"

func (h *caddyHealth) lineLocked(line []byte) {
	if !bytes.Contains(line, []byte(`"events"`)) && !bytes.Contains(line, []byte("health_checker")) &&
		!bytes.Contains(line, []byte(caddyStartedMsg)) {
		return
	}
	var l caddyLogLine
	if json.Unmarshal(line, &l) != nil {
		return
	}
	switch {
	case l.Msg == caddyStartedMsg:
		// A (re)started Caddy starts every upstream healthy.
		clear(h.down)
		clear(h.check)
	case l.Logger == "events" && l.Name == "unhealthy" && l.Data.Host != "":
		h.down[l.Data.Host] = true
	case l.Logger == "events" && l.Name == "healthy" && l.Data.Host != "":
		h.down[l.Data.Host] = false
		h.check[l.Data.Host] = "passed"
	case strings.HasPrefix(l.Logger, "http.handlers.reverse_proxy.health_checker") && l.Host != "":
		switch {
		case l.StatusCode != 0:
			h.check[l.Host] = "status " + strconv.Itoa(l.StatusCode)
		case l.Error != "":
			h.check[l.Host] = "failed: " + l.Error
		default:
			h.check[l.Host] = l.Msg
		}
	}
}

// state is the tracked state of one upstream.
func (h *caddyHealth) state(name, addr string) ServerState {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := ServerState{Name: name, State: StateUp, Check: h.check[addr], Detail: "caddy active checks"}
	if h.down[addr] {
		s.State = StateDown
	}
	return s
}

// readCaddyStates reads the states a Caddy started by another process
// logged in dir: its Caddyfile maps names to addresses, caddy.log holds
// the health events.
func readCaddyStates(dir string, names []string) ([]ServerState, error) {
	cfg, err := os.ReadFile(caddyConfigPath(dir))
	if err != nil {
		return nil, fmt.Errorf("caddy states: %w", err)
	}
	addrs := map[string]string{}
	for addr, name := range caddyBackendsFromConfig(string(cfg)) {
		addrs[name] = addr
	}
	f, err := os.Open(filepath.Join(dir, "caddy.log"))
	if err != nil {
		return nil, fmt.Errorf("caddy states: %w", err)
	}
	defer f.Close()
	h := newCaddyHealth()
	if _, err := io.Copy(h, f); err != nil {
		return nil, fmt.Errorf("caddy states: read caddy.log: %w", err)
	}
	out := make([]ServerState, 0, len(names))
	for _, n := range names {
		addr, ok := addrs[n]
		if !ok {
			out = append(out, ServerState{Name: n, State: StateUnknown, Detail: "not in the Caddyfile"})
			continue
		}
		out = append(out, h.state(n, addr))
	}
	return out, nil
}
