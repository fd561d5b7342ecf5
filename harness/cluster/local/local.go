// Package local is the cluster provider that runs everything as child
// processes on this machine: fake nodes (`octoha node`) on their own
// loopback addresses, a real load balancer (HAProxy or nginx, or the
// embedded proxy when none is installed), PostgreSQL or SQLite, and Samba
// or a local directory. Every child is in its own process group with a
// parent-death signal, so nothing outlives the harness; Down removes the
// run directory.
package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/octoha/octoha/fakes/api"
	"github.com/octoha/octoha/fakes/blob"
	"github.com/octoha/octoha/fakes/node/launch"
	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/lb"
	"github.com/octoha/octoha/internal/proc"
	"github.com/octoha/octoha/internal/redact"
	"github.com/octoha/octoha/internal/selfsigned"
	"github.com/octoha/octoha/services/postgres"
	"github.com/octoha/octoha/services/samba"
	"github.com/octoha/octoha/services/toxiproxy"
)

// Environment variables that carry secrets to node processes, so they never
// appear on a command line (visible to every user through ps). They are the
// node's launch contract, named in fakes/node/launch.
const (
	EnvAPIKey      = launch.EnvAPIKey
	EnvDB          = launch.EnvDB
	EnvSMBPassword = launch.EnvSMBPassword
	// EnvBinary names the octoha binary that runs the nodes when the
	// current executable is not octoha (e.g. under go test).
	EnvBinary = "OCTOHA_BIN"
)

// Ports of the services the local provider starts.
const (
	PostgresPort = 5432
	SMBPort      = 4445
)

// StateFile is the name of the run directory's state file, read by
// `octoha status` and `octoha down` from other processes.
const StateFile = "state.json"

// ErrRunning means the run directory already holds a live cluster.
var ErrRunning = errors.New("a cluster is already running in this run directory")

// Options configures Up.
type Options struct {
	// RunDir holds configs, data, logs and the state file. Default
	// DefaultRunDir(spec.Name).
	RunDir string
	// Binary is the octoha executable that runs nodes; default $OCTOHA_BIN,
	// else the current executable.
	Binary string
	// Logger receives progress and fallback announcements.
	Logger *slog.Logger
	// NoFallback makes Up fail instead of replacing a missing real
	// component (load balancer, PostgreSQL, Samba) with an embedded one.
	NoFallback bool
	// ReadyTimeout bounds the wait for readiness; default 60s.
	ReadyTimeout time.Duration
}

// DefaultRunDir is /tmp/octoha-<uid>/<name> ($TMPDIR is honoured). The
// base directory /tmp/octoha-<uid> is created DirMode (0700; 0711 as root),
// and one that is a symbolic link, someone else's, or writable by others
// is refused (CheckRunDir), since anyone could have created it first.
//
// It stays under /tmp rather than $XDG_RUNTIME_DIR or the user's cache
// directory: as root, PostgreSQL runs as the postgres user and must reach
// its data directory, which it cannot under /run/user/0 or /root (0700,
// and octoha does not change the mode of directories it did not create);
// $XDG_RUNTIME_DIR is unset under sudo, in CI and in containers, so up and
// down run in different environments would disagree on the place; and it
// is a small tmpfs where a local share of 1 GB packages does not fit.
func DefaultRunDir(name string) string {
	return filepath.Join(defaultBase(), name)
}

// Cluster is a running local cluster.
type Cluster struct {
	spec  cluster.Spec
	dir   string
	bin   string
	log   *slog.Logger
	nodes []*nodeProc
	lb    lb.Balancer
	pg    *postgres.Server
	group *dbGroup // database.replica: a failover group instead of pg (dbgroup.go)
	smb   *samba.Server
	dsn   string
	// tp carries every link when spec.Toxiproxy is set (network.go).
	tp *toxiproxy.Server
	// locations of the three stores, as nodes receive them (smb:// URLs
	// without password, or directories)
	packages, artifacts, tasklogs string
	comps                         []cluster.Component

	mu       sync.Mutex
	pkgStore blob.Store
	down     bool
}

type nodeProc struct {
	info cluster.Node
	addr string
	args []string
	env  []string
	logf *os.File
	p    *proc.Process
}

var (
	_ cluster.Cluster            = (*Cluster)(nil)
	_ cluster.NodeController     = (*Cluster)(nil)
	_ cluster.DatabaseController = (*Cluster)(nil)
	_ cluster.ShareController    = (*Cluster)(nil)
	_ cluster.FileLister         = (*Cluster)(nil)
	_ cluster.LBController       = (*Cluster)(nil)
	_ cluster.NetworkController  = (*Cluster)(nil)
	_ cluster.Partitioner        = (*Cluster)(nil)
)

