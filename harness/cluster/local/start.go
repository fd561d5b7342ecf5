package local

// Starting a cluster's parts: the database, the share, the nodes and the
// load balancer, each with its embedded fallback where there is one.

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/octoha/octoha/fakes/node/launch"
	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/lb"
	"github.com/octoha/octoha/internal/proc"
	"github.com/octoha/octoha/internal/redact"
	"github.com/octoha/octoha/internal/selfsigned"
	"github.com/octoha/octoha/octopusapi"
	"github.com/octoha/octoha/services/postgres"
	"github.com/octoha/octoha/services/samba"
)

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
	c.spec.PollingThumbprint = octopusapi.Thumbprint(cert.TLS.Certificate[0])
	return certFile, keyFile, nil
}
