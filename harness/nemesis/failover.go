package nemesis

import (
	"context"
	"time"

	"github.com/octoha/octoha/harness/cluster"
)

// KindDBFailover is the kind of every fault on a database failover group
// (cluster.DatabaseFailover); the detail says which.
const KindDBFailover = string(cluster.CapDBFailover)

var (
	// PlannedFailover fails the database over to its standby once it has
	// caught up (nothing committed is lost); recovery re-seeds the old
	// primary as the new standby.
	PlannedFailover Fault = dbFailover{planned: true}
	// ForcedFailover kills the primary and promotes the standby with
	// whatever it has; recovery re-seeds the lost server as the standby
	// and resumes WAL shipping.
	ForcedFailover Fault = dbFailover{}
	// ReplicationCut stops WAL shipping from the primary to the standby
	// (the standby falls behind an asynchronous primary); recovery
	// reconnects it.
	ReplicationCut Fault = replicationCut{}
)

// Reconfiguration is an Azure SQL reconfiguration at the failover group's
// listener: every connection reset, new ones refused for d, then served
// again by themselves (Azure: "usually within 60 s", Microsoft's transient
// connection errors page; scenarios scale it down). Recovery ends it
// early if it has not ended yet.
func Reconfiguration(d time.Duration) Fault { return reconfiguration{d: d} }

var (
	_ Fault = dbFailover{}
	_ Fault = reconfiguration{}
	_ Fault = replicationCut{}
)

func availableFailover(c cluster.Cluster, what string) error {
	return available[cluster.DatabaseFailover](c, KindDBFailover, what)
}

type dbFailover struct{ planned bool }

func (dbFailover) Name() string   { return KindDBFailover }
func (dbFailover) Targeted() bool { return false }
func (f dbFailover) Detail() string {
	if f.planned {
		return "planned failover"
	}
	return "forced failover"
}
func (f dbFailover) Available(c cluster.Cluster) error {
	return availableFailover(c, "fail the database over")
}
func (f dbFailover) Inject(ctx context.Context, env Env, _ string) error {
	g := env.Cluster.(cluster.DatabaseFailover)
	if f.planned {
		return g.PlannedFailover(ctx)
	}
	return g.ForcedFailover(ctx)
}
func (dbFailover) Recover(ctx context.Context, env Env, _ string) error {
	g := env.Cluster.(cluster.DatabaseFailover)
	if err := g.ResumeReplication(ctx); err != nil {
		return err
	}
	return g.RebuildStandby(ctx)
}

type reconfiguration struct{ d time.Duration }

func (reconfiguration) Name() string     { return KindDBFailover }
func (reconfiguration) Targeted() bool   { return false }
func (r reconfiguration) Detail() string { return "reconfiguration " + r.d.String() }
func (reconfiguration) Available(c cluster.Cluster) error {
	return availableFailover(c, "reconfigure the database listener")
}
func (r reconfiguration) Inject(ctx context.Context, env Env, _ string) error {
	return env.Cluster.(cluster.DatabaseFailover).Reconfigure(ctx, r.d)
}
func (reconfiguration) Recover(ctx context.Context, env Env, _ string) error {
	return env.Cluster.(cluster.DatabaseFailover).EndReconfiguration(ctx)
}

type replicationCut struct{}

func (replicationCut) Name() string   { return KindDBFailover }
func (replicationCut) Targeted() bool { return false }
func (replicationCut) Detail() string { return "replication cut" }
func (replicationCut) Available(c cluster.Cluster) error {
	return availableFailover(c, "cut WAL shipping to the standby")
}
func (replicationCut) Inject(ctx context.Context, env Env, _ string) error {
	return env.Cluster.(cluster.DatabaseFailover).PauseReplication(ctx)
}
func (replicationCut) Recover(ctx context.Context, env Env, _ string) error {
	return env.Cluster.(cluster.DatabaseFailover).ResumeReplication(ctx)
}