// Up brings a cluster up and returns once it is ready: every node answers
// its ping with 200 directly, the load balancer reports each UP, and the
// load balancer's own URL answers. On error everything started is torn
// down again.
func Up(ctx context.Context, spec cluster.Spec, opts Options) (_ *Cluster, err error) {
	if err := Supported(); err != nil {
		return nil, err
	}
	spec.Provider = cluster.ProviderLocal
	spec, err = spec.Normalize()
	if err != nil {
		return nil, fmt.Errorf("cluster spec: %w", err)
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.ReadyTimeout <= 0 {
		opts.ReadyTimeout = 60 * time.Second
	}
	bin, err := binary(opts.Binary)
	if err != nil {
		return nil, err
	}
	dir := opts.RunDir
	if dir == "" {
		dir = DefaultRunDir(spec.Name)
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return nil, fmt.Errorf("run directory: %w", err)
	}
	if err := claimRunDir(dir); err != nil {
		return nil, err
	}
	c := &Cluster{spec: spec, dir: dir, bin: bin, log: opts.Logger.With("cluster", spec.Name)}
	defer func() {
		if err != nil {
			c.log.Error("cluster did not come up; tearing down", "err", err)
			if derr := c.Down(context.WithoutCancel(ctx)); derr != nil {
				err = errors.Join(err, derr)
			}
		}
	}()
	if err := c.writeState(false); err != nil {
		return nil, err
	}
	if err := c.checkAddresses(); err != nil {
		return nil, err
	}
	if err := c.startDatabase(ctx, opts.NoFallback); err != nil {
		return nil, err
	}
	if err := c.startStorage(ctx, opts.NoFallback); err != nil {
		return nil, err
	}
	if err := c.startToxiproxy(ctx); err != nil {
		return nil, err
	}
	rctx, cancel := context.WithTimeout(ctx, opts.ReadyTimeout)
	defer cancel()
	if err := c.startNodes(rctx); err != nil {
		return nil, err
	}
	if err := c.startLB(rctx, opts.NoFallback); err != nil {
		return nil, err
	}
	if err := cluster.WaitReady(rctx, c); err != nil {
		return nil, fmt.Errorf("cluster not ready: %w", err)
	}
	if err := c.writeState(true); err != nil {
		return nil, err
	}
	c.log.Info("cluster ready", "lb", c.URL(), "nodes", len(c.nodes), "runDir", dir)
	return c, nil
}

// binary finds the octoha executable that runs nodes.
func binary(explicit string) (string, error) {
	cand := explicit
	if cand == "" {
		cand = os.Getenv(EnvBinary)
	}
	if cand == "" {
		exe, err := os.Executable()
		if err == nil && filepath.Base(exe) == "octoha" {
			cand = exe
		}
	}
	if cand == "" {
		return "", fmt.Errorf("cannot find the octoha binary to run nodes: build it (make build) and set $%s, or run octoha itself", EnvBinary)
	}
	abs, err := filepath.Abs(cand)
	if err != nil {
		return "", err
	}
	if st, err := os.Stat(abs); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
		return "", fmt.Errorf("octoha binary %s is not an executable file (build it with make build)", abs)
	}
	return abs, nil
}

// claimRunDir creates the run directory (DirMode), refusing an unsafe one
// (CheckRunDir) or one that holds a live cluster, and clearing one left by
// a dead run.
func claimRunDir(dir string) error {
	if err := PrepareParent(dir); err != nil {
		return err
	}
	if st, err := ReadState(dir); err == nil {
		if st.Alive() {
			return fmt.Errorf("%w: %s (pid %d); run `octoha down --run-dir %s` first", ErrRunning, dir, st.SupervisorPID, dir)
		}
		if err := st.unverifiableOwner(); err != nil {
			return err
		}
		// A dead run's leftovers: make sure none of its children survived.
		st.killAll()
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("remove stale run directory %s: %w", dir, err)
		}
	} else if errors.Is(err, ErrUnsafeRunDir) {
		return err
	} else if entries, rerr := os.ReadDir(dir); rerr == nil && len(entries) > 0 {
		return fmt.Errorf("run directory %s exists and is not an octoha run directory (no %s); choose another --run-dir", dir, StateFile)
	}
	if err := mkdirPrivate(dir); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("create run directory: %w", err)
	}
	// Neither the parent nor an empty run directory the user made (checked
	// by PrepareParent) has its mode changed: a directory octoha did not
	// create is not octoha's to open up. What octoha creates is DirMode,
	// which lets PostgreSQL (as root, the postgres user) traverse it.
	return nil
}

