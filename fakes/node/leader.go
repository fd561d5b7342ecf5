package node

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/octoha/octoha/fakes/store"
	"github.com/octoha/octoha/octopusapi"
)

// leadState is this node's view of its leadership. The node acts as leader
// only until the expiry it computed before its last successful renewal
// (see store.AcquireLease), so a node paused past its lease never acts
// alongside the next leader.
type leadState struct {
	mu         sync.Mutex
	until      time.Time // leader while now is before it
	term       int64
	since      time.Time // when this leadership began
	lastRetain time.Time
	dbOKSince  time.Time // start of the current run of successful heartbeats
}

// IsLeader reports whether this node holds the leader lease now.
func (n *Node) IsLeader() bool {
	n.lead.mu.Lock()
	defer n.lead.mu.Unlock()
	return time.Now().Before(n.lead.until)
}

// leadTick runs after every heartbeat: it takes or renews the leader lease
// (gives it up while draining), then, as leader, does the leader-only work.
// healthy says the heartbeat reached the database.
func (n *Node) leadTick(ctx context.Context, healthy bool, draining bool) {
	now := time.Now().UTC()
	n.lead.mu.Lock()
	if !healthy {
		n.lead.dbOKSince = time.Time{}
	} else if n.lead.dbOKSince.IsZero() {
		n.lead.dbOKSince = now
	}
	wasLeader := now.Before(n.lead.until)
	n.lead.mu.Unlock()
	if !healthy {
		return
	}
	lctx, cancel := context.WithTimeout(ctx, max(n.cfg.Heartbeat, time.Second))
	defer cancel()
	if draining {
		if wasLeader || n.leaseHolder(lctx) {
			n.lead.mu.Lock()
			n.lead.until = time.Time{}
			n.lead.mu.Unlock()
			if err := n.cfg.DB.ReleaseLease(lctx, store.LeaderLease, n.cfg.ID); err != nil {
				n.log.Warn("cannot give up leadership while draining", "err", err)
			} else {
				n.log.Info("draining: gave up leadership")
			}
		}
		return
	}
	lease, ok, err := n.cfg.DB.AcquireLease(lctx, store.LeaderLease, n.cfg.ID, n.cfg.Name, now, n.cfg.LeaderLease)
	n.lead.mu.Lock()
	switch {
	case err != nil:
		// Keep acting only until the lease already held runs out.
		n.lead.mu.Unlock()
		n.log.Debug("cannot renew the leader lease", "err", err)
		return
	case ok:
		n.lead.until = now.Add(n.cfg.LeaderLease)
		if !wasLeader || lease.Term != n.lead.term {
			n.lead.since, n.lead.lastRetain = now, now
			n.log.Info("became leader", "term", lease.Term)
		}
		n.lead.term = lease.Term
	default:
		n.lead.until = time.Time{}
		if wasLeader {
			n.log.Warn("lost leadership", "leader", lease.NodeName, "term", lease.Term)
		}
	}
	leader := ok
	n.lead.mu.Unlock()
	if leader {
		n.leaderWork(ctx, now)
	}
}

func (n *Node) leaseHolder(ctx context.Context) bool {
	l, err := n.cfg.DB.Lease(ctx, store.LeaderLease)
	return err == nil && l.NodeID == n.cfg.ID && l.HeldAt(time.Now())
}

// leaderWork is what only the leader does: fail the tasks of nodes that
// are gone, and queue retention.
func (n *Node) leaderWork(ctx context.Context, now time.Time) {
	n.failDeadNodesTasks(ctx, now)
	n.lead.mu.Lock()
	due := n.cfg.RetentionInterval > 0 && now.Sub(n.lead.lastRetain) >= n.cfg.RetentionInterval
	term := n.lead.term
	if due {
		n.lead.lastRetain = now
	}
	n.lead.mu.Unlock()
	if due {
		args, _ := json.Marshal(octopusapi.TaskArguments{DurationMs: 100})
		t, err := n.cfg.DB.CreateTask(ctx, store.Task{
			SpaceID: octopusapi.DefaultSpaceID, Name: octopusapi.TaskKindRetention, Args: string(args),
			Description: fmt.Sprintf("Apply retention policies (queued by leader %s, term %d)", n.cfg.Name, term),
		})
		if err != nil {
			n.log.Warn("leader: cannot queue retention", "err", err)
			return
		}
		n.log.Info("leader: retention queued", "task", t.ID, "term", term)
	}
}

// failDeadNodesTasks fails every task held by a node that is offline (not
// seen for OfflineAfter) or no longer registered. It waits until this
// node's own database connection has been good for OfflineAfter, so a
// database outage that stopped every node's heartbeats does not make the
// others look dead when it ends.
func (n *Node) failDeadNodesTasks(ctx context.Context, now time.Time) {
	n.lead.mu.Lock()
	settled := !n.lead.dbOKSince.IsZero() && now.Sub(n.lead.dbOKSince) >= n.cfg.OfflineAfter
	n.lead.mu.Unlock()
	if !settled {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, max(n.cfg.Heartbeat, 2*time.Second))
	defer cancel()
	tasks, err := n.cfg.DB.ActiveTasks(cctx)
	if err != nil || len(tasks) == 0 {
		return
	}
	rows, err := n.cfg.DB.Nodes(cctx)
	if err != nil {
		return
	}
	seen := map[string]time.Time{}
	for _, r := range rows {
		if r.LastSeen.After(seen[r.Name]) {
			seen[r.Name] = r.LastSeen
		}
	}
	for _, t := range tasks {
		if t.ServerNode == n.cfg.Name {
			continue
		}
		last, known := seen[t.ServerNode]
		var msg string
		switch {
		case !known:
			msg = fmt.Sprintf("The server node %s running this task is no longer registered (deleted).", t.ServerNode)
		case now.Sub(last) > n.cfg.OfflineAfter:
			msg = fmt.Sprintf("The server node %s running this task went offline (not seen since %s).", t.ServerNode, last.Format(time.RFC3339Nano))
		default:
			continue
		}
		n.failTaskOf(cctx, t, msg, now)
	}
}

// clusterView is what a node resource needs beyond its row: who leads,
// and how many tasks each node holds.
type clusterView struct {
	lease   store.Lease
	leaseOK bool
	running map[string]int // by node Name
	ok      bool
}

func (n *Node) loadClusterView(ctx context.Context) clusterView {
	v := clusterView{running: map[string]int{}}
	l, err := n.cfg.DB.Lease(ctx, store.LeaderLease)
	if err == nil {
		v.lease, v.leaseOK = l, true
	}
	tasks, err := n.cfg.DB.ActiveTasks(ctx)
	if err == nil {
		v.ok = true
		for _, t := range tasks {
			v.running[t.ServerNode]++
		}
	}
	return v
}
