// Package docker is the cluster provider that runs everything as
// containers on one private Docker network per run, through
// testcontainers-go: a database (SQL Server, or PostgreSQL as a stand-in
// where the SQL Server image cannot be had), a Samba share, N fake nodes
// and HAProxy with the configuration harness/lb generates. The harness on
// the host reaches the load balancer and each node over HTTP on ports
// published to 127.0.0.1 only; inside the network, HAProxy reaches nodes
// by their container alias. Faults go through the Docker API: kill, pause,
// stop/start, and disconnecting a node from the network (a partition).
//
// Everything a run creates carries the label octoha.run=<run ID>; Down
// removes it all, also after a failed Up, and Cleanup does the same from
// another process after a crash or Ctrl-C. testcontainers' Ryuk reaper is
// disabled unless TESTCONTAINERS_RYUK_DISABLED is set (its image cannot be
// pulled where the engine has no registry).
package docker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	_ "github.com/microsoft/go-mssqldb" // driver "sqlserver", to create the database
	"github.com/moby/moby/api/types/container"
	mnetwork "github.com/moby/moby/api/types/network"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/network"
	"github.com/testcontainers/testcontainers-go/wait"
	"golang.org/x/sync/errgroup"

	"github.com/octoha/octoha/fakes/blob"
	"github.com/octoha/octoha/fakes/node/launch"
	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/lb"
	"github.com/octoha/octoha/internal/proc"
)

// Environment variables that carry secrets into node containers, so they
// never appear in a container's command line (docker inspect, ps). They are
// the node's launch contract, named in fakes/node/launch.
const (
	EnvAPIKey      = launch.EnvAPIKey
	EnvDB          = launch.EnvDB
	EnvSMBPassword = launch.EnvSMBPassword
)

// Network aliases of the parts; nodes are node1, node2, ….
const (
	AliasDB    = "db"
	AliasShare = "share"
	AliasLB    = "lb"
)

// Ports inside the network.
const (
	PostgresPort = 5432
	MSSQLPort    = 1433
	SMBPort      = 445
	// StatsPort was HAProxy's runtime API on TCP; the API is now the unix
	// socket HAProxyRuntimeSocket, reached only through the engine.
	StatsPort = 9999
)

// Names inside the containers.
const (
	smbUser        = "octoha"
	smbShare       = "octoha"
	dbName         = "octopus"
	dbUser         = "octoha"
	haproxyCfgPath = "/usr/local/etc/haproxy/haproxy.cfg"
	// dockerDNS is Docker's embedded DNS server on user-defined networks.
	dockerDNS = "127.0.0.11:53"
)

// Options configures Up.
type Options struct {
	// Logger receives progress and stand-in announcements.
	Logger *slog.Logger
	// Images to run; empty fields take ImagesFromEnv. Spec.Node.Image, when
	// set, overrides Images.Node.
	Images Images
	// ReadyTimeout bounds the wait for each part and for the whole cluster
	// to be ready; default 3 minutes (SQL Server's first start is slow).
	ReadyTimeout time.Duration
	// LogDir, when set, receives each container's log as <container>.log
	// when the cluster goes down (also after a failed Up).
	LogDir string
	// RunID labels everything the run creates (LabelRun); default random.
	RunID string
	// NoStandIn makes Up fail instead of running PostgreSQL when SQL
	// Server is wanted but its image is neither present nor pullable.
	NoStandIn bool
	// PullProbeTimeout bounds the registry lookup made when the SQL Server
	// image is not present locally; default 15s. Negative: never pull it.
	PullProbeTimeout time.Duration
}

// Cluster is a running docker cluster.
type Cluster struct {
	spec   cluster.Spec
	runID  string
	log    *slog.Logger
	e      *engine
	images Images
	logDir string
	ready  time.Duration

	net   *testcontainers.DockerNetwork
	db    *ctr
	share *ctr
	lb    *ctr
	nodes []*nodeCtr

	dbDesc      string
	dbReadyLine string // logged once per database start
	dsn         string // as nodes use it; holds a password: never logged
	smbPassword string
	lbURL       string
	comps       []cluster.Component
	tps         tpState // Spec.Toxiproxy (network.go)

	mu        sync.Mutex
	usedPorts map[int]bool
	pkgStore  blob.Store
	down      bool
}

// ctr is one container the run started.
type ctr struct {
	id, name, alias, part, image string
	ports                        map[int]int // container port → host port on 127.0.0.1
	tc                           *testcontainers.DockerContainer
}

