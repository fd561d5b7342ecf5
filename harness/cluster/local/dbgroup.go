package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/internal/relay"
	"github.com/octoha/octoha/services/postgres"
)

// A database failover group (spec database.replica: sync|async): two real
// PostgreSQL servers, a primary and a streaming-replication standby made
// with pg_basebackup, behind one listener at the database's usual address
// (DBHost:PostgresPort, the group's "name"). The listener is a relay the
// harness re-points; the standby streams WAL through a second relay, so
// WAL shipping can be cut. Ports on DBHost:
//
//	PostgresPort    the listener (what nodes connect to)
//	PostgresPort+1  server A (the first primary)
//	PostgresPort+2  server B (the first standby)
//	PostgresPort+3  replication link: standby → current primary
type dbGroup struct {
	mode string // cluster.ReplicaSync or ReplicaAsync
	dir  string
	host string
	logW io.Writer
	log  *slog.Logger

	listener *relay.Relay
	repl     *relay.Relay

	mu      sync.Mutex
	servers [2]*postgres.Server // nil: lost (killed or stopped) and not rebuilt
	primary int
}

// standbyName is each server's application_name as a standby.
func standbyName(i int) string { return "pg" + string(rune('a'+i)) }

func (g *dbGroup) serverDir(i int) string { return filepath.Join(g.dir, standbyName(i)) }
func (g *dbGroup) serverPort(i int) int   { return PostgresPort + 1 + i }

func startDBGroup(ctx context.Context, mode, dir, host string, logW io.Writer, log *slog.Logger) (_ *dbGroup, err error) {
	g := &dbGroup{mode: mode, dir: dir, host: host, logW: logW, log: log.With("part", "database failover group")}
	defer func() {
		if err != nil {
			_ = g.Close(context.WithoutCancel(ctx))
		}
	}()
	a, err := postgres.Start(ctx, postgres.Options{Dir: g.serverDir(0), Host: host, Port: g.serverPort(0), Log: logW})
	if err != nil {
		return nil, fmt.Errorf("start the primary: %w", err)
	}
	g.servers[0] = a
	if err := a.EnableReplication(ctx); err != nil {
		return nil, err
	}
	if g.repl, err = relay.Listen(net.JoinHostPort(host, strconv.Itoa(PostgresPort+3)), a.Addr(), log); err != nil {
		return nil, err
	}
	if err := g.startStandby(ctx, 1); err != nil {
		return nil, err
	}
	if g.listener, err = relay.Listen(net.JoinHostPort(host, strconv.Itoa(PostgresPort)), a.Addr(), log); err != nil {
		return nil, err
	}
	return g, nil
}

// startStandby seeds server i from the current primary (through the
// replication link) and starts it; in sync mode the primary then waits for
// it on every commit.
func (g *dbGroup) startStandby(ctx context.Context, i int) error {
	primary := g.servers[1-i]
	if err := os.RemoveAll(g.serverDir(i)); err != nil {
		return fmt.Errorf("remove the old data of %s: %w", standbyName(i), err)
	}
	s, err := postgres.StartStandby(ctx, primary, postgres.StandbyOptions{
		Options:     postgres.Options{Dir: g.serverDir(i), Host: g.host, Port: g.serverPort(i), Log: g.logW},
		PrimaryAddr: g.repl.Addr(),
		Name:        standbyName(i),
	})
	if err != nil {
		return fmt.Errorf("start the standby %s: %w", standbyName(i), err)
	}
	g.servers[i] = s
	if g.mode == cluster.ReplicaSync {
		if err := primary.SetSynchronousStandby(ctx, standbyName(i)); err != nil {
			return err
		}
	}
	return nil
}

// DSN is the group's DSN: the primary's credentials at the listener.
func (g *dbGroup) DSN() string {
	u, err := url.Parse(g.servers[g.primary].DSN())
	if err != nil {
		return ""
	}
	u.Host = g.listener.Addr()
	return u.String()
}

