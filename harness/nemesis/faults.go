package nemesis

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/octoha/octoha/fakes/api"
	"github.com/octoha/octoha/harness/cluster"
)

// Fault kinds, as recorded in histories.
const (
	KindKill      = "kill"
	KindPause     = "pause"
	KindRestart   = "restart"
	KindDrain     = "drain"
	KindDBOutage  = "db-outage"
	KindShare     = "share-outage"
	KindPartition = "partition"
)

// Presets.
var (
	// Kill SIGKILLs a node (a crash); recovery starts it again.
	Kill Fault = kill{}
	// Pause freezes a node with SIGSTOP (not dead: its sockets stay open);
	// recovery continues it.
	Pause Fault = pause{}
	// Restart stops a node gracefully (SIGTERM: in-flight requests may
	// finish); recovery starts it again.
	Restart Fault = restart{}
	// Drain puts a node into maintenance mode through the Octopus API, via
	// the load balancer, exactly as an operator would; recovery undrains.
	Drain Fault = drain{}
	// DatabaseOutage stops the shared database; recovery starts it.
	DatabaseOutage Fault = dbOutage{}
	// ShareOutage stops the shared file share; recovery starts it.
	ShareOutage Fault = shareOutage{}
	// Partition cuts a node off the network; recovery heals it.
	Partition Fault = partition{}
)

// All lists every preset.
func All() []Fault {
	return []Fault{Kill, Pause, Restart, Drain, DatabaseOutage, ShareOutage, Partition}
}

// ByName returns the preset of a kind.
func ByName(name string) (Fault, error) {
	var names []string
	for _, f := range All() {
		if f.Name() == name {
			return f, nil
		}
		names = append(names, f.Name())
	}
	return nil, fmt.Errorf("unknown fault %q (want one of %s)", name, strings.Join(names, ", "))
}

var (
	_ Fault = kill{}
	_ Fault = pause{}
	_ Fault = restart{}
	_ Fault = drain{}
	_ Fault = dbOutage{}
	_ Fault = shareOutage{}
	_ Fault = partition{}
)

// supporter is implemented by clusters that can run only some faults (an
// external cluster runs those it has hooks for); Supports says why not.
type supporter interface {
	Supports(fault string) error
}

// supported asks a cluster that knows whether it can run a fault.
func supported(c cluster.Cluster, fault string) error {
	if s, ok := c.(supporter); ok {
		return s.Supports(fault)
	}
	return nil
}

func nodeController(c cluster.Cluster) (cluster.NodeController, error) {
	nc, ok := c.(cluster.NodeController)
	if !ok {
		return nil, fmt.Errorf("the %s provider cannot control node processes (an external cluster needs --allow-destructive and hooks)", c.Spec().Provider)
	}
	return nc, nil
}

// nodeAvailable: the provider controls node processes and supports kind.
func nodeAvailable(c cluster.Cluster, kind string) error {
	if _, err := nodeController(c); err != nil {
		return err
	}
	return supported(c, kind)
}

type kill struct{}

func (kill) Name() string                      { return KindKill }
func (kill) Targeted() bool                    { return true }
func (kill) Available(c cluster.Cluster) error { return nodeAvailable(c, KindKill) }
func (kill) Inject(ctx context.Context, env Env, target string) (Recover, error) {
	nc, err := nodeController(env.Cluster)
	if err != nil {
		return nil, err
	}
	if err := nc.KillNode(ctx, target); err != nil {
		return nil, err
	}
	return func(ctx context.Context) error { return nc.StartNode(ctx, target) }, nil
}

type pause struct{}

func (pause) Name() string                      { return KindPause }
func (pause) Targeted() bool                    { return true }
func (pause) Available(c cluster.Cluster) error { return nodeAvailable(c, KindPause) }
func (pause) Inject(ctx context.Context, env Env, target string) (Recover, error) {
	nc, err := nodeController(env.Cluster)
	if err != nil {
		return nil, err
	}
	if err := nc.PauseNode(ctx, target); err != nil {
		return nil, err
	}
	return func(ctx context.Context) error { return nc.ResumeNode(ctx, target) }, nil
}

type restart struct{}

func (restart) Name() string                      { return KindRestart }
func (restart) Targeted() bool                    { return true }
func (restart) Available(c cluster.Cluster) error { return nodeAvailable(c, KindRestart) }
func (restart) Inject(ctx context.Context, env Env, target string) (Recover, error) {
	nc, err := nodeController(env.Cluster)
	if err != nil {
		return nil, err
	}
	if err := nc.StopNode(ctx, target); err != nil {
		return nil, err
	}
	return func(ctx context.Context) error { return nc.StartNode(ctx, target) }, nil
}

type drain struct{}

