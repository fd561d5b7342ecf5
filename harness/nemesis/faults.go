package nemesis

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/octoha/octoha/harness/apiclient"
	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/internal/redact"
	"github.com/octoha/octoha/octopusapi"
)

// Fault kinds, as recorded in histories: the names of the cluster
// capabilities they need.
const (
	KindKill      = string(cluster.CapKill)
	KindPause     = string(cluster.CapPause)
	KindRestart   = string(cluster.CapRestart)
	KindDrain     = string(cluster.CapDrain)
	KindDBOutage  = string(cluster.CapDBOutage)
	KindShare     = string(cluster.CapShareOutage)
	KindPartition = string(cluster.CapPartition)
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

// ByName returns the preset of a kind, or a network fault from its spec
// ("latency@db,latency=300ms"; see ParseNet).
func ByName(name string) (Fault, error) {
	if strings.Contains(name, "@") || slices.Contains(NetworkKinds, strings.SplitN(name, ",", 2)[0]) {
		return ParseNet(name)
	}
	var names []string
	for _, f := range All() {
		if f.Name() == name {
			return f, nil
		}
		names = append(names, f.Name())
	}
	return nil, fmt.Errorf("unknown fault %q (want one of %s, or a network fault such as latency@db,latency=300ms)", name, strings.Join(names, ", "))
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

// available asks the one place that knows (cluster.Can) and checks that
// the provider offers the control the fault needs.
func available[T any](c cluster.Cluster, kind string, what string) error {
	if err := cluster.Can(c, cluster.Capability(kind)); err != nil {
		return err
	}
	if _, ok := c.(T); !ok {
		return fmt.Errorf("the %s provider cannot %s", c.Spec().Provider, what)
	}
	return nil
}

// nodeServes reports whether a node answers its ping at all (any status):
// a node recovery then has nothing to start.
func nodeServes(ctx context.Context, env Env, target string) bool {
	n, err := findNode(env.Cluster, target)
	if err != nil {
		return false
	}
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	code, _, err := cluster.PingStatus(pctx, &http.Client{Timeout: 2 * time.Second}, n.URL)
	return err == nil && code != 0
}

// startNode is the recovery of a kill or a stop: start the node unless it
// already serves (the kill may never have landed).
func startNode(ctx context.Context, env Env, target string) error {
	if nodeServes(ctx, env, target) {
		return nil
	}
	return env.Cluster.(cluster.NodeController).StartNode(ctx, target)
}

type kill struct{}

func (kill) Name() string   { return KindKill }
func (kill) Targeted() bool { return true }
func (kill) Available(c cluster.Cluster) error {
	return available[cluster.NodeController](c, KindKill, "kill nodes")
}
func (kill) Inject(ctx context.Context, env Env, target string) error {
	return env.Cluster.(cluster.NodeController).KillNode(ctx, target)
}
func (kill) Recover(ctx context.Context, env Env, target string) error {
	return startNode(ctx, env, target)
}

type pause struct{}

func (pause) Name() string   { return KindPause }
func (pause) Targeted() bool { return true }
func (pause) Available(c cluster.Cluster) error {
	return available[cluster.NodeController](c, KindPause, "pause nodes")
}
func (pause) Inject(ctx context.Context, env Env, target string) error {
	return env.Cluster.(cluster.NodeController).PauseNode(ctx, target)
}
func (pause) Recover(ctx context.Context, env Env, target string) error {
	return env.Cluster.(cluster.NodeController).ResumeNode(ctx, target)
}

type restart struct{}

func (restart) Name() string   { return KindRestart }
func (restart) Targeted() bool { return true }
func (restart) Available(c cluster.Cluster) error {
	return available[cluster.NodeController](c, KindRestart, "stop and start nodes")
}
func (restart) Inject(ctx context.Context, env Env, target string) error {
	return env.Cluster.(cluster.NodeController).StopNode(ctx, target)
}
func (restart) Recover(ctx context.Context, env Env, target string) error {
	return startNode(ctx, env, target)
}

type drain struct{}

func (drain) Name() string   { return KindDrain }
func (drain) Targeted() bool { return true }
func (drain) Available(c cluster.Cluster) error {
	return cluster.Can(c, cluster.CapDrain)
}
func (drain) Inject(ctx context.Context, env Env, target string) error {
	return SetMaintenance(ctx, env, target, true)
}
func (drain) Recover(ctx context.Context, env Env, target string) error {
	if err := SetMaintenance(ctx, env, target, false); err != nil {
		return err
	}
	// The node reads its drain flag from the shared database on its next
	// heartbeat: the drain is undone once its ping stops answering 418.
	n, err := findNode(env.Cluster, target)
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, undrainWithin)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		code, _, _ := cluster.PingStatus(wctx, client, n.URL)
		if code != http.StatusTeapot {
			return nil
		}
		select {
		case <-wctx.Done():
			return fmt.Errorf("undrained %s through the API, but its ping still answers 418 after %s", target, undrainWithin)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// undrainWithin bounds the wait for an undrained node to leave 418: a few
// heartbeats of any sane configuration.
const undrainWithin = 30 * time.Second

// SetMaintenance drains (or undrains) a node through the Octopus API:
// PUT /api/octopusservernodes/{id} with IsInMaintenanceMode, sent to the
// load balancer, falling back to any other node that answers (the drained
// node's own ping no longer routes through the balancer).
func SetMaintenance(ctx context.Context, env Env, target string, on bool) error {
	node, err := findNode(env.Cluster, target)
	if err != nil {
		return err
	}
	body, _ := json.Marshal(octopusapi.NodeUpdate{Id: node.ID, IsInMaintenanceMode: &on})
	urls := []string{env.Cluster.URL()}
	for _, n := range env.Cluster.Nodes() {
		if n.Name != node.Name {
			urls = append(urls, n.URL)
		}
	}
	urls = append(urls, node.URL)
	// The key goes to the cluster's own origins only: a redirect elsewhere
	// is refused, naming the origin.
	client, err := apiclient.New(apiclient.Options{APIKey: env.Cluster.APIKey(), Origins: urls, Base: env.client()})
	if err != nil {
		return fmt.Errorf("set maintenance mode of %s: %w", target, err)
	}
	var errs []error
	for _, base := range urls {
		req, err := http.NewRequestWithContext(ctx, http.MethodPut, strings.TrimRight(base, "/")+octopusapi.NodePath(node.ID), bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			errs = append(errs, fmt.Errorf("PUT via %s: %w", redact.URL(base), err))
			continue
		}
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return nil
		}
		errs = append(errs, fmt.Errorf("PUT via %s: %s: %s", redact.URL(base), resp.Status, strings.TrimSpace(string(msg))))
	}
	return fmt.Errorf("set maintenance mode of %s to %v: %w", target, on, errors.Join(errs...))
}

type dbOutage struct{}

func (dbOutage) Name() string   { return KindDBOutage }
func (dbOutage) Targeted() bool { return false }
func (dbOutage) Available(c cluster.Cluster) error {
	return available[cluster.DatabaseController](c, KindDBOutage, "stop the database")
}
func (dbOutage) Inject(ctx context.Context, env Env, _ string) error {
	return env.Cluster.(cluster.DatabaseController).StopDatabase(ctx)
}
func (dbOutage) Recover(ctx context.Context, env Env, _ string) error {
	return env.Cluster.(cluster.DatabaseController).StartDatabase(ctx)
}

type shareOutage struct{}

func (shareOutage) Name() string   { return KindShare }
func (shareOutage) Targeted() bool { return false }
func (shareOutage) Available(c cluster.Cluster) error {
	return available[cluster.ShareController](c, KindShare, "stop the share")
}
func (shareOutage) Inject(ctx context.Context, env Env, _ string) error {
	return env.Cluster.(cluster.ShareController).StopShare(ctx)
}
func (shareOutage) Recover(ctx context.Context, env Env, _ string) error {
	return env.Cluster.(cluster.ShareController).StartShare(ctx)
}

type partition struct{}

// viaToxiproxy: a cluster without a Partitioner of its own (docker's
// disconnects containers from their network; the local provider's cuts
// every link through Toxiproxy) but whose links go through Toxiproxy is
// partitioned by cutting every link of the node.
func viaToxiproxy(c cluster.Cluster) bool {
	if _, ok := c.(cluster.Partitioner); ok {
		return false
	}
	nc, ok := c.(cluster.NetworkController)
	return ok && nc.Toxiproxy() != nil
}

func (partition) Name() string   { return KindPartition }
func (partition) Detail() string { return NetworkPartition(cluster.LinkAll).(Net).String() }
func (partition) Targeted() bool { return true }
func (partition) Available(c cluster.Cluster) error {
	if viaToxiproxy(c) {
		return cluster.Can(c, cluster.CapPartition)
	}
	return available[cluster.Partitioner](c, KindPartition, "partition nodes (the docker provider can, and the local one with --toxiproxy)")
}
func (partition) Inject(ctx context.Context, env Env, target string) error {
	if viaToxiproxy(env.Cluster) {
		return NetworkPartition(cluster.LinkAll).Inject(ctx, env, target)
	}
	return env.Cluster.(cluster.Partitioner).PartitionNode(ctx, target)
}
func (partition) Recover(ctx context.Context, env Env, target string) error {
	if viaToxiproxy(env.Cluster) {
		return NetworkPartition(cluster.LinkAll).Recover(ctx, env, target)
	}
	return env.Cluster.(cluster.Partitioner).HealNode(ctx, target)
}

// Spec is how a schedule writes f: its kind, or a network fault's spec.
func Spec(f Fault) string {
	if n, ok := f.(Net); ok {
		return n.String()
	}
	return f.Name()
}