// checkAddresses fails early, and clearly, if another process holds one of
// the cluster's addresses (typically another cluster on the same network).
func (c *Cluster) checkAddresses() error {
	addrs := []string{c.spec.LBAddr()}
	for i := range c.spec.Nodes {
		addrs = append(addrs, c.spec.NodeAddr(i))
	}
	if c.spec.Toxiproxy {
		addrs = append(addrs, c.proxiedAddrs()...)
	}
	for _, a := range addrs {
		l, err := net.Listen("tcp", a)
		if err != nil {
			return fmt.Errorf("address %s is not free (another octoha cluster on network %s? see `octoha status`, or use --network): %w", a, c.spec.Network, err)
		}
		l.Close()
	}
	return nil
}

func (c *Cluster) logFile(name string) (*os.File, error) {
	if err := privateDir(filepath.Join(c.dir, "logs")); err != nil {
		return nil, err
	}
	// 0600: a node or balancer may log what a client sent.
	return openNoFollow(filepath.Join(c.dir, "logs", name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
}

// announce logs a fallback loudly and records it as an embedded component.
func (c *Cluster) announce(part, msg string) {
	c.log.Warn("EMBEDDED FALLBACK: "+msg, "part", part)
}

func (c *Cluster) startDatabase(ctx context.Context, noFallback bool) error {
	switch c.spec.DB.Kind {
	case cluster.DBPostgres:
		if _, err := postgres.Available(); err != nil {
			if noFallback {
				return err
			}
			c.announce("database", "PostgreSQL is not installed ("+err.Error()+"); using SQLite, database-outage scenarios are skipped")
			c.spec.DB.Kind = cluster.DBSQLite
			return c.startDatabase(ctx, noFallback)
		}
		logf, err := c.logFile("postgres")
		if err != nil {
			return err
		}
		// PostgreSQL's OS user (as root) traverses this directory to its
		// own 0700 data and socket directories; no one else may list it.
		if err := searchableDir(filepath.Join(c.dir, "postgres")); err != nil {
			return err
		}
		if c.spec.DB.Replica != "" {
			g, err := startDBGroup(ctx, c.spec.DB.Replica, filepath.Join(c.dir, "postgres"), c.spec.DBHost(), logf, c.log)
			if err != nil {
				return fmt.Errorf("start the PostgreSQL failover group: %w", err)
			}
			c.group, c.dsn = g, g.DSN()
			c.comps = append(c.comps, cluster.Component{Part: "database", Description: "PostgreSQL failover group (real primary + " + c.spec.DB.Replica + " streaming standby behind a relay listener)", Location: g.Addr()})
			return nil
		}
		pg, err := postgres.Start(ctx, postgres.Options{Dir: filepath.Join(c.dir, "postgres"), Host: c.spec.DBHost(), Port: PostgresPort, Log: logf})
		if err != nil {
			return fmt.Errorf("start PostgreSQL: %w", err)
		}
		c.pg, c.dsn = pg, pg.DSN()
		c.comps = append(c.comps, cluster.Component{Part: "database", Description: "PostgreSQL (real, throwaway cluster)", Location: pg.Addr(), PID: pg.PID()})
	case cluster.DBSQLServer:
		c.dsn = c.spec.DB.DSN
		c.comps = append(c.comps, cluster.Component{Part: "database", Description: "SQL Server (given DSN)", Location: redact.DSN(c.dsn)})
	default:
		path := filepath.Join(c.dir, "db", "octopus.db")
		// Users and API key hashes: the owner's alone.
		if err := privateDir(filepath.Dir(path)); err != nil {
			return err
		}
		c.dsn = "sqlite:" + path
		c.comps = append(c.comps, cluster.Component{Part: "database", Description: "SQLite file (embedded; database faults unavailable)", Embedded: true, Location: path})
	}
	return nil
}

func (c *Cluster) startStorage(ctx context.Context, noFallback bool) error {
	if c.spec.Storage.Kind == cluster.StorageSMB {
		if _, err := samba.Available(); err != nil {
			if noFallback {
				return err
			}
			c.announce("share", "Samba is not installed ("+err.Error()+"); using a local directory, share-outage scenarios are skipped")
			c.spec.Storage.Kind = cluster.StorageLocal
		} else {
			logf, err := c.logFile("samba")
			if err != nil {
				return err
			}
			// smbd runs as the user and serves the share as the user.
			if err := privateDir(filepath.Join(c.dir, "samba")); err != nil {
				return err
			}
			srv, err := samba.Start(ctx, samba.Options{Dir: filepath.Join(c.dir, "samba"), Host: c.spec.ShareHost(), Port: SMBPort, Log: logf})
			if err != nil {
				return fmt.Errorf("start Samba: %w", err)
			}
			c.smb = srv
			c.packages = srv.URLWithoutPassword("Packages")
			c.artifacts = srv.URLWithoutPassword("Artifacts")
			c.tasklogs = srv.URLWithoutPassword("TaskLogs")
			c.comps = append(c.comps, cluster.Component{Part: "share", Description: "Samba smbd (real SMB 3 share)", Location: c.packages, PID: srv.PID()})
			return nil
		}
	}
	root := filepath.Join(c.dir, "share")
	// Every stored package: the owner's alone.
	if err := privateDir(root); err != nil {
		return err
	}
	for _, d := range []string{"Packages", "Artifacts", "TaskLogs"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return err
		}
	}
	c.packages = filepath.Join(root, "Packages")
	c.artifacts = filepath.Join(root, "Artifacts")
	c.tasklogs = filepath.Join(root, "TaskLogs")
	c.comps = append(c.comps, cluster.Component{Part: "share", Description: "local directory (embedded; share faults unavailable)", Embedded: true, Location: root})
	return nil
}

func (c *Cluster) startNodes(ctx context.Context) error {
	cert, key, err := c.pollingCert()
	if err != nil {
		return err
	}
	pollAddrs, err := c.spec.PollingEndpoints(cluster.LayoutUniqueAddress)
	if err != nil {
		return err
	}
	sec := launch.Secrets{APIKeys: []string{c.spec.APIKey}, DB: c.dsn}
	if c.smb != nil {
		sec.SMBPassword = c.smb.Password()
	}
	for i := range c.spec.Nodes {
		// Through Toxiproxy, each node reaches the database and the share
		// at proxies on its own address (network.go).
		nsec := sec
		nsec.DB = c.nodeDSN(i)
		n := &nodeProc{
			info: cluster.Node{ID: cluster.NodeID(i), Name: cluster.NodeName(i), URL: "http://" + c.spec.NodeAddr(i), OS: c.spec.NodeOS(i)},
			addr: c.spec.NodeAddr(i),
			env:  append(os.Environ(), nsec.Env()...),
		}
		lc := launch.Default()
		lc.ID, lc.Name, lc.Listen = n.info.ID, n.info.Name, n.addr
		lc.Packages, lc.Artifacts, lc.TaskLogs = c.nodeShare(i, c.packages), c.nodeShare(i, c.artifacts), c.nodeShare(i, c.tasklogs)
		lc.Heartbeat, lc.UnhealthyAfter = c.spec.Node.Heartbeat, c.spec.Node.UnhealthyAfter
		lc.MaxConcurrentTasks = c.spec.Node.MaxConcurrentTasks
		lc.ShutdownGrace = 5 * time.Second
		lc.UnsafeAckBeforeStore = c.spec.Node.UnsafeAckBeforeStore
		c.spec.Node.ApplyTasks(&lc)
		c.spec.ApplyNode(i, &lc)
		lc.PollingListen = pollAddrs[i]
		lc.PollingCert, lc.PollingKey = cert, key
		n.args = append([]string{launch.Subcommand}, lc.Args()...)
		c.nodes = append(c.nodes, n)
		if err := c.spawn(n); err != nil {
			return err
		}
	}
	for _, n := range c.nodes {
		if err := c.waitNodeUp(ctx, n); err != nil {
			return err
		}
	}
	return nil
}

func (c *Cluster) spawn(n *nodeProc) error {
	if n.logf == nil {
		f, err := c.logFile(n.info.Name)
		if err != nil {
			return err
		}
		n.logf = f
	}
	p, err := proc.Start(proc.Spec{Name: "node " + n.info.Name, Path: c.bin, Args: n.args, Env: n.env, Log: n.logf, Dir: c.dir})
	if err != nil {
		return err
	}
	n.p = p
	return nil
}

// waitNodeUp waits until a node answers its ping (200, or 418 if it was
// drained before), failing fast if the process exits.
func (c *Cluster) waitNodeUp(ctx context.Context, n *nodeProc) error {
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		code, _, err := cluster.PingStatus(ctx, client, n.info.URL)
		if err == nil && (code == http.StatusOK || code == http.StatusTeapot) {
			return nil
		}
		select {
		case <-n.p.Done():
			return fmt.Errorf("node %s exited during startup (%v); see %s", n.info.Name, n.p.Err(), n.logf.Name())
		case <-ctx.Done():
			return fmt.Errorf("node %s did not answer its ping (last: %d %v); see %s: %w", n.info.Name, code, err, n.logf.Name(), ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (c *Cluster) startLB(ctx context.Context, noFallback bool) error {
	kind, _ := lb.ParseKind(c.spec.LB.Kind)
	if err := lb.Available(kind); err != nil {
		if noFallback {
			return err
		}
		c.announce("load balancer", fmt.Sprintf("%s is not installed (%v); using the EMBEDDED in-process Go proxy — results say nothing about a real load balancer", kind, err))
		kind = lb.Embedded
		c.spec.LB.Kind = string(kind)
	}
	logf, err := c.logFile("lb")
	if err != nil {
		return err
	}
	backends := make([]lb.Backend, 0, len(c.nodes))
	for i, n := range c.nodes {
		backends = append(backends, lb.Backend{Name: n.info.Name, Addr: c.lbToNode(i)})
	}
	lbHost, _, _ := net.SplitHostPort(c.spec.LBAddr())
	polling := &lb.Polling{UniqueHost: lbHost, Port: c.spec.PollingPort}
	if vias, err := c.spec.PollingEndpoints(cluster.LayoutViaLB); err == nil {
		polling.ViaLB = vias[0]
	}
	nodeAddrs, _ := c.spec.PollingEndpoints(cluster.LayoutUniqueAddress)
	for i, n := range c.nodes {
		polling.Backends = append(polling.Backends, lb.Backend{Name: n.info.Name, Addr: nodeAddrs[i]})
	}
	// The balancer runs as the user (nginx as root keeps `user root`).
	if err := privateDir(filepath.Join(c.dir, "lb")); err != nil {
		return err
	}
	bal, err := lb.New(lb.Options{
		Kind: kind, Listen: c.lbListen(), Backends: backends, Dir: filepath.Join(c.dir, "lb"),
		Interval: c.spec.LB.Interval, Fall: c.spec.LB.Fall, Rise: c.spec.LB.Rise, Sticky: c.spec.LB.Sticky,
		Drain: lb.DrainMode(c.spec.LB.Drain), ShutdownSessions: c.spec.LB.ShutdownSessions,
		ServerTimeout: c.spec.LB.ServerTimeout, RequestTimeout: c.spec.LB.RequestTimeout, Log: logf, Polling: polling,
		Azure: c.spec.LB.Azure.Options(),
	})
	if err != nil {
		return fmt.Errorf("configure load balancer: %w", err)
	}
	if err := bal.Start(ctx); err != nil {
		return fmt.Errorf("start load balancer: %w", err)
	}
	c.lb = bal
	c.comps = append(c.comps, cluster.Component{Part: "load balancer", Description: bal.Describe(), Embedded: kind == lb.Embedded, Location: bal.URL(), PID: bal.PID()})
	return nil
}

// Spec implements cluster.Cluster.
func (c *Cluster) Spec() cluster.Spec { return c.spec }

// pollingCert makes the cluster's one polling server certificate, which
// every node presents, in the run directory (the key readable by its
// owner only), and records its thumbprint in the spec.
func (c *Cluster) pollingCert() (certFile, keyFile string, err error) {
	dir := filepath.Join(c.dir, "polling")
	certFile, keyFile = filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	cert, err := selfsigned.New("octoha cluster " + c.spec.Name)
	if err == nil {
		err = privateDir(dir)
	}
	if err == nil {
		err = os.WriteFile(certFile, cert.CertPEM, 0o644)
	}
	if err == nil {
		err = os.WriteFile(keyFile, cert.KeyPEM, 0o600)
	}
	if err != nil {
		return "", "", fmt.Errorf("make the polling certificate: %w", err)
	}
	c.spec.PollingThumbprint = api.Thumbprint(cert.TLS.Certificate[0])
	return certFile, keyFile, nil
}

// URL implements cluster.Cluster.
func (c *Cluster) URL() string {
	if c.tp != nil {
		return "http://" + c.spec.LBAddr()
	}
	if c.lb != nil {
		return c.lb.URL()
	}
	return "http://" + c.spec.LBAddr()
}

// Nodes implements cluster.Cluster.
func (c *Cluster) Nodes() []cluster.Node {
	out := make([]cluster.Node, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = n.info
	}
	return out
}

// APIKey implements cluster.Cluster.
func (c *Cluster) APIKey() string { return c.spec.APIKey }

// RunDir is where configs, data and logs live.
func (c *Cluster) RunDir() string { return c.dir }

// Balancer implements cluster.LBController.
func (c *Cluster) Balancer() lb.Balancer { return c.lb }

// LBStates implements cluster.Cluster.
func (c *Cluster) LBStates(ctx context.Context) ([]lb.ServerState, error) {
	if c.lb == nil {
		return nil, errors.New("load balancer not started")
	}
	return c.lb.States(ctx)
}

// Components implements cluster.Cluster.
func (c *Cluster) Components() []cluster.Component {
	out := slices.Clone(c.comps)
	for _, n := range c.nodes {
		pid := 0
		if n.p != nil && !n.p.Exited() {
			pid = n.p.PID()
		}
		out = append(out, cluster.Component{Part: "node " + n.info.Name, Description: "fake Octopus Server node (octoha node)", Location: n.info.URL, PID: pid})
	}
	return out
}

func (c *Cluster) node(name string) (*nodeProc, error) {
	for _, n := range c.nodes {
		if n.info.Name == name || n.info.ID == name {
			return n, nil
		}
	}
	return nil, fmt.Errorf("no node named %q in this cluster", name)
}

// KillNode implements cluster.NodeController.
func (c *Cluster) KillNode(ctx context.Context, name string) error {
	n, err := c.node(name)
	if err != nil {
		return err
	}
	return n.p.Kill(ctx)
}

// PauseNode implements cluster.NodeController.
func (c *Cluster) PauseNode(_ context.Context, name string) error {
	n, err := c.node(name)
	if err != nil {
		return err
	}
	return n.p.Pause()
}

// ResumeNode implements cluster.NodeController.
func (c *Cluster) ResumeNode(_ context.Context, name string) error {
	n, err := c.node(name)
	if err != nil {
		return err
	}
	return n.p.Resume()
}

// StopNode implements cluster.NodeController.
func (c *Cluster) StopNode(ctx context.Context, name string) error {
	n, err := c.node(name)
	if err != nil {
		return err
	}
	return n.p.Stop(ctx, 10*time.Second)
}

// StartNode implements cluster.NodeController.
func (c *Cluster) StartNode(ctx context.Context, name string) error {
	n, err := c.node(name)
	if err != nil {
		return err
	}
	if !n.p.Exited() {
		return fmt.Errorf("node %s is still running (pid %d)", name, n.p.PID())
	}
	if err := c.spawn(n); err != nil {
		return err
	}
	_ = c.writeState(true)
	return c.waitNodeUp(ctx, n)
}

// StopDatabase implements cluster.DatabaseController.
func (c *Cluster) StopDatabase(ctx context.Context) error {
	if c.pg == nil {
		return errors.New("the database is " + c.spec.DB.Kind + ", which this provider cannot stop (use database kind postgres)")
	}
	return c.pg.Stop(ctx)
}

// StartDatabase implements cluster.DatabaseController.
func (c *Cluster) StartDatabase(ctx context.Context) error {
	if c.pg == nil {
		return errors.New("the database is " + c.spec.DB.Kind + ", which this provider cannot start")
	}
	return c.pg.StartAgain(ctx)
}

// StopShare implements cluster.ShareController.
func (c *Cluster) StopShare(ctx context.Context) error {
	if c.smb == nil {
		return errors.New("the share is a local directory, which cannot be taken away (use storage kind smb)")
	}
	return c.smb.Stop(ctx)
}

// StartShare implements cluster.ShareController.
func (c *Cluster) StartShare(ctx context.Context) error {
	if c.smb == nil {
		return errors.New("the share is a local directory, which cannot be taken away")
	}
	return c.smb.StartAgain(ctx)
}

// PackageFiles implements cluster.FileLister: the Packages store as the
// share holds it.
func (c *Cluster) PackageFiles(ctx context.Context) ([]blob.Info, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pkgStore == nil {
		var opts []blob.Option
		if c.smb != nil {
			opts = append(opts, blob.WithPassword(c.smb.Password()))
		}
		st, err := blob.Open(ctx, c.packages, opts...)
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

// Down implements cluster.Cluster: everything started is stopped (nodes
// gracefully, then killed), and the run directory is removed.
func (c *Cluster) Down(ctx context.Context) error {
	c.mu.Lock()
	if c.down {
		c.mu.Unlock()
		return nil
	}
	c.down = true
	pkgStore := c.pkgStore
	c.mu.Unlock()
	var errs []error
	if pkgStore != nil {
		_ = pkgStore.Close()
	}
	if c.lb != nil {
		if err := c.lb.Stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop load balancer: %w", err))
		}
	}
	var (
		wg    sync.WaitGroup
		errMu sync.Mutex
	)
	for _, n := range c.nodes {
		if n.p == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := n.p.Stop(ctx, 5*time.Second); err != nil {
				errMu.Lock()
				errs = append(errs, fmt.Errorf("stop node %s: %w", n.info.Name, err))
				errMu.Unlock()
			}
		}()
	}
	wg.Wait()
	for _, n := range c.nodes {
		if n.logf != nil {
			n.logf.Close()
		}
	}
	if c.tp != nil {
		if err := c.tp.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop Toxiproxy: %w", err))
		}
	}
	if c.smb != nil {
		if err := c.smb.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop Samba: %w", err))
		}
	}
	if c.pg != nil {
		if err := c.pg.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop PostgreSQL: %w", err))
		}
	}
	if c.group != nil {
		if err := c.group.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop the PostgreSQL failover group: %w", err))
		}
	}
	if err := os.RemoveAll(c.dir); err != nil {
		errs = append(errs, fmt.Errorf("remove run directory: %w", err))
	}
	return errors.Join(errs...)
}