func (drain) Name() string                    { return KindDrain }
func (drain) Targeted() bool                  { return true }
func (drain) Available(cluster.Cluster) error { return nil }
func (drain) Inject(ctx context.Context, env Env, target string) (Recover, error) {
	if err := SetMaintenance(ctx, env, target, true); err != nil {
		return nil, err
	}
	return func(ctx context.Context) error { return SetMaintenance(ctx, env, target, false) }, nil
}

// SetMaintenance drains (or undrains) a node through the Octopus API:
// PUT /api/octopusservernodes/{id} with IsInMaintenanceMode, sent to the
// load balancer, falling back to any other node that answers (the drained
// node's own ping no longer routes through the balancer).
func SetMaintenance(ctx context.Context, env Env, target string, on bool) error {
	var node *cluster.Node
	for _, n := range env.Cluster.Nodes() {
		if n.Name == target || n.ID == target {
			node = &n
			break
		}
	}
	if node == nil {
		return fmt.Errorf("no node named %q", target)
	}
	body, _ := json.Marshal(api.NodeUpdate{Id: node.ID, IsInMaintenanceMode: &on})
	urls := []string{env.Cluster.URL()}
	for _, n := range env.Cluster.Nodes() {
		if n.Name != node.Name {
			urls = append(urls, n.URL)
		}
	}
	urls = append(urls, node.URL)
	var errs []error
	for _, base := range urls {
		req, err := http.NewRequestWithContext(ctx, http.MethodPut, strings.TrimRight(base, "/")+api.NodePath(node.ID), bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set(api.HeaderAPIKey, env.Cluster.APIKey())
		req.Header.Set("Content-Type", "application/json")
		resp, err := env.client().Do(req)
		if err != nil {
			errs = append(errs, fmt.Errorf("PUT via %s: %w", base, err))
			continue
		}
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return nil
		}
		errs = append(errs, fmt.Errorf("PUT via %s: %s: %s", base, resp.Status, strings.TrimSpace(string(msg))))
	}
	return fmt.Errorf("set maintenance mode of %s to %v: %w", target, on, errors.Join(errs...))
}

type dbOutage struct{}

func (dbOutage) Name() string   { return KindDBOutage }
func (dbOutage) Targeted() bool { return false }
func (dbOutage) Available(c cluster.Cluster) error {
	if _, ok := c.(cluster.DatabaseController); !ok {
		return fmt.Errorf("the %s provider cannot stop the database", c.Spec().Provider)
	}
	if err := supported(c, KindDBOutage); err != nil {
		return err
	}
	if h, ok := c.(interface{ HasDatabaseControl() bool }); ok && !h.HasDatabaseControl() {
		return fmt.Errorf("the database is %s (embedded): database outages need PostgreSQL (--db postgres) or SQL Server", c.Spec().DB.Kind)
	}
	return nil
}
func (dbOutage) Inject(ctx context.Context, env Env, _ string) (Recover, error) {
	dc := env.Cluster.(cluster.DatabaseController)
	if err := dc.StopDatabase(ctx); err != nil {
		return nil, err
	}
	return dc.StartDatabase, nil
}

type shareOutage struct{}

func (shareOutage) Name() string   { return KindShare }
func (shareOutage) Targeted() bool { return false }
func (shareOutage) Available(c cluster.Cluster) error {
	if _, ok := c.(cluster.ShareController); !ok {
		return fmt.Errorf("the %s provider cannot stop the share", c.Spec().Provider)
	}
	if err := supported(c, KindShare); err != nil {
		return err
	}
	if h, ok := c.(interface{ HasShareControl() bool }); ok && !h.HasShareControl() {
		return errors.New("the share is a local directory (embedded): share outages need Samba (--storage smb)")
	}
	return nil
}
func (shareOutage) Inject(ctx context.Context, env Env, _ string) (Recover, error) {
	sc := env.Cluster.(cluster.ShareController)
	if err := sc.StopShare(ctx); err != nil {
		return nil, err
	}
	return sc.StartShare, nil
}

type partition struct{}

func (partition) Name() string   { return KindPartition }
func (partition) Targeted() bool { return true }
func (partition) Available(c cluster.Cluster) error {
	if _, ok := c.(cluster.Partitioner); !ok {
		return fmt.Errorf("the %s provider cannot partition nodes (the docker provider can)", c.Spec().Provider)
	}
	return nil
}
func (partition) Inject(ctx context.Context, env Env, target string) (Recover, error) {
	p := env.Cluster.(cluster.Partitioner)
	if err := p.PartitionNode(ctx, target); err != nil {
		return nil, err
	}
	return func(ctx context.Context) error { return p.HealNode(ctx, target) }, nil
}
