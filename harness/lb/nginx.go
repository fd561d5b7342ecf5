package lb

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/octoha/octoha/internal/proc"
)

// nginxPassiveDetail is what States reports for every server: nginx OSS has
// no active health checks, so it cannot know a node is draining.
const nginxPassiveDetail = "nginx OSS: passive checks only, 418 is passed through"

// nginxLB runs a real nginx (tuned or defaults profile) as a child process.
type nginxLB struct {
	o       Options
	bin     string
	version string
	asRoot  bool

	mu   sync.Mutex
	p    *proc.Process
	logs *logSink
	down map[string]bool // backends marked `down` by SetServerState
}

var (
	_ Balancer   = (*nginxLB)(nil)
	_ Controller = (*nginxLB)(nil)
)

func newNginx(o Options) (*nginxLB, error) {
	bin, err := findBinary("nginx", "apt-get install nginx-light")
	if err != nil {
		return nil, err
	}
	return &nginxLB{
		o: o, bin: bin, version: binaryVersion(bin, "-v"),
		asRoot: os.Geteuid() == 0, down: map[string]bool{},
	}, nil
}

func (n *nginxLB) Kind() Kind  { return n.o.Kind }
func (n *nginxLB) URL() string { return "http://" + n.o.Listen }

func (n *nginxLB) Describe() string {
	v := n.version
	if v == "" {
		v = "(unknown version)"
	}
	profile := "tuned for Octopus: no body limit, streaming, long timeouts"
	if n.o.Kind == NginxDefaults {
		profile = "defaults: 1 MB body limit, request bodies spooled to disk"
	}
	return fmt.Sprintf("nginx %s %s (real, %s; passive checks only, 418 not honoured)", v, profile, n.bin)
}

func (n *nginxLB) PID() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.p == nil || n.p.Exited() {
		return 0
	}
	return n.p.PID()
}

