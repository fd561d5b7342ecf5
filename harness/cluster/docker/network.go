package docker

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"time"

	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/services/toxiproxy"
)

// With Spec.Toxiproxy every link goes through a Toxiproxy container (the
// node image, running `octoha toxiproxy`), alias AliasToxiproxy:
//
//	client → LB        published port of toxiproxy:ClientLinkPort → lb
//	LB → node i        toxiproxy:LBLinkPort+i                     → node i
//	node i → database  toxiproxy:DBLinkPort+i                     → db
//	node i → share     toxiproxy:ShareLinkPort+i                  → share
//
// The harness reaches the API on a port published on 127.0.0.1, where every
// request must carry the cluster's secret (a random one per cluster, given
// to the container in its environment: other local users cannot read it,
// and without it they get 401); its proxies may listen only inside the
// container (0.0.0.0 there). The harness still reaches the nodes, the
// database and the share directly.
const (
	AliasToxiproxy = "toxiproxy"
	ClientLinkPort = 9000
	LBLinkPort     = 10001
	DBLinkPort     = 11001
	ShareLinkPort  = 12001
)

// tpState is the Toxiproxy part of a Cluster.
type tpState struct {
	tp  *toxiproxy.Client
	ctr *ctr
}

func (c *Cluster) viaToxiproxy(link string, i int) string {
	return net.JoinHostPort(AliasToxiproxy, strconv.Itoa(map[string]int{cluster.LinkLB: LBLinkPort, cluster.LinkDB: DBLinkPort, cluster.LinkShare: ShareLinkPort}[link]+i))
}

// nodeDSN is node i's database DSN: through its link when proxied.
func (c *Cluster) nodeDSN(i int) string {
	if c.tps.tp == nil {
		return c.dsn
	}
	u, err := url.Parse(c.dsn)
	if err != nil {
		return c.dsn
	}
	u.Host = c.viaToxiproxy(cluster.LinkDB, i)
	return u.String()
}

// nodeShareHost is the host:port node i reaches the share at.
func (c *Cluster) nodeShareHost(i int) (string, int) {
	if c.tps.tp == nil {
		return AliasShare, SMBPort
	}
	return AliasToxiproxy, ShareLinkPort + i
}

// lbBackend is where the load balancer sends node i's traffic.
func (c *Cluster) lbBackend(i int, alias string) string {
	if c.tps.tp == nil {
		return net.JoinHostPort(alias, strconv.Itoa(c.spec.Port))
	}
	return c.viaToxiproxy(cluster.LinkLB, i)
}

// startToxiproxy starts the Toxiproxy container and creates every link
// (their upstreams are resolved when a connection is made, so the nodes
// and the load balancer may start after).
func (c *Cluster) startToxiproxy(ctx context.Context, timeout time.Duration) error {
	if !c.spec.Toxiproxy {
		return nil
	}
	secret := randomSecret(24)
	opts, cr, err := c.options(ctrSpec{
		part: "network", alias: AliasToxiproxy, image: c.images.Node,
		cmd:   []string{"--listen", "0.0.0.0:" + strconv.Itoa(toxiproxy.DefaultPort), "--allow", "0.0.0.0/32"},
		env:   map[string]string{toxiproxy.SecretEnv: secret},
		ports: []int{toxiproxy.DefaultPort, ClientLinkPort},
		// Seconds when it can start at all; an image from before the
		// toxiproxy subcommand exits at once.
		wait: wait.ForLog("Starting HTTP server").WithStartupTimeout(min(timeout, 30*time.Second)),
	})
	if err != nil {
		return err
	}
	opts = append(opts, testcontainers.WithEntrypoint("/octoha", toxiproxy.Subcommand))
	if err := c.runImage(ctx, cr, opts); err != nil {
		return fmt.Errorf("%w (does the node image %s have `octoha toxiproxy`? rebuild it with make images)", err, c.images.Node)
	}
	tp := toxiproxy.NewTCPClient("127.0.0.1:"+strconv.Itoa(cr.ports[toxiproxy.DefaultPort]), secret)
	if err := tp.Ping(ctx); err != nil {
		return err
	}
	dbHost := ""
	if u, err := url.Parse(c.dsn); err == nil {
		dbHost = u.Host
	}
	add := func(link, node string, port int, upstream string) error {
		name, err := cluster.LinkName(link, node)
		if err != nil {
			return err
		}
		return tp.AddLink(ctx, name, "0.0.0.0:"+strconv.Itoa(port), upstream)
	}
	if err := add(cluster.LinkClient, "", ClientLinkPort, net.JoinHostPort(AliasLB, strconv.Itoa(c.spec.Port))); err != nil {
		return err
	}
	for i := range c.spec.Nodes {
		name := cluster.NodeName(i)
		alias := "node" + strconv.Itoa(i+1)
		if err := add(cluster.LinkLB, name, LBLinkPort+i, net.JoinHostPort(alias, strconv.Itoa(c.spec.Port))); err != nil {
			return err
		}
		if dbHost != "" {
			if err := add(cluster.LinkDB, name, DBLinkPort+i, dbHost); err != nil {
				return err
			}
		}
		if err := add(cluster.LinkShare, name, ShareLinkPort+i, net.JoinHostPort(AliasShare, strconv.Itoa(SMBPort))); err != nil {
			return err
		}
	}
	c.tps = tpState{tp: tp, ctr: cr}
	c.addComponent(cluster.Component{Part: "network", Description: "Toxiproxy (container " + c.images.Node + ", octoha toxiproxy): every link proxied for network faults", Location: tp.Addr()})
	return nil
}

// clientURL is the load balancer's URL as clients reach it: through the
// client link when proxied.
func (c *Cluster) clientURL(direct string) string {
	if c.tps.tp == nil {
		return direct
	}
	return "http://127.0.0.1:" + strconv.Itoa(c.tps.ctr.ports[ClientLinkPort])
}

// Toxiproxy implements cluster.NetworkController (nil without Spec.Toxiproxy).
func (c *Cluster) Toxiproxy() *toxiproxy.Client { return c.tps.tp }

var _ cluster.NetworkController = (*Cluster)(nil)

// canNetwork is Can's answer for cluster.CapNetwork.
func (c *Cluster) canNetwork() error {
	if c.tps.tp == nil {
		return fmt.Errorf("network faults need the cluster's links through Toxiproxy (spec toxiproxy: true)")
	}
	return nil
}
