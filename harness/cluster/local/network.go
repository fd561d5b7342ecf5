package local

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strconv"

	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/services/toxiproxy"
)

// With Spec.Toxiproxy every link goes through a Toxiproxy child process:
//
//	client → LB        LBAddr (.10:port)            → LB at .10:port+1
//	LB → node i        .1i:port+1                   → node at .1i:port
//	node i → database  .1i:PostgresPort             → PostgreSQL at .5
//	node i → share     .1i:SMBPort                  → Samba at .6
//
// Each node's proxies listen on the node's own address, so a fault on
// Node1's database link touches Node1 only. The harness itself still
// reaches nodes, the database and the share directly (it is not part of
// the network under test).

// lbListen is where the load balancer listens.
func (c *Cluster) lbListen() string {
	if !c.spec.Toxiproxy {
		return c.spec.LBAddr()
	}
	return net.JoinHostPort(c.spec.Network+".10", strconv.Itoa(c.spec.Port+1))
}

// lbToNode is the address the load balancer sends node i's traffic to.
func (c *Cluster) lbToNode(i int) string {
	if !c.spec.Toxiproxy {
		return c.spec.NodeAddr(i)
	}
	return c.nodePort(i, c.spec.Port+1)
}

func (c *Cluster) nodePort(i, port int) string {
	host, _, _ := net.SplitHostPort(c.spec.NodeAddr(i))
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// nodeDSN is node i's database DSN: through its proxy for PostgreSQL.
func (c *Cluster) nodeDSN(i int) string {
	if !c.spec.Toxiproxy || c.pg == nil {
		return c.dsn
	}
	u, err := url.Parse(c.dsn)
	if err != nil {
		return c.dsn
	}
	u.Host = c.nodePort(i, PostgresPort)
	return u.String()
}

// nodeShare is node i's location of a store: through its proxy for Samba.
func (c *Cluster) nodeShare(i int, loc string) string {
	if !c.spec.Toxiproxy || c.smb == nil {
		return loc
	}
	u, err := url.Parse(loc)
	if err != nil {
		return loc
	}
	u.Host = c.nodePort(i, SMBPort)
	return u.String()
}

// proxiedAddrs are the extra addresses a proxied cluster listens on.
func (c *Cluster) proxiedAddrs() []string {
	addrs := []string{c.lbListen()}
	for i := range c.spec.Nodes {
		addrs = append(addrs, c.lbToNode(i), c.nodePort(i, PostgresPort), c.nodePort(i, SMBPort))
	}
	return addrs
}

// startToxiproxy starts Toxiproxy and creates the links (before nodes and
// load balancer, which connect through them).
func (c *Cluster) startToxiproxy(ctx context.Context) error {
	if !c.spec.Toxiproxy {
		return nil
	}
	logf, err := c.logFile("toxiproxy")
	if err != nil {
		return err
	}
	// The API is a unix socket in a 0700 directory of the run directory
	// (a temporary one when that path would not fit in sun_path): only
	// the cluster's owner reaches it, and its proxies may listen only on
	// the cluster's own /24.
	sock := filepath.Join(c.dir, "toxiproxy", "api.sock")
	if len(sock) > toxiproxy.MaxSocketPath {
		sock = ""
	} else if err := privateDir(filepath.Dir(sock)); err != nil {
		return fmt.Errorf("start Toxiproxy: %w", err)
	}
	tp, err := toxiproxy.Start(ctx, toxiproxy.Options{Binary: c.bin, Socket: sock, Allow: []string{c.spec.Network + ".0/24"}, Dir: c.dir, Log: logf})
	if err != nil {
		return fmt.Errorf("start Toxiproxy: %w", err)
	}
	c.tp = tp
	add := func(link, node, listen, upstream string) error {
		name, err := cluster.LinkName(link, node)
		if err != nil {
			return err
		}
		return tp.AddLink(ctx, name, listen, upstream)
	}
	if err := add(cluster.LinkClient, "", c.spec.LBAddr(), c.lbListen()); err != nil {
		return err
	}
	for i := range c.spec.Nodes {
		name := cluster.NodeName(i)
		if err := add(cluster.LinkLB, name, c.lbToNode(i), c.spec.NodeAddr(i)); err != nil {
			return err
		}
		if c.pg != nil {
			if err := add(cluster.LinkDB, name, c.nodePort(i, PostgresPort), c.pg.Addr()); err != nil {
				return err
			}
		}
		if c.smb != nil {
			if err := add(cluster.LinkShare, name, c.nodePort(i, SMBPort), c.smb.Addr()); err != nil {
				return err
			}
			if err := c.azureFiles(ctx, name); err != nil {
				return err
			}
		}
	}
	c.comps = append(c.comps, cluster.Component{Part: "network", Description: "Toxiproxy (embedded in octoha): every link proxied for network faults", Location: tp.Addr(), PID: tp.PID()})
	return nil
}

// Toxiproxy implements cluster.NetworkController (nil when the cluster's
// links are direct).
func (c *Cluster) Toxiproxy() *toxiproxy.Client {
	if c.tp == nil {
		return nil
	}
	return c.tp.Client
}

// nodeLinks are the proxies of a node's links that exist.
func (c *Cluster) nodeLinks(ctx context.Context, node string) ([]string, error) {
	if c.tp == nil {
		return nil, fmt.Errorf("the cluster's links do not go through Toxiproxy (octoha up --toxiproxy): cannot partition %s", node)
	}
	n, err := c.node(node)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, link := range []string{cluster.LinkLB, cluster.LinkDB, cluster.LinkShare} {
		name, _ := cluster.LinkName(link, n.info.Name)
		if _, err := c.tp.Link(ctx, name); err == nil {
			out = append(out, name)
		}
	}
	return out, nil
}

// PartitionNode implements cluster.Partitioner: every link of the node
// (from the load balancer, to the database and to the share) is cut.
func (c *Cluster) PartitionNode(ctx context.Context, name string) error {
	links, err := c.nodeLinks(ctx, name)
	if err != nil {
		return err
	}
	for _, l := range links {
		if err := c.tp.SetEnabled(ctx, l, false); err != nil {
			return err
		}
	}
	return nil
}

// HealNode implements cluster.Partitioner.
func (c *Cluster) HealNode(ctx context.Context, name string) error {
	links, err := c.nodeLinks(ctx, name)
	if err != nil {
		return err
	}
	for _, l := range links {
		if err := c.tp.SetEnabled(ctx, l, true); err != nil {
			return err
		}
	}
	return nil
}