// writeConfigLocked renders nginx.conf with the current down set and checks
// it with `nginx -t`.
func (n *nginxLB) writeConfigLocked(ctx context.Context) error {
	for _, t := range nginxTempDirs {
		if err := os.MkdirAll(filepath.Join(n.o.Dir, t.dir), 0o755); err != nil {
			return fmt.Errorf("create nginx temp dir: %w", err)
		}
	}
	cfg := filepath.Join(n.o.Dir, "nginx.conf")
	if err := os.WriteFile(cfg, []byte(nginxConfig(n.o, n.asRoot, n.down)), 0o644); err != nil {
		return fmt.Errorf("write nginx config: %w", err)
	}
	out, err := exec.CommandContext(ctx, n.bin, n.args("-t")...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("config %s rejected by `nginx -t`: %w\n%s", cfg, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// args are the command-line arguments that point nginx at Dir.
func (n *nginxLB) args(extra ...string) []string {
	return append([]string{"-p", n.o.Dir + "/", "-c", "nginx.conf", "-e", "stderr"}, extra...)
}

// Start writes and tests nginx.conf, starts nginx in the foreground and
// waits until it accepts TCP.
func (n *nginxLB) Start(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.p != nil && !n.p.Exited() {
		return fmt.Errorf("start %s: already running (pid %d)", n.o.Kind, n.p.PID())
	}
	n.cleanupLocked()
	ctx, cancel := withStartDeadline(ctx)
	defer cancel()
	if err := checkBindable(n.o.Listen); err != nil {
		return fmt.Errorf("start %s: %w", n.o.Kind, err)
	}
	if err := os.MkdirAll(n.o.Dir, 0o755); err != nil {
		return fmt.Errorf("start %s: %w", n.o.Kind, err)
	}
	if err := n.writeConfigLocked(ctx); err != nil {
		return fmt.Errorf("start %s: %w", n.o.Kind, err)
	}
	// nginx creates its logs 0644 but keeps the mode of existing ones; its
	// error log quotes request lines, query strings included.
	for _, name := range []string{"access.log", "error.log"} {
		f, err := openPrivateLog(filepath.Join(n.o.Dir, name))
		if err != nil {
			return fmt.Errorf("start %s: %w", n.o.Kind, err)
		}
		f.Close()
	}
	logs, err := openLogSink(filepath.Join(n.o.Dir, "nginx.log"), n.o.Log)
	if err != nil {
		return fmt.Errorf("start %s: %w", n.o.Kind, err)
	}
	p, err := proc.Start(proc.Spec{
		Name: "nginx",
		Path: n.bin,
		Args: n.args("-g", "daemon off;"),
		Dir:  n.o.Dir,
		Log:  logs,
	})
	if err != nil {
		logs.Close()
		return fmt.Errorf("start %s: %w", n.o.Kind, err)
	}
	n.p, n.logs = p, logs
	err = pollUntil(ctx, p.Done(), "nginx to accept connections", func(ctx context.Context) error {
		if err := dialTCP(ctx, n.o.Listen); err != nil {
			return err
		}
		// Accepting means the master has bound; requests need a worker.
		if len(proc.Children(p.PID())) == 0 {
			return fmt.Errorf("no worker processes yet")
		}
		return nil
	})
	if err != nil {
		err = logs.withTail(fmt.Errorf("start %s (pid %d): %w", n.o.Kind, p.PID(), err))
		_ = p.Kill(context.Background())
		n.cleanupLocked()
		return err
	}
	return nil
}

// Stop terminates nginx's process group (fast shutdown).
func (n *nginxLB) Stop(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.p == nil {
		return nil
	}
	err := n.p.Stop(ctx, stopGrace)
	if err != nil {
		err = fmt.Errorf("stop %s (pid %d): %w", n.o.Kind, n.p.PID(), err)
	}
	n.cleanupLocked()
	return err
}

func (n *nginxLB) cleanupLocked() {
	if n.p != nil && !n.p.Exited() {
		return
	}
	n.p = nil
	if n.logs != nil {
		n.logs.Close()
		n.logs = nil
	}
}

func (n *nginxLB) runningLocked() error {
	if n.p == nil {
		return errNotRunning
	}
	if n.p.Exited() {
		return n.logs.withTail(fmt.Errorf("nginx (pid %d) exited unexpectedly: %v", n.p.PID(), n.p.Err()))
	}
	return nil
}

// States cannot come from nginx OSS, which keeps no active health state:
// every server is UNKNOWN, except those this driver marked down.
func (n *nginxLB) States(ctx context.Context) ([]ServerState, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.runningLocked(); err != nil {
		return nil, fmt.Errorf("%s states: %w", n.o.Kind, err)
	}
	states := make([]ServerState, 0, len(n.o.Backends))
	for _, be := range n.o.Backends {
		s := ServerState{Name: be.Name, State: StateUnknown, Detail: nginxPassiveDetail}
		if n.down[be.Name] {
			s.State, s.Check = StateDown, "config"
			s.Detail = "marked down in nginx.conf by SetServerState; " + nginxPassiveDetail
		}
		states = append(states, s)
	}
	return states, nil
}

// SetServerState marks a server `down` (DOWN or MAINT) or not (UP) in
// nginx.conf and reloads, the only way to take a node out in nginx OSS. It
// returns once only new workers accept connections; old workers finish
// their in-flight requests (and any request already sent on a keep-alive
// connection) under the old config. The down set survives Stop/Start, as a
// config file would.
func (n *nginxLB) SetServerState(ctx context.Context, name string, state State) error {
	var down bool
	switch state {
	case StateUp:
	case StateDown, StateMaint:
		down = true
	default:
		return fmt.Errorf("%s: cannot set a server to %s: nginx OSS can only mark it down (DOWN or MAINT) or up (UP); there is no graceful drain", n.o.Kind, state)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	found := false
	for _, be := range n.o.Backends {
		found = found || be.Name == name
	}
	if !found {
		return fmt.Errorf("%s set server state: no backend named %q", n.o.Kind, name)
	}
	if err := n.runningLocked(); err != nil {
		return fmt.Errorf("%s set server %s %s: %w", n.o.Kind, name, state, err)
	}
	was := n.down[name]
	if was == down {
		return nil
	}
	n.down[name] = down
	if err := n.reloadLocked(ctx); err != nil {
		n.down[name] = was
		// Put back the config nginx still runs, so Dir tells the truth.
		if werr := os.WriteFile(filepath.Join(n.o.Dir, "nginx.conf"), []byte(nginxConfig(n.o, n.asRoot, n.down)), 0o644); werr != nil {
			err = fmt.Errorf("%w (and restoring nginx.conf: %v)", err, werr)
		}
		return fmt.Errorf("%s set server %s %s: %w", n.o.Kind, name, state, err)
	}
	return nil
}

// reloadLocked rewrites the config, sends SIGHUP to the master and waits
// until new connections can only reach workers running the new config.
func (n *nginxLB) reloadLocked(ctx context.Context) error {
	if err := n.writeConfigLocked(ctx); err != nil {
		return err
	}
	master := n.p.PID()
	old := map[int]bool{}
	for _, pid := range proc.Children(master) {
		old[pid] = true
	}
	// To the master only: the group would include workers, which must not
	// act on it.
	if err := proc.SignalPID(master, syscall.SIGHUP); err != nil {
		return fmt.Errorf("reload nginx (SIGHUP pid %d): %w", master, err)
	}
	ctx, cancel := withStartDeadline(ctx)
	defer cancel()
	// Done when a new worker runs and no old worker still accepts: old
	// workers that got the master's QUIT close their listening sockets and
	// retitle themselves "worker process is shutting down".
	err := pollUntil(ctx, n.p.Done(), "nginx reload (new workers, old ones shutting down)", func(context.Context) error {
		fresh := false
		for _, pid := range proc.Children(master) {
			if !old[pid] {
				fresh = true
				continue
			}
			if cmd := proc.Cmdline(pid); cmd != "" && !strings.Contains(cmd, "shutting down") {
				return fmt.Errorf("old worker %d still accepting", pid)
			}
		}
		if !fresh {
			return fmt.Errorf("no new worker yet")
		}
		return nil
	})
	if err != nil {
		return n.logs.withTail(err)
	}
	return nil
}
