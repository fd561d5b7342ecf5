package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/cluster/local"
)

// specFlags are the cluster-spec flags shared by up and chaos; only flags
// the user set override the YAML file.
type specFlags struct {
	config   *string
	name     *string
	nodes    *int
	lbKind   *string
	db       *string
	dsn      *string
	storage  *string
	network  *string
	port     *int
	sticky   *bool
	drain    *string
	interval *time.Duration
	fall     *int
	rise     *int
	proxied  *bool
	os       *string
	mixedOS  *bool
	replica  *string
	azure    *azureFlags
}

func addSpecFlags(fs *flag.FlagSet) *specFlags {
	return &specFlags{
		config:   fs.String("config", "", "cluster spec YAML (flags override it)"),
		name:     fs.String("name", "default", "cluster name (names the default run directory)"),
		nodes:    fs.Int("nodes", 3, "number of nodes"),
		lbKind:   fs.String("lb", "haproxy", "load balancer: haproxy, nginx, nginx-defaults, caddy, caddy-timeout, embedded, azure-lb or azure-appgw (docs/azure.md)"),
		db:       fs.String("db", "sqlite", "database: sqlite, postgres or sqlserver"),
		dsn:      fs.String("db-dsn", "", "SQL Server DSN for --db sqlserver (or ${VAR} in the YAML); prefer $OCTOHA_MSSQL_DSN"),
		storage:  fs.String("storage", "local", "share: local (a directory) or smb (Samba)"),
		network:  fs.String("network", "127.0.0", "loopback /24 to use: LB .10, nodes .11+, database .5, share .6"),
		port:     fs.Int("port", 8080, "HTTP port of the load balancer and of every node"),
		sticky:   fs.Bool("sticky", false, "cookie session stickiness at the load balancer"),
		drain:    fs.String("drain", "down", "what a 418 does at HAProxy: down (expect 200) or nolb (true drain, L7OKC)"),
		interval: fs.Duration("interval", 500*time.Millisecond, "load balancer health-check interval"),
		fall:     fs.Int("fall", 2, "failed checks before a node is taken out"),
		rise:     fs.Int("rise", 2, "passed checks before a node is put back"),
		proxied:  fs.Bool("toxiproxy", false, "put every link (client → LB, LB → node, node → database and share) through Toxiproxy, for network faults"),
		os:       fs.String("os", "linux", "operating system of the nodes: linux or windows, or one per node comma-separated (windows,linux,…)"),
		mixedOS:  fs.Bool("allow-mixed-os", false, "allow Windows and Linux nodes in one cluster, which the seed forbids (to watch downloads fail)"),
		replica:  fs.String("db-replica", "", "with --db postgres: a failover group, primary + standby behind one listener, replicating sync or async (docs/azure-sql.md)"),
		azure:    addAzureFlags(fs),
	}
}

// spec builds the spec: defaults, then the YAML file, then flags set.
func (f *specFlags) spec(fs *flag.FlagSet) (cluster.Spec, error) {
	s := cluster.Defaults()
	if *f.config != "" {
		var err error
		if s, err = cluster.LoadSpec(*f.config); err != nil {
			return s, err
		}
	}
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	// Normalize reads a zero as "use the default"; a zero typed on the
	// command line is a mistake, not a request for the default.
	for name, v := range map[string]int64{"nodes": int64(*f.nodes), "port": int64(*f.port), "fall": int64(*f.fall), "rise": int64(*f.rise), "interval": int64(*f.interval)} {
		if set[name] && v <= 0 {
			return s, fmt.Errorf("%w: --%s must be positive", errUsage, name)
		}
	}
	if set["name"] || *f.config == "" {
		s.Name = *f.name
	}
	if set["nodes"] {
		s.Nodes = *f.nodes
	}
	if set["lb"] {
		s.LB.Kind = *f.lbKind
	}
	if set["db"] {
		s.DB.Kind = *f.db
	}
	if set["db-replica"] {
		s.DB.Replica = *f.replica
	}
	if set["db-dsn"] {
		s.DB.DSN = *f.dsn
	}
	if s.DB.Kind == cluster.DBSQLServer && s.DB.DSN == "" {
		s.DB.DSN = os.Getenv("OCTOHA_MSSQL_DSN")
	}
	if set["storage"] {
		s.Storage.Kind = *f.storage
	}
	if set["network"] {
		s.Network = *f.network
	}
	if set["port"] {
		s.Port = *f.port
	}
	if set["sticky"] {
		s.LB.Sticky = *f.sticky
	}
	if set["drain"] {
		s.LB.Drain = *f.drain
	}
	if set["interval"] {
		s.LB.Interval = *f.interval
	}
	if set["fall"] {
		s.LB.Fall = *f.fall
	}
	if set["rise"] {
		s.LB.Rise = *f.rise
	}
	if set["toxiproxy"] {
		s.Toxiproxy = *f.proxied
	}
	if set["os"] {
		s.Node.OS = strings.Split(*f.os, ",")
	}
	if set["allow-mixed-os"] {
		s.Node.AllowMixedOS = *f.mixedOS
	}
	if err := f.azure.apply(&s, set); err != nil {
		return s, err
	}
	if s.Provider == "" || s.Provider == cluster.ProviderLocal {
		s.Provider = cluster.ProviderLocal
	}
	n, err := s.Normalize()
	if err != nil {
		return s, fmt.Errorf("%w: %v", errUsage, err)
	}
	return n, nil
}

