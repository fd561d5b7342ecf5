package cluster

import (
	"fmt"

	"github.com/octoha/octoha/services/toxiproxy"
)

// Links of a cluster whose network goes through Toxiproxy (Spec.Toxiproxy).
const (
	LinkClient = "client" // client → load balancer (no node)
	LinkLB     = "lb"     // load balancer → a node (traffic and health checks)
	LinkDB     = "db"     // a node → the database
	LinkShare  = "share"  // a node → the file share
	// LinkAll is every link of a node (lb, db, share): for partitions.
	LinkAll = "all"
)

// LinkName is the name of the Toxiproxy proxy carrying a link: "client-lb",
// "lb-Node1", "Node1-db", "Node1-share".
func LinkName(link, node string) (string, error) {
	switch link {
	case LinkClient:
		return "client-lb", nil
	case LinkLB:
		if node == "" {
			return "", fmt.Errorf("link %s needs a node", link)
		}
		return "lb-" + node, nil
	case LinkDB, LinkShare:
		if node == "" {
			return "", fmt.Errorf("link %s needs a node", link)
		}
		return node + "-" + link, nil
	}
	return "", fmt.Errorf("unknown link %q (want client, lb, db, share or all)", link)
}

// NetworkController gives the Toxiproxy every link of the cluster goes
// through; proxies are named by LinkName. A link whose component is
// embedded (SQLite, a local directory) has no proxy.
type NetworkController interface {
	Toxiproxy() *toxiproxy.Client
}
