package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	mnetwork "github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	tcexec "github.com/testcontainers/testcontainers-go/exec"

	"github.com/octoha/octoha/fakes/blob"
	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/lb"
)

// stopTimeout is how long a graceful stop may take before Docker kills.
const stopTimeout = 10 * time.Second

// Spec implements cluster.Cluster. Its DB.Kind is the database actually
// running (postgres when PostgreSQL stands in for SQL Server).
func (c *Cluster) Spec() cluster.Spec { return c.spec }

// URL implements cluster.Cluster: HAProxy's published port on 127.0.0.1.
func (c *Cluster) URL() string { return c.lbURL }

// Nodes implements cluster.Cluster; URLs are the nodes' published ports on
// 127.0.0.1, stable across restarts, pauses and partitions.
func (c *Cluster) Nodes() []cluster.Node {
	out := make([]cluster.Node, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = n.info
	}
	return out
}

// APIKey implements cluster.Cluster.
func (c *Cluster) APIKey() string { return c.spec.APIKey }

// RunID is the value of the octoha.run label on everything this run made.
func (c *Cluster) RunID() string { return c.runID }

// ReadyIn is how long Up took, from its start to a ready cluster.
func (c *Cluster) ReadyIn() time.Duration { return c.ready }

// StandIn reports whether PostgreSQL stands in for SQL Server.
func (c *Cluster) StandIn() bool { return strings.Contains(c.dbDesc, "stand-in") }

// NetworkName is the run's Docker network.
func (c *Cluster) NetworkName() string {
	if c.net == nil {
		return ""
	}
	return c.net.Name
}

// ContainerName returns the container of a part: "database", "share",
// "lb", or a node's name or ID.
func (c *Cluster) ContainerName(part string) (string, error) {
	switch part {
	case "database":
		if c.db != nil {
			return c.db.name, nil
		}
	case "share":
		if c.share != nil {
			return c.share.name, nil
		}
	case "lb":
		if c.lb != nil {
			return c.lb.name, nil
		}
	default:
		n, err := c.node(part)
		if err != nil {
			return "", err
		}
		return n.name, nil
	}
	return "", fmt.Errorf("no %s container in this cluster", part)
}

// LBStates implements cluster.Cluster: `show stat` from HAProxy's runtime
// API, through the engine (haproxyRuntime).
func (c *Cluster) LBStates(ctx context.Context) ([]lb.ServerState, error) {
	out, err := c.haproxyRuntime(ctx, "show stat")
	if err != nil {
		return nil, fmt.Errorf("haproxy states: %w", err)
	}
	names := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		names[i] = n.info.Name
	}
	return lb.HAProxyStatesFrom(out, names)
}

// HAProxyRuntimeSocket is HAProxy's runtime API inside its container: a
// unix socket (mode 600, root's), published nowhere. The API is at `level
// admin` (it drains servers), so no other local user may reach it; the
// harness reaches it through the Docker engine, whose socket is root's.
// /var/lib/haproxy exists in Debian's package and in the official image.
const HAProxyRuntimeSocket = "/var/lib/haproxy/admin.sock"

