package lb

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"github.com/octoha/octoha/internal/proc"
)

// haproxyLB runs a real HAProxy as a child process.
type haproxyLB struct {
	o       Options
	bin     string
	version string

	mu   sync.Mutex
	p    *proc.Process
	logs *logSink
}

var (
	_ Balancer   = (*haproxyLB)(nil)
	_ Controller = (*haproxyLB)(nil)
)

func newHAProxy(o Options) (*haproxyLB, error) {
	bin, err := findBinary("haproxy", "apt-get install haproxy")
	if err != nil {
		return nil, err
	}
	return &haproxyLB{o: o, bin: bin, version: binaryVersion(bin, "-v")}, nil
}

func (h *haproxyLB) Kind() Kind     { return h.o.Kind }
func (h *haproxyLB) URL() string    { return "http://" + h.o.Listen }
func (h *haproxyLB) socket() string { return haproxySocketPath(h.o.Dir) }
func (h *haproxyLB) cfgPath() string {
	return filepath.Join(h.o.Dir, "haproxy.cfg")
}

func (h *haproxyLB) Describe() string {
	v := h.version
	if v == "" {
		v = "(unknown version)"
	}
	drain := "418 = DOWN"
	if h.o.Drain == DrainNOLB {
		drain = "418 = NOLB drain"
	}
	return fmt.Sprintf("HAProxy %s (real, %s; checks inter %s fall %d rise %d, %s)",
		v, h.bin, cfgDuration(h.o.Interval), h.o.Fall, h.o.Rise, drain)
}

func (h *haproxyLB) PID() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.p == nil || h.p.Exited() {
		return 0
	}
	return h.p.PID()
}

// Start writes and validates the config, starts `haproxy -db` and waits
// until the frontend accepts TCP and the runtime socket answers.
func (h *haproxyLB) Start(ctx context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.p != nil && !h.p.Exited() {
		return fmt.Errorf("start haproxy: already running (pid %d)", h.p.PID())
	}
	h.cleanupLocked()
	if err := os.MkdirAll(h.o.Dir, 0o755); err != nil {
		return fmt.Errorf("start haproxy: %w", err)
	}
	if err := os.WriteFile(h.cfgPath(), []byte(haproxyConfig(h.o)), 0o644); err != nil {
		return fmt.Errorf("start haproxy: write config: %w", err)
	}
	ctx, cancel := withStartDeadline(ctx)
	defer cancel()
	if err := checkBindable(h.o.Listen); err != nil {
		return fmt.Errorf("start haproxy: %w", err)
	}
	if out, err := exec.CommandContext(ctx, h.bin, "-c", "-f", h.cfgPath()).CombinedOutput(); err != nil {
		return fmt.Errorf("start haproxy: config %s rejected by `haproxy -c`: %w\n%s", h.cfgPath(), err, strings.TrimSpace(string(out)))
	}
	logs, err := openLogSink(filepath.Join(h.o.Dir, "haproxy.log"), h.o.Log)
	if err != nil {
		return fmt.Errorf("start haproxy: %w", err)
	}
	p, err := proc.Start(proc.Spec{
		Name: "haproxy",
		Path: h.bin,
		Args: []string{"-db", "-f", h.cfgPath()},
		Dir:  h.o.Dir,
		Log:  logs,
	})
	if err != nil {
		logs.Close()
		return fmt.Errorf("start haproxy: %w", err)
	}
	h.p, h.logs = p, logs
	err = pollUntil(ctx, p.Done(), "haproxy frontend and runtime socket", func(ctx context.Context) error {
		if err := dialTCP(ctx, h.o.Listen); err != nil {
			return err
		}
		out, err := runtimeCommand(ctx, h.socket(), "show info")
		if err != nil {
			return err
		}
		if !strings.Contains(out, "Pid:") {
			return fmt.Errorf("unexpected `show info` reply %q", out)
		}
		return nil
	})
	if err != nil {
		err = logs.withTail(fmt.Errorf("start haproxy (pid %d, config %s): %w", p.PID(), h.cfgPath(), err))
		_ = p.Kill(context.Background())
		h.cleanupLocked()
		return err
	}
	return nil
}

// Stop terminates HAProxy (SIGTERM, then SIGKILL after a grace period).
func (h *haproxyLB) Stop(ctx context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.p == nil {
		return nil
	}
	err := h.p.Stop(ctx, stopGrace)
	if err != nil {
		err = fmt.Errorf("stop haproxy (pid %d): %w", h.p.PID(), err)
	}
	h.cleanupLocked()
	return err
}

// cleanupLocked forgets an exited child and removes its socket.
func (h *haproxyLB) cleanupLocked() {
	if h.p != nil && !h.p.Exited() {
		return
	}
	h.p = nil
	if h.logs != nil {
		h.logs.Close()
		h.logs = nil
	}
	_ = os.Remove(h.socket())
}

// running returns an error if HAProxy is not up.
func (h *haproxyLB) running() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.p == nil {
		return errNotRunning
	}
	if h.p.Exited() {
		return h.logs.withTail(fmt.Errorf("haproxy (pid %d) exited unexpectedly: %v", h.p.PID(), h.p.Err()))
	}
	return nil
}

// States reads `show stat` from the runtime socket.
func (h *haproxyLB) States(ctx context.Context) ([]ServerState, error) {
	if err := h.running(); err != nil {
		return nil, fmt.Errorf("haproxy states: %w", err)
	}
	out, err := runtimeCommand(ctx, h.socket(), "show stat")
	if err != nil {
		return nil, fmt.Errorf("haproxy states: %w", err)
	}
	byName, err := parseShowStat(out, haproxyBackend)
	if err != nil {
		return nil, fmt.Errorf("haproxy states: %w", err)
	}
	states := make([]ServerState, 0, len(h.o.Backends))
	for _, be := range h.o.Backends {
		s, ok := byName[be.Name]
		if !ok {
			s = ServerState{Name: be.Name, State: StateUnknown, Detail: "not in haproxy show stat"}
		}
		states = append(states, s)
	}
	return states, nil
}

// SetServerState runs `set server octo/<name> state ready|drain|maint`.
// DOWN maps to maint: HAProxy's operational DOWN belongs to its checks.
func (h *haproxyLB) SetServerState(ctx context.Context, name string, state State) error {
	word, err := haproxyAdminState(state)
	if err != nil {
		return err
	}
	if !h.hasBackend(name) {
		return fmt.Errorf("haproxy set server state: no backend named %q", name)
	}
	if err := h.running(); err != nil {
		return fmt.Errorf("haproxy set server %s state %s: %w", name, word, err)
	}
	cmd := fmt.Sprintf("set server %s/%s state %s", haproxyBackend, name, word)
	out, err := runtimeCommand(ctx, h.socket(), cmd)
	if err != nil {
		return err
	}
	// Success is an empty reply; anything else is HAProxy's error text.
	if out = strings.TrimSpace(out); out != "" {
		return fmt.Errorf("haproxy %q: %s", cmd, out)
	}
	return nil
}

func (h *haproxyLB) hasBackend(name string) bool {
	for _, be := range h.o.Backends {
		if be.Name == name {
			return true
		}
	}
	return false
}
