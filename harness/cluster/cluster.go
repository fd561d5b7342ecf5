package cluster

import (
	"context"

	"github.com/octoha/octoha/fakes/blob"
	"github.com/octoha/octoha/harness/lb"
)

// Node is one Octopus Server node as the harness reaches it: directly, by
// URL, over its HTTP API, exactly as it would reach a real node.
type Node struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	URL  string `json:"url"`
	// OS is the node's operating system (linux or windows) as the
	// cluster's description gives it; "" when unknown.
	OS string `json:"os,omitempty"`
}

// Component is one part of a cluster, for status output and reports: what
// it is and whether it is the real thing or an embedded stand-in.
type Component struct {
	Part        string `json:"part"` // "load balancer", "database", "share", "node Node1"
	Description string `json:"description"`
	Embedded    bool   `json:"embedded,omitempty"`
	Location    string `json:"location,omitempty"` // address, path or URL (no secrets)
	PID         int    `json:"pid,omitempty"`
}

// Cluster is a running cluster under test.
type Cluster interface {
	// Spec is the normalised spec the cluster was built from.
	Spec() Spec
	// URL is the load balancer's base URL: what clients use.
	URL() string
	Nodes() []Node
	// APIKey is a key every node accepts. Never log it.
	APIKey() string
	// LBStates is the load balancer's view of each node.
	LBStates(ctx context.Context) ([]lb.ServerState, error)
	Components() []Component
	// Down stops everything the provider started and removes what it
	// created. It is safe to call more than once.
	Down(ctx context.Context) error
}

// NodeController can kill, pause, resume, stop and start nodes.
type NodeController interface {
	KillNode(ctx context.Context, name string) error   // SIGKILL: a crash
	PauseNode(ctx context.Context, name string) error  // SIGSTOP: frozen, not dead
	ResumeNode(ctx context.Context, name string) error // SIGCONT
	StopNode(ctx context.Context, name string) error   // graceful: SIGTERM
	// StartNode starts a stopped or killed node again and waits until it
	// answers its ping.
	StartNode(ctx context.Context, name string) error
}

// DatabaseController can take the shared database away and bring it back.
type DatabaseController interface {
	StopDatabase(ctx context.Context) error
	StartDatabase(ctx context.Context) error
}

// ShareController can take the shared file storage away and bring it back.
type ShareController interface {
	StopShare(ctx context.Context) error
	StartShare(ctx context.Context) error
}

// FileLister lists the Packages store as the share holds it, for the
// no-leftovers check. A real cluster's share is usually out of reach, and
// the check is then skipped.
type FileLister interface {
	PackageFiles(ctx context.Context) ([]blob.Info, error)
}

// LBController gives access to the load balancer's runtime control, where
// the load balancer has one.
type LBController interface {
	Balancer() lb.Balancer
}

// Partitioner can cut a node off the network and heal it (docker: off its
// network; local: every link of the node through Toxiproxy).
type Partitioner interface {
	PartitionNode(ctx context.Context, name string) error
	HealNode(ctx context.Context, name string) error
}