func (g *dbGroup) Addr() string { return g.listener.Addr() }

func (g *dbGroup) PIDs() []int {
	g.mu.Lock()
	defer g.mu.Unlock()
	var pids []int
	for _, s := range g.servers {
		if s != nil && s.PID() > 0 {
			pids = append(pids, s.PID())
		}
	}
	return pids
}

// roles returns the primary and the standby (nil when lost).
func (g *dbGroup) roles() (primary, standby *postgres.Server, si int) {
	return g.servers[g.primary], g.servers[1-g.primary], 1 - g.primary
}

// catchUpWithin bounds a planned failover's wait for the standby.
const catchUpWithin = 30 * time.Second

// PlannedFailover implements cluster.DatabaseFailover.
func (g *dbGroup) PlannedFailover(ctx context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	primary, standby, si := g.roles()
	if standby == nil || !standby.Running() {
		return errors.New("planned failover: the group has no running standby (rebuild it first)")
	}
	// No new writes while the roles change; clients see their
	// connections reset and reconnect to the new primary.
	g.listener.Refuse(0)
	defer g.listener.Restore()
	if err := waitCaughtUp(ctx, primary, standby); err != nil {
		return fmt.Errorf("planned failover: %w", err)
	}
	if err := primary.Stop(ctx); err != nil {
		return fmt.Errorf("planned failover: stop the primary: %w", err)
	}
	return g.promote(ctx, si)
}