// PIDs returns the process IDs of every child the cluster started that is
// still running.
func (c *Cluster) PIDs() []int {
	var pids []int
	for _, n := range c.nodes {
		if n.p != nil && !n.p.Exited() {
			pids = append(pids, n.p.PID())
		}
	}
	if c.lb != nil && c.lb.PID() > 0 {
		pids = append(pids, c.lb.PID())
	}
	if c.pg != nil && c.pg.PID() > 0 {
		pids = append(pids, c.pg.PID())
	}
	if c.smb != nil && c.smb.PID() > 0 {
		pids = append(pids, c.smb.PID())
	}
	if c.group != nil {
		pids = append(pids, c.group.PIDs()...)
	}
	if pid := c.tp.PID(); pid > 0 {
		pids = append(pids, pid)
	}
	return pids
}

// State is the run directory's state file: what other octoha processes
// need to show and stop a cluster they did not start. It holds no secrets;
// the API key is in a separate 0600 file.
type State struct {
	Name          string              `json:"name"`
	RunDir        string              `json:"runDir"`
	SupervisorPID int                 `json:"supervisorPid"`
	Ready         bool                `json:"ready"`
	Started       time.Time           `json:"started"`
	LBURL         string              `json:"lbURL"`
	LBKind        string              `json:"lbKind"`
	LBDir         string              `json:"lbDir"`
	Nodes         []cluster.Node      `json:"nodes"`
	Components    []cluster.Component `json:"components"`
	PIDs          []int               `json:"pids"`
	// Starts holds each recorded process's start time (clock ticks since
	// boot), so that a PID the kernel has since given to an unrelated
	// process (pid_max is often 32768) is never taken for ours: not
	// signalled by down, not reported alive by status.
	Starts map[int]uint64 `json:"starts,omitempty"`
	Spec   cluster.Spec   `json:"spec"`
	// ToxiproxySocket is the Toxiproxy API's unix socket (Spec.Toxiproxy).
	ToxiproxySocket string `json:"toxiproxySocket,omitempty"`
}