func runUp(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("up", stderr)
	sf := addSpecFlags(fs)
	runDir := fs.String("run-dir", "", "run directory (default /tmp/octoha-<uid>/<name>)")
	detach := fs.Bool("detach", false, "return once the cluster is ready, leaving it running (stop it with octoha down)")
	timeout := fs.Duration("timeout", 90*time.Second, "how long to wait for the cluster to become ready")
	verbose := fs.Bool("v", false, "verbose progress logs")
	supervise := fs.Bool("supervise", false, "internal: run as the detached cluster's owner")
	supLog := fs.String("supervisor-log", "", "internal: log file to move into the run directory")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := local.Supported(); err != nil {
		return err
	}
	spec, err := sf.spec(fs)
	if err != nil {
		return err
	}
	if spec.Provider != cluster.ProviderLocal {
		return fmt.Errorf("%w: octoha up runs the local provider (spec says %q); scenarios use the others", errUsage, spec.Provider)
	}
	dir := *runDir
	if dir == "" {
		dir = local.DefaultRunDir(spec.Name)
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return err
	}
	level := slog.LevelWarn
	if *verbose || *supervise {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	if *detach {
		return upDetached(ctx, args, dir, *timeout, stdout)
	}
	start := time.Now()
	c, err := local.Up(ctx, spec, local.Options{RunDir: dir, Binary: nodeBinary(), Logger: log, ReadyTimeout: *timeout})
	if err != nil {
		return err
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if err := c.Down(dctx); err != nil {
			fmt.Fprintf(stderr, "octoha up: teardown: %v\n", err)
		}
	}()
	// octoha fault (and certification hooks) reach the nodes through the
	// owner, which alone can start them again.
	ctlCtx, stopCtl := context.WithCancel(context.WithoutCancel(ctx))
	ctlDone := make(chan struct{})
	go func() {
		defer close(ctlDone)
		if err := c.ServeControl(ctlCtx); err != nil {
			log.Warn("control socket unavailable: octoha fault cannot reach this cluster", "err", err)
		}
	}()
	defer func() { stopCtl(); <-ctlDone }()
	if *supervise {
		if *supLog != "" {
			_ = os.MkdirAll(filepath.Join(dir, "logs"), 0o755)
			_ = os.Rename(*supLog, filepath.Join(dir, "logs", "supervisor.log"))
		}
		log.Info("cluster owner running; stop with octoha down", "runDir", dir)
		<-ctx.Done()
		log.Info("stopping cluster")
		return nil
	}
	st, err := local.ReadState(dir)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "cluster %q ready in %.1fs\n\n", spec.Name, time.Since(start).Seconds())
	st.WriteEndpoints(stdout)
	fmt.Fprintf(stdout, "\nRunning in the foreground; Ctrl-C stops everything and removes %s.\n", dir)
	<-ctx.Done()
	fmt.Fprintln(stdout, "\nstopping…")
	return nil
}

// nodeBinary is the executable that runs the nodes: $OCTOHA_BIN if set
// (left to the provider), else this very binary, whatever it is called
// (the provider alone only trusts an executable named "octoha", since
// under go test the current executable is a test binary).
func nodeBinary() string {
	if os.Getenv(local.EnvBinary) != "" {
		return ""
	}
	exe, err := os.Executable()
	if err != nil {
		return "" // the provider then says how to point it at octoha
	}
	return exe
}

// upDetached starts `octoha up --supervise` as a session leader that owns
// the cluster (local.StartOwner), waits until it reports ready, prints the
// endpoints and returns. `octoha down` signals the owner to tear down.
func upDetached(ctx context.Context, args []string, dir string, timeout time.Duration, stdout io.Writer) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own executable: %w", err)
	}
	childArgs := func(logPath string) []string {
		a := []string{"up"}
		for _, arg := range args {
			if arg != "--detach" && arg != "-detach" && arg != "--detach=true" && arg != "-detach=true" {
				a = append(a, arg)
			}
		}
		return append(a, "--run-dir", dir, "--supervise", "--supervisor-log", logPath)
	}
	start := time.Now()
	st, err := local.StartOwner(ctx, local.OwnerOptions{Dir: dir, Path: exe, Args: childArgs, Timeout: timeout})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "cluster %q ready in %.1fs (owner pid %d)\n\n", st.Name, time.Since(start).Seconds(), st.SupervisorPID)
	st.WriteEndpoints(stdout)
	fmt.Fprintf(stdout, "\nStop it with: octoha down --run-dir %s\n", dir)
	return nil
}