// haproxyRuntime sends one runtime API command to the HAProxy container
// (`docker exec … socat`; the command is an argument of sh, never part of
// its script) and returns the reply.
func (c *Cluster) haproxyRuntime(ctx context.Context, cmd string) (string, error) {
	cr := c.lb
	if cr == nil || cr.tc == nil {
		return "", errors.New("load balancer not started")
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	script := `printf '%s\n' "$1" | socat -t 5 stdio unix-connect:` + HAProxyRuntimeSocket
	code, r, err := cr.tc.Exec(ctx, []string{"sh", "-c", script, "sh", cmd}, tcexec.Multiplexed())
	if err != nil {
		return "", fmt.Errorf("haproxy runtime API (docker exec in %s): %w", cr.name, err)
	}
	b, err := io.ReadAll(io.LimitReader(r, 4<<20))
	if err != nil {
		return "", fmt.Errorf("haproxy runtime API (docker exec in %s): read the reply: %w", cr.name, err)
	}
	if code != 0 {
		return "", fmt.Errorf("haproxy runtime API (docker exec in %s): exit %d: %s (does the image %s have socat? make images builds one that does)", cr.name, code, strings.TrimSpace(string(b)), cr.image)
	}
	return string(b), nil
}

// Components implements cluster.Cluster.
func (c *Cluster) Components() []cluster.Component {
	c.mu.Lock()
	out := slices.Clone(c.comps)
	c.mu.Unlock()
	// Database and share start concurrently: list them in a fixed order.
	rank := map[string]int{"database": 0, "share": 1, "load balancer": 2}
	slices.SortStableFunc(out, func(a, b cluster.Component) int { return rank[a.Part] - rank[b.Part] })
	for _, n := range c.nodes {
		out = append(out, cluster.Component{Part: "node " + n.info.Name, Description: "fake Octopus Server node (container " + n.image + ", " + n.name + ")", Location: n.info.URL})
	}
	return out
}

func (c *Cluster) node(name string) (*nodeCtr, error) {
	for _, n := range c.nodes {
		if n.info.Name == name || n.info.ID == name {
			return n, nil
		}
	}
	return nil, fmt.Errorf("no node named %q in this cluster", name)
}

// KillNode implements cluster.NodeController: SIGKILL to the container
// (docker kill), a crash.
func (c *Cluster) KillNode(ctx context.Context, name string) error {
	n, err := c.node(name)
	if err != nil {
		return err
	}
	if _, err := c.e.cli.ContainerKill(ctx, n.id, client.ContainerKillOptions{Signal: "KILL"}); err != nil {
		return fmt.Errorf("kill node %s (%s): %w", name, n.name, err)
	}
	return nil
}

// PauseNode implements cluster.NodeController: docker pause freezes every
// process of the container (cgroup freezer); connections stay open.
func (c *Cluster) PauseNode(ctx context.Context, name string) error {
	n, err := c.node(name)
	if err != nil {
		return err
	}
	if _, err := c.e.cli.ContainerPause(ctx, n.id, client.ContainerPauseOptions{}); err != nil {
		return fmt.Errorf("pause node %s (%s): %w", name, n.name, err)
	}
	return nil
}

// ResumeNode implements cluster.NodeController (docker unpause).
func (c *Cluster) ResumeNode(ctx context.Context, name string) error {
	n, err := c.node(name)
	if err != nil {
		return err
	}
	if _, err := c.e.cli.ContainerUnpause(ctx, n.id, client.ContainerUnpauseOptions{}); err != nil {
		return fmt.Errorf("unpause node %s (%s): %w", name, n.name, err)
	}
	return nil
}

// StopNode implements cluster.NodeController: SIGTERM, then SIGKILL after
// 10s (docker stop).
func (c *Cluster) StopNode(ctx context.Context, name string) error {
	n, err := c.node(name)
	if err != nil {
		return err
	}
	return c.stop(ctx, &n.ctr)
}

// StartNode implements cluster.NodeController: starts a stopped or killed
// node's container again and waits until the node answers its ping (200,
// or 418 if it was draining) on the same host port as before.
func (c *Cluster) StartNode(ctx context.Context, name string) error {
	n, err := c.node(name)
	if err != nil {
		return err
	}
	if err := c.start(ctx, &n.ctr); err != nil {
		return err
	}
	return c.waitNodeUp(ctx, n)
}

func (c *Cluster) stop(ctx context.Context, cr *ctr) error {
	secs := int(stopTimeout / time.Second)
	if _, err := c.e.cli.ContainerStop(ctx, cr.id, client.ContainerStopOptions{Timeout: &secs}); err != nil {
		return fmt.Errorf("stop %s (%s): %w", cr.part, cr.name, err)
	}
	return nil
}

func (c *Cluster) start(ctx context.Context, cr *ctr) error {
	st, err := c.e.cli.ContainerInspect(ctx, cr.id, client.ContainerInspectOptions{})
	if err != nil {
		return fmt.Errorf("inspect %s (%s): %w", cr.part, cr.name, err)
	}
	if s := st.Container.State; s != nil && (s.Running || s.Paused) {
		return fmt.Errorf("%s (%s) is still running; stop or kill it first", cr.part, cr.name)
	}
	if _, err := c.e.cli.ContainerStart(ctx, cr.id, client.ContainerStartOptions{}); err != nil {
		return c.withLogTail(ctx, cr, fmt.Errorf("start %s (%s) again: %w", cr.part, cr.name, err))
	}
	return nil
}

// running reports whether a container runs, and if not why (exit code).
func (c *Cluster) running(ctx context.Context, cr *ctr) (bool, string) {
	st, err := c.e.cli.ContainerInspect(ctx, cr.id, client.ContainerInspectOptions{})
	if err != nil {
		return false, err.Error()
	}
	s := st.Container.State
	if s == nil {
		return false, "no state"
	}
	if s.Running {
		return true, ""
	}
	return false, fmt.Sprintf("%s, exit code %d", s.Status, s.ExitCode)
}

// waitNodeUp waits until a node answers its ping (200 or 418), failing
// fast if its container stops.
func (c *Cluster) waitNodeUp(ctx context.Context, n *nodeCtr) error {
	hc := &http.Client{Timeout: 2 * time.Second}
	lastCheck := time.Time{}
	for {
		code, _, err := cluster.PingStatus(ctx, hc, n.info.URL)
		if err == nil && (code == http.StatusOK || code == http.StatusTeapot) {
			return nil
		}
		if time.Since(lastCheck) > 500*time.Millisecond {
			lastCheck = time.Now()
			if ok, why := c.running(ctx, &n.ctr); !ok {
				return c.withLogTail(ctx, &n.ctr, fmt.Errorf("node %s (%s) is not running (%s)", n.info.Name, n.name, why))
			}
		}
		select {
		case <-ctx.Done():
			return c.withLogTail(ctx, &n.ctr, fmt.Errorf("node %s did not answer its ping (last: %d %v): %w", n.info.Name, code, err, ctx.Err()))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitLogCount waits until line appears more than `after` times in a
// container's log: how a restarted database or share says it is ready.
func (c *Cluster) waitLogCount(ctx context.Context, cr *ctr, line string, after int) error {
	for {
		out, err := c.e.logs(ctx, cr.id)
		if err == nil && strings.Count(out, line) > after {
			return nil
		}
		if ok, why := c.running(ctx, cr); !ok {
			return c.withLogTail(ctx, cr, fmt.Errorf("%s (%s) is not running (%s)", cr.part, cr.name, why))
		}
		select {
		case <-ctx.Done():
			return c.withLogTail(ctx, cr, fmt.Errorf("%s (%s) did not log %q again: %w", cr.part, cr.name, line, ctx.Err()))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// restart starts a stopped container and waits for its ready line.
func (c *Cluster) restart(ctx context.Context, cr *ctr, readyLine string) error {
	out, err := c.e.logs(ctx, cr.id)
	if err != nil {
		return fmt.Errorf("read %s log: %w", cr.part, err)
	}
	before := strings.Count(out, readyLine)
	if err := c.start(ctx, cr); err != nil {
		return err
	}
	return c.waitLogCount(ctx, cr, readyLine, before)
}

// StopDatabase implements cluster.DatabaseController (docker stop: a fast
// shutdown for PostgreSQL).
func (c *Cluster) StopDatabase(ctx context.Context) error {
	if c.db == nil {
		return errors.New("no database container")
	}
	return c.stop(ctx, c.db)
}

// StartDatabase implements cluster.DatabaseController: starts the
// database container again and waits until it says it accepts connections.
func (c *Cluster) StartDatabase(ctx context.Context) error {
	if c.db == nil {
		return errors.New("no database container")
	}
	return c.restart(ctx, c.db, c.dbReadyLine)
}

// StopShare implements cluster.ShareController (docker stop of Samba).
func (c *Cluster) StopShare(ctx context.Context) error {
	if c.share == nil {
		return errors.New("no share container")
	}
	return c.stop(ctx, c.share)
}

// StartShare implements cluster.ShareController: starts Samba again and
// waits until smbd listens. Files written before survive (they live in the
// container).
func (c *Cluster) StartShare(ctx context.Context) error {
	if c.share == nil {
		return errors.New("no share container")
	}
	return c.restart(ctx, c.share, sambaReadyLine)
}

// PartitionNode implements cluster.Partitioner: disconnects the node's
// container from the run's network. The node then reaches neither the
// database nor the share, and neither HAProxy nor the harness reaches it
// (its published port goes with the network).
func (c *Cluster) PartitionNode(ctx context.Context, name string) error {
	n, err := c.node(name)
	if err != nil {
		return err
	}
	if _, err := c.e.cli.NetworkDisconnect(ctx, c.net.ID, client.NetworkDisconnectOptions{Container: n.id, Force: true}); err != nil {
		return fmt.Errorf("partition node %s (disconnect %s from %s): %w", name, n.name, c.net.Name, err)
	}
	return nil
}

// HealNode implements cluster.Partitioner: reconnects the node's container
// with its alias and waits until the node answers on its host port again
// (Docker re-publishes the port with the network).
func (c *Cluster) HealNode(ctx context.Context, name string) error {
	n, err := c.node(name)
	if err != nil {
		return err
	}
	if _, err := c.e.cli.NetworkConnect(ctx, c.net.ID, client.NetworkConnectOptions{
		Container: n.id, EndpointConfig: &mnetwork.EndpointSettings{Aliases: []string{n.alias}},
	}); err != nil {
		return fmt.Errorf("heal node %s (connect %s to %s): %w", name, n.name, c.net.Name, err)
	}
	return c.waitNodeUp(ctx, n)
}

// PackageFiles implements cluster.FileLister: the Packages store as the
// Samba share holds it, read over SMB through its published port.
func (c *Cluster) PackageFiles(ctx context.Context) ([]blob.Info, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.share == nil {
		return nil, errors.New("no share container")
	}
	if c.pkgStore == nil {
		st, err := blob.Open(ctx, c.shareURL("127.0.0.1", c.share.ports[SMBPort], "Packages"), blob.WithPassword(c.smbPassword))
		if err != nil {
			return nil, fmt.Errorf("open Packages store: %w", err)
		}
		c.pkgStore = st
	}
	files, err := c.pkgStore.Walk(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("list Packages store: %w", err)
	}
	return files, nil
}

// Balancer implements cluster.LBController: HAProxy's container as an
// lb.Balancer that is also an lb.Controller (runtime API).
func (c *Cluster) Balancer() lb.Balancer { return &balancer{c: c} }

// Down implements cluster.Cluster: saves logs (Options.LogDir), then
// removes every container, the network and any volume labelled with the
// run ID. It is safe to call more than once.
func (c *Cluster) Down(ctx context.Context) error {
	c.mu.Lock()
	if c.down {
		c.mu.Unlock()
		return nil
	}
	c.down = true
	pkgStore := c.pkgStore
	c.mu.Unlock()
	if pkgStore != nil {
		_ = pkgStore.Close()
	}
	var errs []error
	if c.logDir != "" {
		if err := c.saveLogs(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if err := c.e.cleanup(ctx, c.runID); err != nil {
		errs = append(errs, err)
	}
	if left, err := c.e.leftovers(ctx, c.runID); err != nil {
		errs = append(errs, err)
	} else if !left.Empty() {
		errs = append(errs, fmt.Errorf("run %s: still present after cleanup: %s", c.runID, left))
	} else {
		c.log.Info("docker cluster removed", "containers", "none left", "network", c.NetworkName())
	}
	c.e.close()
	return errors.Join(errs...)
}

// saveLogs writes each container's log into the log directory.
func (c *Cluster) saveLogs(ctx context.Context) error {
	if err := os.MkdirAll(c.logDir, 0o755); err != nil {
		return fmt.Errorf("create log directory: %w", err)
	}
	cs, err := c.e.cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: runFilter(c.runID)})
	if err != nil {
		return fmt.Errorf("list containers for their logs: %w", err)
	}
	var errs []error
	for _, ct := range cs.Items {
		name := ct.ID[:12]
		if len(ct.Names) > 0 {
			name = strings.TrimPrefix(ct.Names[0], "/")
		}
		out, err := c.e.logs(ctx, ct.ID)
		if err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("log of %s: %w", name, err))
		}
		if err := os.WriteFile(filepath.Join(c.logDir, name+".log"), []byte(out), 0o644); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// balancer is HAProxy's container seen as an lb.Balancer.
type balancer struct{ c *Cluster }

var (
	_ lb.Balancer   = (*balancer)(nil)
	_ lb.Controller = (*balancer)(nil)
)

func (b *balancer) Kind() lb.Kind { return lb.HAProxy }
func (b *balancer) URL() string   { return b.c.lbURL }

func (b *balancer) Describe() string {
	return "HAProxy (real, container " + b.c.images.HAProxy + ")"
}

// PID is HAProxy's process ID on the host while it runs, else 0.
func (b *balancer) PID() int {
	if b.c.lb == nil {
		return 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := b.c.e.cli.ContainerInspect(ctx, b.c.lb.id, client.ContainerInspectOptions{})
	if err != nil || st.Container.State == nil || !st.Container.State.Running {
		return 0
	}
	return st.Container.State.Pid
}

// Start starts the stopped HAProxy container and waits until it answers.
func (b *balancer) Start(ctx context.Context) error {
	if b.c.lb == nil {
		return errors.New("no load balancer container")
	}
	if err := b.c.start(ctx, b.c.lb); err != nil {
		return err
	}
	hc := &http.Client{Timeout: 2 * time.Second}
	for {
		if _, _, err := cluster.PingStatus(ctx, hc, b.c.lbURL); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return b.c.withLogTail(ctx, b.c.lb, fmt.Errorf("HAProxy did not answer after start: %w", ctx.Err()))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop stops HAProxy (docker stop: SIGUSR1, a soft stop).
func (b *balancer) Stop(ctx context.Context) error {
	if b.c.lb == nil {
		return nil
	}
	return b.c.stop(ctx, b.c.lb)
}

func (b *balancer) States(ctx context.Context) ([]lb.ServerState, error) { return b.c.LBStates(ctx) }

// SetServerState runs `set server octo/<name> state ready|drain|maint`
// through the runtime API; DOWN maps to maint, as with the haproxy driver.
func (b *balancer) SetServerState(ctx context.Context, name string, state lb.State) error {
	if _, err := b.c.node(name); err != nil {
		return err
	}
	var word string
	switch state {
	case lb.StateUp:
		word = "ready"
	case lb.StateDrain:
		word = "drain"
	case lb.StateMaint, lb.StateDown:
		word = "maint"
	default:
		return fmt.Errorf("haproxy: cannot set a server to %s (want UP, DRAIN, MAINT or DOWN)", state)
	}
	cmd := fmt.Sprintf("set server %s/%s state %s", lb.HAProxyBackend, name, word)
	out, err := b.c.haproxyRuntime(ctx, cmd)
	if err != nil {
		return err
	}
	if out = strings.TrimSpace(out); out != "" {
		return fmt.Errorf("haproxy %q: %s", cmd, out)
	}
	return nil
}

// tcLogger sends testcontainers' progress lines to slog at debug level.
type tcLogger struct{ log *slog.Logger }

func (l tcLogger) Printf(format string, v ...any) {
	l.log.Debug(strings.TrimSpace(fmt.Sprintf(format, v...)), "from", "testcontainers")
}

// Can implements cluster.Capable: containers can be killed, paused,
// stopped and disconnected, and the database and the share are containers
// of their own; network faults need the links through Toxiproxy.
func (c *Cluster) Can(cp cluster.Capability) error {
	if cp == cluster.CapNetwork {
		return c.canNetwork()
	}
	if cp == cluster.CapDBFailover {
		return errors.New("database failover groups (primary + standby behind one listener) are not supported on the docker provider yet; use the local provider")
	}
	return nil
}
