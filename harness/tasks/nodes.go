package tasks

// The node list as the task checks need it: ranks, running tasks and caps
// read through every node, and a node's cap changed through the API.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/octoha/octoha/harness/history"
	"github.com/octoha/octoha/octopusapi"
)

// ObserveNodes reads the node summary through every node at once and
// records what each answered (a dead or paused node's request fails or
// times out, and is recorded so).
func (d *Driver) ObserveNodes(ctx context.Context) {
	var wg sync.WaitGroup
	for _, n := range d.o.Nodes {
		wg.Go(func() { d.observe(ctx, n) })
	}
	wg.Wait()
}

// nodeSummary is GET /api/octopusservernodes/summary as Octopus sends it.
type nodeSummary struct {
	Nodes []octopusapi.Node
}

func nodeView(n octopusapi.Node) history.NodeView {
	return history.NodeView{ID: n.Id, Name: n.Name, Rank: n.Rank, MaxConcurrentTasks: n.MaxConcurrentTasks,
		RunningTasks: n.RunningTaskCount, Draining: n.IsInMaintenanceMode, Offline: n.IsOffline, LastSeen: n.LastSeen}
}

func (d *Driver) observe(ctx context.Context, n Node) {
	c := d.do(ctx, history.KindTaskNodes, http.MethodGet, n.URL, octopusapi.NodesSummaryPath, n.Name, nil)
	if c.op.Outcome == history.OK {
		var s nodeSummary
		if err := json.Unmarshal(c.body, &s); err != nil {
			c.op.Outcome, c.op.Error = history.Failed, "not a node summary: "+err.Error()
		}
		d.mu.Lock()
		for _, node := range s.Nodes {
			v := nodeView(node)
			c.op.NodeList = append(c.op.NodeList, v)
			d.nodes[v.Name] = v
			d.nodeIDs[v.Name] = v.ID
		}
		d.mu.Unlock()
	}
	if ctx.Err() != nil && c.op.Outcome != history.OK {
		return // stopped mid-request: not an observation
	}
	d.record(c.op)
}

// Nodes returns the last node list read, sorted by name.
func (d *Driver) Nodes() []history.NodeView {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]history.NodeView, 0, len(d.nodes))
	for _, v := range d.nodes {
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b history.NodeView) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Leader returns the node the last node list showed as leader ("" when
// none or several).
func (d *Driver) Leader() string {
	leader := ""
	for _, n := range d.Nodes() {
		if strings.EqualFold(n.Rank, octopusapi.RankLeader) && !n.Offline {
			if leader != "" {
				return ""
			}
			leader = n.Name
		}
	}
	return leader
}

// finishConcurrency is how many tasks Finish reads at once.
const finishConcurrency = 1

// nodeID finds a node's ID by name, reading the node list through the
// load balancer when it is not known yet.
func (d *Driver) nodeID(ctx context.Context, name string) (string, error) {
	d.mu.Lock()
	id := d.nodeIDs[name]
	d.mu.Unlock()
	if id != "" {
		return id, nil
	}
	c := d.do(ctx, history.KindTaskNodes, http.MethodGet, d.o.URL, octopusapi.NodesSummaryPath, ViaLB, nil)
	if c.op.Outcome == history.OK {
		var s nodeSummary
		if err := json.Unmarshal(c.body, &s); err == nil {
			for _, n := range s.Nodes {
				c.op.NodeList = append(c.op.NodeList, nodeView(n))
				if n.Name == name {
					id = n.Id
				}
			}
		}
	}
	d.record(c.op)
	if id == "" {
		return "", fmt.Errorf("no node named %s in the node list (%s)", name, opError(c.op))
	}
	return id, nil
}

// SetCap changes a node's MaxConcurrentTasks through the load balancer,
// as an operator does on the Nodes page.
func (d *Driver) SetCap(ctx context.Context, node string, limit int) error {
	if limit < 0 {
		return fmt.Errorf("task cap %d: must not be negative", limit)
	}
	id, err := d.nodeID(ctx, node)
	if err != nil {
		return fmt.Errorf("set %s's task cap: %w", node, err)
	}
	c := d.do(ctx, history.KindTaskCap, http.MethodPut, d.o.URL, octopusapi.NodePath(id), ViaLB, octopusapi.NodeUpdate{Id: id, MaxConcurrentTasks: &limit})
	if c.op.Outcome == history.OK {
		var n octopusapi.Node
		if json.Unmarshal(c.body, &n) == nil && n.Name != "" {
			c.op.NodeList = []history.NodeView{nodeView(n)}
		} else {
			c.op.NodeList = []history.NodeView{{ID: id, Name: node, MaxConcurrentTasks: limit}}
		}
	}
	d.record(c.op)
	if c.op.Outcome != history.OK {
		return fmt.Errorf("set %s's task cap to %d: %s", node, limit, opError(c.op))
	}
	return nil
}
