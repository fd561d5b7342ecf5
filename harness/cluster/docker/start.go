package docker

// Starting the cluster's containers: the database (SQL Server where its\n// image is there, else PostgreSQL), the share, the nodes and HAProxy.

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	_ "github.com/microsoft/go-mssqldb" // driver "sqlserver", to create the database
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/modules/mssql"
	"github.com/testcontainers/testcontainers-go/wait"
	"golang.org/x/sync/errgroup"

	"github.com/octoha/octoha/fakes/node/launch"
	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/lb"
)

func (c *Cluster) startPostgres(ctx context.Context, timeout time.Duration) error {
	pw := randomSecret(16)
	opts, cr, err := c.options(ctrSpec{
		part: "database", alias: AliasDB, image: c.images.Postgres,
		env: map[string]string{
			"POSTGRES_USER": dbUser, "POSTGRES_PASSWORD": pw, "POSTGRES_DB": dbName,
			// A throwaway database: no fsync. Killing the container loses
			// no commit (the kernel still has it); only a host crash would.
			"POSTGRES_INITDB_ARGS": "--no-sync",
		},
		cmd: []string{"-c", "fsync=off"},
		// Published (to 127.0.0.1) so that testcontainers does not publish
		// the image's EXPOSEd port on all interfaces; handy for psql too.
		ports: []int{PostgresPort},
		// The first start logs this twice: init server, then the real one.
		wait: wait.ForLog("database system is ready to accept connections").WithOccurrence(2).WithStartupTimeout(timeout),
	})
	if err != nil {
		return err
	}
	c.db = cr
	if err := c.runImage(ctx, cr, opts); err != nil {
		return err
	}
	c.dbReadyLine = "database system is ready to accept connections"
	u := url.URL{Scheme: "postgres", User: url.UserPassword(dbUser, pw), Host: net.JoinHostPort(AliasDB, strconv.Itoa(PostgresPort)), Path: "/" + dbName, RawQuery: "sslmode=disable"}
	c.dsn = u.String()
	c.spec.DB.Kind = cluster.DBPostgres
	c.addComponent(cluster.Component{Part: "database", Description: c.dbDesc, Location: cr.name + " (" + AliasDB + ":" + strconv.Itoa(PostgresPort) + " in the run's network)"})
	return nil
}

func (c *Cluster) startMSSQL(ctx context.Context, timeout time.Duration) error {
	// SQL Server wants upper, lower, digit and symbol.
	pw := "Oa1!" + randomSecret(12)
	opts, cr, err := c.options(ctrSpec{part: "database", alias: AliasDB, image: c.images.MSSQL, ports: []int{MSSQLPort}})
	if err != nil {
		return err
	}
	c.db = cr
	opts = append(opts, mssql.WithAcceptEULA(), mssql.WithPassword(pw),
		// Instead of the module's strategies, which dial the daemon's host.
		testcontainers.WithWaitStrategyAndDeadline(timeout,
			tcpWait("SQL Server", cr.ports[MSSQLPort], timeout),
			wait.ForLog("Recovery is complete.").WithStartupTimeout(timeout)))
	err = c.run(ctx, cr, func(cctx context.Context) (*testcontainers.DockerContainer, error) {
		tc, err := mssql.Run(cctx, c.images.MSSQL, append(opts, testcontainers.WithNoStart())...)
		if tc == nil {
			return nil, err
		}
		dc, _ := tc.Container.(*testcontainers.DockerContainer)
		return dc, err
	})
	if err != nil {
		return err
	}
	c.dbReadyLine = "Recovery is complete."
	// The nodes create the schema; the database itself is made here, from
	// the host, through the published port.
	admin := url.URL{Scheme: "sqlserver", User: url.UserPassword("sa", pw), Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(cr.ports[MSSQLPort])), RawQuery: "TrustServerCertificate=true"}
	if err := createMSSQLDatabase(ctx, admin.String()); err != nil {
		return c.withLogTail(ctx, cr, err)
	}
	u := url.URL{Scheme: "sqlserver", User: url.UserPassword("sa", pw), Host: net.JoinHostPort(AliasDB, strconv.Itoa(MSSQLPort)), RawQuery: "database=" + dbName + "&TrustServerCertificate=true"}
	c.dsn = u.String()
	c.spec.DB.Kind = cluster.DBSQLServer
	c.addComponent(cluster.Component{Part: "database", Description: c.dbDesc, Location: cr.name + " (" + AliasDB + ":" + strconv.Itoa(MSSQLPort) + " in the run's network)"})
	return nil
}