// waitCaughtUp waits until standby has replayed everything primary has
// written so far (its current WAL position).
func waitCaughtUp(ctx context.Context, primary, standby *postgres.Server) error {
	lsn, err := primary.CurrentLSN(ctx)
	if err != nil {
		return fmt.Errorf("read the primary's WAL position: %w", err)
	}
	wctx, cancel := context.WithTimeout(ctx, catchUpWithin)
	defer cancel()
	for {
		ok, err := standby.ReplayedAtLeast(wctx, lsn)
		if err == nil && ok {
			return nil
		}
		select {
		case <-wctx.Done():
			return fmt.Errorf("the standby did not replay up to %s within %s (last error: %v)", lsn, catchUpWithin, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// ForcedFailover implements cluster.DatabaseFailover.
func (g *dbGroup) ForcedFailover(ctx context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	primary, standby, si := g.roles()
	if standby == nil || !standby.Running() {
		return errors.New("forced failover: the group has no running standby")
	}
	g.listener.Refuse(0)
	defer g.listener.Restore()
	if err := primary.Kill(ctx); err != nil {
		return fmt.Errorf("forced failover: kill the primary: %w", err)
	}
	return g.promote(ctx, si)
}

// promote makes server i the primary and moves the listener and the
// replication link to it. The old primary is lost until RebuildStandby.
func (g *dbGroup) promote(ctx context.Context, i int) error {
	s := g.servers[i]
	if err := s.Promote(ctx); err != nil {
		return err
	}
	// The new primary's settings are a copy of the old one's: in sync
	// mode it would wait for a standby it does not have.
	if err := s.SetSynchronousStandby(ctx, ""); err != nil {
		return err
	}
	old := g.servers[g.primary]
	g.servers[g.primary] = nil
	if err := old.Close(ctx); err != nil {
		g.log.Warn("closing the old primary", "err", err)
	}
	g.primary = i
	g.listener.SetTarget(s.Addr())
	g.repl.SetTarget(s.Addr())
	g.repl.ResetAll()
	g.log.Info("failed over", "primary", standbyName(i), "addr", s.Addr())
	return nil
}

// RebuildStandby implements cluster.DatabaseFailover.
func (g *dbGroup) RebuildStandby(ctx context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	_, standby, si := g.roles()
	if standby != nil && standby.Running() {
		return nil
	}
	if standby != nil {
		_ = standby.Close(ctx)
		g.servers[si] = nil
	}
	g.repl.Restore()
	return g.startStandby(ctx, si)
}

// Reconfigure implements cluster.DatabaseFailover.
func (g *dbGroup) Reconfigure(_ context.Context, d time.Duration) error {
	n := g.listener.Refuse(d)
	g.log.Info("reconfiguration: connections reset and refused", "reset", n, "for", d)
	return nil
}

// EndReconfiguration implements cluster.DatabaseFailover.
func (g *dbGroup) EndReconfiguration(context.Context) error {
	g.listener.Restore()
	return nil
}

// PauseReplication implements cluster.DatabaseFailover. It cuts the link
// once the standby has caught up, so that exactly what is committed after
// the cut is missing from the standby (deterministic loss in a forced
// failover, not a race with replication lag).
func (g *dbGroup) PauseReplication(ctx context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	primary, standby, _ := g.roles()
	if standby == nil || !standby.Running() {
		return errors.New("pause replication: the group has no running standby")
	}
	if err := waitCaughtUp(ctx, primary, standby); err != nil {
		return fmt.Errorf("pause replication: %w", err)
	}
	g.repl.Refuse(0)
	return nil
}

// ResumeReplication implements cluster.DatabaseFailover.
func (g *dbGroup) ResumeReplication(context.Context) error {
	g.repl.Restore()
	return nil
}

// Close stops both servers and the relays.
func (g *dbGroup) Close(ctx context.Context) error {
	var errs []error
	for _, r := range []*relay.Relay{g.listener, g.repl} {
		if r != nil {
			errs = append(errs, r.Close())
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for i, s := range g.servers {
		if s != nil {
			if err := s.Close(ctx); err != nil {
				errs = append(errs, fmt.Errorf("stop PostgreSQL %s: %w", standbyName(i), err))
			}
		}
	}
	return errors.Join(errs...)
}

var _ cluster.DatabaseFailover = (*Cluster)(nil)

func (c *Cluster) failover() (*dbGroup, error) {
	if c.group == nil {
		return nil, errors.New("the database is not a failover group (spec database.replica: sync|async)")
	}
	return c.group, nil
}

// PlannedFailover implements cluster.DatabaseFailover.
func (c *Cluster) PlannedFailover(ctx context.Context) error {
	g, err := c.failover()
	if err != nil {
		return err
	}
	return g.PlannedFailover(ctx)
}

// ForcedFailover implements cluster.DatabaseFailover.
func (c *Cluster) ForcedFailover(ctx context.Context) error {
	g, err := c.failover()
	if err != nil {
		return err
	}
	return g.ForcedFailover(ctx)
}

// RebuildStandby implements cluster.DatabaseFailover.
func (c *Cluster) RebuildStandby(ctx context.Context) error {
	g, err := c.failover()
	if err != nil {
		return err
	}
	return g.RebuildStandby(ctx)
}

// Reconfigure implements cluster.DatabaseFailover.
func (c *Cluster) Reconfigure(ctx context.Context, d time.Duration) error {
	g, err := c.failover()
	if err != nil {
		return err
	}
	return g.Reconfigure(ctx, d)
}

// EndReconfiguration implements cluster.DatabaseFailover.
func (c *Cluster) EndReconfiguration(ctx context.Context) error {
	g, err := c.failover()
	if err != nil {
		return err
	}
	return g.EndReconfiguration(ctx)
}

// PauseReplication implements cluster.DatabaseFailover.
func (c *Cluster) PauseReplication(ctx context.Context) error {
	g, err := c.failover()
	if err != nil {
		return err
	}
	return g.PauseReplication(ctx)
}

// ResumeReplication implements cluster.DatabaseFailover.
func (c *Cluster) ResumeReplication(ctx context.Context) error {
	g, err := c.failover()
	if err != nil {
		return err
	}
	return g.ResumeReplication(ctx)
}