type nodeCtr struct {
	ctr
	info cluster.Node
}

var (
	_ cluster.Cluster            = (*Cluster)(nil)
	_ cluster.NodeController     = (*Cluster)(nil)
	_ cluster.DatabaseController = (*Cluster)(nil)
	_ cluster.ShareController    = (*Cluster)(nil)
	_ cluster.FileLister         = (*Cluster)(nil)
	_ cluster.LBController       = (*Cluster)(nil)
	_ cluster.Partitioner        = (*Cluster)(nil)
)

// Up brings a cluster up on a new Docker network and returns once it is
// ready: every node answers its ping with 200 on its published port,
// HAProxy reports each UP, and HAProxy's own URL answers. On error (or when
// ctx is cancelled, e.g. by Ctrl-C) everything the run created is removed
// before Up returns.
func Up(ctx context.Context, spec cluster.Spec, opts Options) (_ *Cluster, err error) {
	spec.Provider = cluster.ProviderDocker
	spec, err = spec.Normalize()
	if err != nil {
		return nil, fmt.Errorf("cluster spec: %w", err)
	}
	if kind, _ := lb.ParseKind(spec.LB.Kind); kind != lb.HAProxy {
		return nil, fmt.Errorf("the docker provider runs HAProxy as the load balancer; lb.kind %q is available with the local provider", spec.LB.Kind)
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.ReadyTimeout <= 0 {
		opts.ReadyTimeout = 3 * time.Minute
	}
	if opts.PullProbeTimeout == 0 {
		opts.PullProbeTimeout = 15 * time.Second
	}
	if opts.RunID == "" {
		opts.RunID = newRunID()
	} else if !validRunID(opts.RunID) {
		return nil, fmt.Errorf("run ID %q: want 1-32 characters of a-z A-Z 0-9 _ . - starting with a letter or digit (it names containers)", opts.RunID)
	}
	// The share is always Samba: nodes in separate containers need a
	// network share (spec default "local" included).
	spec.Storage.Kind = cluster.StorageSMB
	images := opts.Images.withDefaults()
	if spec.Node.Image != "" {
		images.Node = spec.Node.Image
	}
	log := opts.Logger.With("cluster", spec.Name, "run", opts.RunID)
	e, err := connect(ctx, log)
	if err != nil {
		return nil, err
	}
	// Our own images are never pulled: check them before creating anything.
	var missing []error
	for _, img := range []string{images.Node, images.HAProxy, images.Samba} {
		if err := e.imagePresent(ctx, img); err != nil {
			missing = append(missing, err)
		}
	}
	if len(missing) > 0 {
		e.close()
		return nil, errors.Join(missing...)
	}
	c := &Cluster{spec: spec, runID: opts.RunID, log: log, e: e, images: images, logDir: opts.LogDir}
	start := time.Now()
	log.Info("docker cluster starting; if this process dies, remove its leftovers with `docker rm -f $(docker ps -aq --filter label="+LabelRun+"="+c.runID+")` and `docker network prune --filter label="+LabelRun+"="+c.runID+"` (or docker.Cleanup)", "nodes", spec.Nodes)
	defer func() {
		if err != nil {
			log.Error("docker cluster did not come up; removing what it created", "err", err)
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
			defer cancel()
			if derr := c.Down(dctx); derr != nil {
				err = errors.Join(err, derr)
			}
		}
	}()
	useMSSQL, err := c.chooseDatabase(ctx, opts)
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithTimeout(ctx, opts.ReadyTimeout)
	defer cancel()
	// Not abandoned halfway either (see run).
	nctx, ncancel := context.WithTimeout(context.WithoutCancel(rctx), createTimeout)
	c.net, err = network.New(nctx, network.WithLabels(c.labels("network")))
	ncancel()
	if err != nil {
		return nil, fmt.Errorf("create the run's docker network: %w", err)
	}
	if err := rctx.Err(); err != nil {
		return nil, fmt.Errorf("start the cluster: %w", err)
	}
	g, gctx := errgroup.WithContext(rctx)
	g.Go(func() error {
		if useMSSQL {
			return c.startMSSQL(gctx, opts.ReadyTimeout)
		}
		return c.startPostgres(gctx, opts.ReadyTimeout)
	})
	g.Go(func() error { return c.startShare(gctx, opts.ReadyTimeout) })
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if err := c.startToxiproxy(rctx, opts.ReadyTimeout); err != nil {
		return nil, err
	}
	if err := c.startNodes(rctx, opts.ReadyTimeout); err != nil {
		return nil, err
	}
	if err := c.startLB(rctx, opts.ReadyTimeout); err != nil {
		return nil, err
	}
	if err := cluster.WaitReady(rctx, c); err != nil {
		return nil, fmt.Errorf("cluster not ready: %w", err)
	}
	c.ready = time.Since(start)
	log.Info("docker cluster ready", "lb", c.URL(), "nodes", len(c.nodes), "database", c.dbDesc, "in", c.ready.Round(time.Millisecond))
	return c, nil
}

func validRunID(id string) bool {
	if id == "" || len(id) > 32 {
		return false
	}
	for i, r := range id {
		alnum := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
		if !alnum && (i == 0 || (r != '_' && r != '.' && r != '-')) {
			return false
		}
	}
	return true
}

func newRunID() string {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func randomSecret(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// labels are the labels of one part of this run.
func (c *Cluster) labels(part string) map[string]string {
	return map[string]string{LabelRun: c.runID, LabelCluster: c.spec.Name, LabelPart: part}
}

// chooseDatabase decides between SQL Server and PostgreSQL. A spec asking
// for sqlite (the spec default) gets a database server too: the nodes run
// in separate containers.
func (c *Cluster) chooseDatabase(ctx context.Context, opts Options) (useMSSQL bool, err error) {
	if c.spec.DB.Kind == cluster.DBPostgres {
		c.dbDesc = "PostgreSQL (container " + c.images.Postgres + ")"
		return false, c.e.imagePresent(ctx, c.images.Postgres)
	}
	if c.spec.DB.Kind == cluster.DBSQLite {
		c.log.Info("the docker provider runs a database server: SQL Server for database kind sqlite (the spec default)")
	}
	why := "is not present locally"
	if c.e.imagePresent(ctx, c.images.MSSQL) == nil {
		c.dbDesc = "SQL Server (container " + c.images.MSSQL + ")"
		return true, nil
	}
	if opts.PullProbeTimeout > 0 {
		pctx, cancel := context.WithTimeout(ctx, opts.PullProbeTimeout)
		perr := c.e.pullable(pctx, c.images.MSSQL)
		cancel()
		if perr == nil {
			// Before the ready timeout starts: the image is over 1 GB.
			c.log.Info("pulling the SQL Server image (large; only this once)", "image", c.images.MSSQL)
			start := time.Now()
			if err := c.e.pull(ctx, c.images.MSSQL); err != nil {
				return false, err
			}
			c.log.Info("SQL Server image pulled", "image", c.images.MSSQL, "in", time.Since(start).Round(time.Second))
			c.dbDesc = "SQL Server (container " + c.images.MSSQL + ")"
			return true, nil
		}
		why += " and cannot be pulled (" + perr.Error() + ")"
	}
	if opts.NoStandIn {
		return false, fmt.Errorf("SQL Server image %s %s; no stand-in wanted (NoStandIn)", c.images.MSSQL, why)
	}
	if err := c.e.imagePresent(ctx, c.images.Postgres); err != nil {
		return false, fmt.Errorf("SQL Server image %s %s, and the PostgreSQL stand-in is missing too: %w", c.images.MSSQL, why, err)
	}
	c.log.Warn("STAND-IN: the SQL Server image "+why+"; using PostgreSQL 15 as the shared database", "mssqlImage", c.images.MSSQL, "postgresImage", c.images.Postgres)
	c.dbDesc = "PostgreSQL 15 (stand-in: SQL Server image not available here)"
	return false, nil
}

// Host ports are chosen here (proc.FreePort) rather than by Docker so that
// they stay the same when a container is restarted or reconnected (Docker
// would pick new ones), and node URLs stay valid.

// hostPort picks a free loopback port not yet given to another part of
// this cluster (a closed listener's port can come round again).
func (c *Cluster) hostPort() (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.usedPorts == nil {
		c.usedPorts = map[int]bool{}
	}
	for range 20 {
		p, err := proc.FreePort("127.0.0.1")
		if err != nil {
			return 0, err
		}
		if !c.usedPorts[p] {
			c.usedPorts[p] = true
			return p, nil
		}
	}
	return 0, errors.New("pick a free port on 127.0.0.1: the same ports keep coming back")
}

// addComponent records a part for Components; parts start concurrently.
func (c *Cluster) addComponent(comp cluster.Component) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.comps = append(c.comps, comp)
}

// ctrSpec describes one container to run.
type ctrSpec struct {
	part, alias, image string
	env                map[string]string
	cmd                []string
	// ports are the container TCP ports to publish on 127.0.0.1. At least
	// one: without any, testcontainers publishes the image's EXPOSEd ports
	// on all interfaces.
	ports []int
	files []testcontainers.ContainerFile
	wait  wait.Strategy
}

// options turns a spec into testcontainers customizers: run network and
// alias, labels, name, and ports published to 127.0.0.1 only.
func (c *Cluster) options(s ctrSpec) ([]testcontainers.ContainerCustomizer, *ctr, error) {
	if len(s.ports) == 0 {
		return nil, nil, fmt.Errorf("internal: %s publishes no port (testcontainers would publish its image's on all interfaces)", s.part)
	}
	cr := &ctr{name: "octoha-" + c.runID + "-" + s.alias, alias: s.alias, part: s.part, image: s.image, ports: map[int]int{}}
	bindings := mnetwork.PortMap{}
	var exposed []string
	for _, p := range s.ports {
		hp, err := c.hostPort()
		if err != nil {
			return nil, nil, err
		}
		cr.ports[p] = hp
		port := strconv.Itoa(p) + "/tcp"
		exposed = append(exposed, port)
		bindings[mnetwork.MustParsePort(port)] = []mnetwork.PortBinding{{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: strconv.Itoa(hp)}}
	}
	opts := []testcontainers.ContainerCustomizer{
		testcontainers.WithLogger(tcLogger{c.log}),
		testcontainers.WithName(cr.name),
		testcontainers.WithLabels(c.labels(s.part)),
		network.WithNetwork([]string{s.alias}, c.net),
		testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
			hc.PortBindings = bindings
			hc.PublishAllPorts = false
		}),
	}
	if len(exposed) > 0 {
		opts = append(opts, testcontainers.WithExposedPorts(exposed...))
	}
	if len(s.env) > 0 {
		opts = append(opts, testcontainers.WithEnv(s.env))
	}
	if len(s.cmd) > 0 {
		opts = append(opts, testcontainers.WithCmd(s.cmd...))
	}
	if len(s.files) > 0 {
		opts = append(opts, testcontainers.WithFiles(s.files...))
	}
	if s.wait != nil {
		opts = append(opts, testcontainers.WithWaitStrategy(s.wait))
	}
	return opts, cr, nil
}