// APIKeyFile is where the run directory keeps the API key (mode 0600).
const APIKeyFile = "api-key"

func (c *Cluster) writeState(ready bool) error {
	st := State{
		Name: c.spec.Name, RunDir: c.dir, SupervisorPID: os.Getpid(), Ready: ready, Started: time.Now().UTC(),
		LBURL: c.URL(), LBKind: c.spec.LB.Kind, LBDir: filepath.Join(c.dir, "lb"),
		Nodes: c.Nodes(), Components: c.Components(), PIDs: c.PIDs(), Spec: c.spec.Redacted(),
		Starts: map[int]uint64{},
	}
	if c.tp != nil {
		st.ToxiproxySocket = c.tp.Addr()
	}
	pids := append([]int{st.SupervisorPID}, st.PIDs...)
	for _, comp := range st.Components {
		pids = append(pids, comp.PID)
	}
	for _, pid := range pids {
		if t, ok := procStart(pid); ok {
			st.Starts[pid] = t
		}
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFile(filepath.Join(c.dir, APIKeyFile), []byte(c.spec.APIKey+"\n"), 0o600); err != nil {
		return fmt.Errorf("write API key file: %w", err)
	}
	tmp := filepath.Join(c.dir, StateFile+".tmp")
	if err := writeFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	return os.Rename(tmp, filepath.Join(c.dir, StateFile))
}

// ReadState reads a run directory's state file. It refuses (ErrUnsafeRunDir)
// a run directory, base directory or state file that is a symbolic link,
// someone else's, or writable by others: whoever could write the state
// file could make down and up signal any process.
func ReadState(dir string) (*State, error) {
	if err := CheckRunDir(dir); err != nil {
		return nil, err
	}
	b, err := readFile(filepath.Join(dir, StateFile))
	if err != nil {
		return nil, err
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("parse %s: %w", filepath.Join(dir, StateFile), err)
	}
	return &st, nil
}

// Alive reports whether the process that owns the cluster is running.
func (st *State) Alive() bool { return st.Running(st.SupervisorPID) }

// Running reports whether pid is alive and still the process the state
// file recorded (same start time), not a later process that reused the PID.
// A PID without a recorded start time, or whose start time cannot be read,
// is never taken for the run's.
func (st *State) Running(pid int) bool {
	want, recorded := st.Starts[pid]
	if !recorded || !proc.Alive(pid) {
		return false
	}
	got, ok := procStart(pid)
	return ok && got == want
}

// unverifiableOwner is an error when the recorded owner's PID is in use but
// the state file holds no start time to tell whether it is still the owner
// (a state file from an older octoha, or not from octoha at all): nothing
// is signalled, the user decides.
func (st *State) unverifiableOwner() error {
	if _, recorded := st.Starts[st.SupervisorPID]; recorded || st.SupervisorPID == os.Getpid() || !proc.Alive(st.SupervisorPID) {
		return nil
	}
	return fmt.Errorf("the state file in %s names pid %d as the cluster's owner but records no start time, so octoha cannot tell "+
		"whether that process is the owner or an unrelated one and signals nothing; if it is the owner, stop it yourself, then run octoha down again",
		st.RunDir, st.SupervisorPID)
}

// killAll kills every recorded child still running (after the owner died):
// only PIDs whose start time was recorded and matches (Running).
func (st *State) killAll() {
	for _, pid := range st.PIDs {
		if st.Running(pid) {
			_ = proc.KillPID(pid)
			continue
		}
		// A child that died before us (its owner was SIGKILLed, and
		// Pdeathsig took it) may have left its own children in the group
		// we created for it: nginx workers outlive their master.
		if start, ok := st.Starts[pid]; ok {
			_, _ = proc.KillOrphanedGroup(pid, start)
		}
	}
}

// procStart reads a process's start time (proc.StartTime); ok is false
// when it cannot be read.
func procStart(pid int) (uint64, bool) { return proc.StartTime(pid) }

// ReadAPIKey reads the run directory's API key.
func ReadAPIKey(dir string) (string, error) {
	if err := CheckRunDir(dir); err != nil {
		return "", fmt.Errorf("read API key: %w", err)
	}
	b, err := readFile(filepath.Join(dir, APIKeyFile))
	if err != nil {
		return "", fmt.Errorf("read API key: %w", err)
	}
	return string(trimNL(b)), nil
}

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// DownDir stops the cluster owned by another process: it signals the owner
// (which tears down), waits for it, kills any child that survived, and
// removes the run directory.
func DownDir(ctx context.Context, dir string) error {
	st, err := ReadState(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("no cluster in %s (no %s)", dir, StateFile)
		}
		return err
	}
	if err := st.unverifiableOwner(); err != nil {
		return err
	}
	if st.Alive() && st.SupervisorPID != os.Getpid() {
		_ = proc.SignalPID(st.SupervisorPID, syscall.SIGTERM)
		for st.Alive() {
			select {
			case <-ctx.Done():
				_ = proc.KillPID(st.SupervisorPID)
				return fmt.Errorf("cluster owner (pid %d) did not stop: %w", st.SupervisorPID, ctx.Err())
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	// Re-read: the owner may have restarted nodes since.
	if st2, err := ReadState(dir); err == nil {
		st = st2
	}
	st.killAll()
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove run directory: %w", err)
	}
	return nil
}

// Can implements cluster.Capable (see capable): the spec records what
// actually started, the embedded fallbacks included.
func (c *Cluster) Can(cp cluster.Capability) error { return capable(c.spec, cp) }
