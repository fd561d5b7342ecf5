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
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/octoha/octoha/fakes/blob"
	"github.com/octoha/octoha/fakes/node/launch"
	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/lb"
	"github.com/octoha/octoha/internal/proc"
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