// createTimeout bounds creating one container (not starting it).
const createTimeout = time.Minute

// run creates a container and then starts it and waits until it is ready.
// Creation ignores ctx's cancellation (bounded by createTimeout): a create
// request abandoned by the client can still complete in the daemon after
// cleanup has looked, leaving a container behind. Starting and waiting stop
// at once when ctx is done; the container exists by then, so cleanup by
// label finds it.
func (c *Cluster) run(ctx context.Context, cr *ctr, create func(context.Context) (*testcontainers.DockerContainer, error)) error {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), createTimeout)
	defer cancel()
	tc, err := create(cctx)
	if tc != nil {
		cr.tc = tc
	}
	if err := c.started(ctx, cr, containerID(tc), err); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("start %s (%s): %w", cr.part, cr.name, err)
	}
	return c.started(ctx, cr, "", tc.Start(ctx))
}

// runImage is run for a plain image.
func (c *Cluster) runImage(ctx context.Context, cr *ctr, opts []testcontainers.ContainerCustomizer) error {
	return c.run(ctx, cr, func(cctx context.Context) (*testcontainers.DockerContainer, error) {
		return testcontainers.Run(cctx, cr.image, append(opts, testcontainers.WithNoStart())...)
	})
}

// started records a container testcontainers started (or failed to), and
// turns a failure into an error with the end of the container's log.
func (c *Cluster) started(ctx context.Context, cr *ctr, id string, err error) error {
	if id != "" {
		cr.id = id
	}
	if err == nil {
		return nil
	}
	return c.withLogTail(ctx, cr, fmt.Errorf("start %s (%s, image %s): %w", cr.part, cr.name, cr.image, err))
}

// withLogTail appends the end of a container's log to err.
func (c *Cluster) withLogTail(ctx context.Context, cr *ctr, err error) error {
	if cr.id == "" {
		return err
	}
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	out, lerr := c.e.logs(lctx, cr.id)
	if lerr != nil || strings.TrimSpace(out) == "" {
		return err
	}
	return fmt.Errorf("%w\n--- last lines of %s's log ---\n%s", err, cr.name, tail(out, 15))
}