// createMSSQLDatabase creates the nodes' database, retrying while SQL
// Server finishes starting (it logs recovery before it takes logins).
func createMSSQLDatabase(ctx context.Context, dsn string) error {
	db, err := sql.Open("sqlserver", dsn)
	if err != nil {
		return fmt.Errorf("open SQL Server admin connection: %w", err)
	}
	defer db.Close()
	var last error
	for {
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, last = db.ExecContext(actx, "IF DB_ID(N'"+dbName+"') IS NULL CREATE DATABASE "+dbName)
		cancel()
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			// The driver's errors do not carry the password.
			return fmt.Errorf("create database %s in SQL Server: %v: %w", dbName, last, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func (c *Cluster) startShare(ctx context.Context, timeout time.Duration) error {
	c.smbPassword = randomSecret(16)
	opts, cr, err := c.options(ctrSpec{
		part: "share", alias: AliasShare, image: c.images.Samba,
		env:   map[string]string{"SMB_USER": smbUser, "SMB_PASSWORD": c.smbPassword},
		ports: []int{SMBPort},
		// docker-proxy accepts on the published port before smbd listens.
		wait: wait.ForLog(sambaReadyLine).WithStartupTimeout(timeout),
	})
	if err != nil {
		return err
	}
	c.share = cr
	if err := c.runImage(ctx, cr, opts); err != nil {
		return err
	}
	c.addComponent(cluster.Component{Part: "share", Description: "Samba smbd (container " + c.images.Samba + ")", Location: c.shareURL(AliasShare, SMBPort, "Packages")})
	return nil
}

const sambaReadyLine = "octoha-samba: smbd is listening on port 445"

// shareURL is a store location without the password (it travels in
// OCTOHA_SMB_PASSWORD or blob.WithPassword).
func (c *Cluster) shareURL(host string, port int, dir string) string {
	u := url.URL{Scheme: "smb", User: url.User(smbUser), Host: net.JoinHostPort(host, strconv.Itoa(port)), Path: "/" + smbShare + "/" + dir}
	return u.String()
}

func (c *Cluster) startNodes(ctx context.Context, timeout time.Duration) error {
	port := c.spec.Port
	all := make([][]testcontainers.ContainerCustomizer, 0, c.spec.Nodes)
	for i := range c.spec.Nodes {
		alias := "node" + strconv.Itoa(i+1)
		// The image's entrypoint is `octoha node`: the command is its flags.
		lc := launch.Default()
		lc.ID, lc.Name = cluster.NodeID(i), cluster.NodeName(i)
		lc.Listen, lc.URL = "0.0.0.0:"+strconv.Itoa(port), "http://"+alias+":"+strconv.Itoa(port)
		shareHost, sharePort := c.nodeShareHost(i)
		lc.Packages = c.shareURL(shareHost, sharePort, "Packages")
		lc.Artifacts = c.shareURL(shareHost, sharePort, "Artifacts")
		lc.TaskLogs = c.shareURL(shareHost, sharePort, "TaskLogs")
		lc.Heartbeat, lc.UnhealthyAfter = c.spec.Node.Heartbeat, c.spec.Node.UnhealthyAfter
		lc.MaxConcurrentTasks = c.spec.Node.MaxConcurrentTasks
		lc.StartupTimeout, lc.ShutdownGrace = timeout, 5*time.Second
		lc.UnsafeAckBeforeStore = c.spec.Node.UnsafeAckBeforeStore
		c.spec.Node.ApplyTasks(&lc)
		c.spec.ApplyNode(i, &lc)
		sec := launch.Secrets{APIKeys: []string{c.spec.APIKey}, DB: c.nodeDSN(i), SMBPassword: c.smbPassword}
		opts, cr, err := c.options(ctrSpec{
			part: "node:" + cluster.NodeName(i), alias: alias, image: c.images.Node,
			env:   sec.Map(),
			cmd:   lc.Args(),
			ports: []int{port},
		})
		if err != nil {
			return err
		}
		c.nodes = append(c.nodes, &nodeCtr{ctr: *cr, info: cluster.Node{
			ID: cluster.NodeID(i), Name: cluster.NodeName(i), URL: "http://127.0.0.1:" + strconv.Itoa(cr.ports[port]), OS: c.spec.NodeOS(i),
		}})
		// HTTP ping from the host; the image has no shell for exec checks.
		opts = append(opts, testcontainers.WithWaitStrategy(pingWait("node "+cluster.NodeName(i), cr.ports[port], timeout,
			func(s int) bool { return s == http.StatusOK || s == http.StatusTeapot })))
		all = append(all, opts)
	}
	g, gctx := errgroup.WithContext(ctx)
	for i, n := range c.nodes {
		g.Go(func() error { return c.runImage(gctx, &n.ctr, all[i]) })
	}
	return g.Wait()
}

// containerID is tc's ID, or "" when testcontainers returned none.
func containerID(tc *testcontainers.DockerContainer) string {
	if tc == nil {
		return ""
	}
	return tc.GetContainerID()
}

func (c *Cluster) startLB(ctx context.Context, timeout time.Duration) error {
	port := c.spec.Port
	backends := make([]lb.Backend, 0, len(c.nodes))
	for i, n := range c.nodes {
		backends = append(backends, lb.Backend{Name: n.info.Name, Addr: c.lbBackend(i, n.alias)})
	}
	cfg, err := lb.HAProxyConfig(lb.Options{
		Listen: "0.0.0.0:" + strconv.Itoa(port), Backends: backends,
		Interval: c.spec.LB.Interval, Fall: c.spec.LB.Fall, Rise: c.spec.LB.Rise, Sticky: c.spec.LB.Sticky,
		Drain: lb.DrainMode(c.spec.LB.Drain), ShutdownSessions: c.spec.LB.ShutdownSessions,
		ServerTimeout: c.spec.LB.ServerTimeout,
	}, lb.HAProxyConfigOptions{StatsSocket: HAProxyRuntimeSocket + " mode 600", Resolver: dockerDNS, SharedAddress: c.tps.tp != nil})
	if err != nil {
		return fmt.Errorf("configure HAProxy: %w", err)
	}
	opts, cr, err := c.options(ctrSpec{
		part: "lb", alias: AliasLB, image: c.images.HAProxy,
		ports: []int{port},
		files: []testcontainers.ContainerFile{{Reader: strings.NewReader(cfg), ContainerFilePath: haproxyCfgPath, FileMode: 0o644}},
	})
	if err != nil {
		return err
	}
	// Any HTTP answer (503 while no node is UP yet) means it serves.
	opts = append(opts, testcontainers.WithWaitStrategy(pingWait("HAProxy", cr.ports[port], timeout, func(int) bool { return true })))
	c.lb = cr
	c.lbURL = c.clientURL("http://127.0.0.1:" + strconv.Itoa(cr.ports[port]))
	if err := c.runImage(ctx, cr, opts); err != nil {
		return err
	}
	c.addComponent(cluster.Component{Part: "load balancer", Description: "HAProxy (container " + c.images.HAProxy + "; runtime API on " + HAProxyRuntimeSocket + " inside it, through docker exec)", Location: c.lbURL})
	return nil
}
