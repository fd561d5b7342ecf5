package cluster

import (
	"context"
	"time"
)

// DatabaseFailover is a database failover group: a primary and a standby
// behind one listener address (what Azure SQL failover groups and SQL
// Server Always On listeners give clients). See docs/azure-sql.md.
type DatabaseFailover interface {
	// PlannedFailover stops writes at the listener, waits until the
	// standby has replayed everything the primary wrote, stops the
	// primary, promotes the standby and moves the listener to it: nothing
	// committed is lost.
	PlannedFailover(ctx context.Context) error
	// ForcedFailover kills the primary (SIGKILL), promotes the standby
	// with whatever it has received and moves the listener: with
	// asynchronous replication, commits the standby had not received are
	// lost.
	ForcedFailover(ctx context.Context) error
	// RebuildStandby makes the group whole again after a failover: the
	// lost server is re-seeded from the new primary as its standby. A
	// no-op when the standby runs.
	RebuildStandby(ctx context.Context) error
	// Reconfigure resets every connection through the listener and
	// refuses new ones for d (an Azure SQL reconfiguration); d <= 0 until
	// EndReconfiguration.
	Reconfigure(ctx context.Context, d time.Duration) error
	EndReconfiguration(ctx context.Context) error
	// PauseReplication cuts the WAL stream from the primary to the
	// standby (the primary keeps committing when asynchronous);
	// ResumeReplication reconnects it.
	PauseReplication(ctx context.Context) error
	ResumeReplication(ctx context.Context) error
}
