package local

// The running cluster as cluster.Cluster and its controllers: what it is,
// and the faults its owner carries out on its processes.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/octoha/octoha/fakes/blob"
	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/lb"
)

// Spec implements cluster.Cluster.
func (c *Cluster) Spec() cluster.Spec { return c.spec }

// URL implements cluster.Cluster.
func (c *Cluster) URL() string {
	if c.tp != nil {
		return "http://" + c.spec.LBAddr()
	}
	if c.lb != nil {
		return c.lb.URL()
	}
	return "http://" + c.spec.LBAddr()
}

// Nodes implements cluster.Cluster.
func (c *Cluster) Nodes() []cluster.Node {
	out := make([]cluster.Node, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = n.info
	}
	return out
}

// APIKey implements cluster.Cluster.
func (c *Cluster) APIKey() string { return c.spec.APIKey }

// RunDir is where configs, data and logs live.
func (c *Cluster) RunDir() string { return c.dir }

// Balancer implements cluster.LBController.
func (c *Cluster) Balancer() lb.Balancer { return c.lb }

// LBStates implements cluster.Cluster.
func (c *Cluster) LBStates(ctx context.Context) ([]lb.ServerState, error) {
	if c.lb == nil {
		return nil, errors.New("load balancer not started")
	}
	return c.lb.States(ctx)
}

// Components implements cluster.Cluster.
func (c *Cluster) Components() []cluster.Component {
	out := slices.Clone(c.comps)
	for _, n := range c.nodes {
		pid := 0
		if n.p != nil && !n.p.Exited() {
			pid = n.p.PID()
		}
		out = append(out, cluster.Component{Part: "node " + n.info.Name, Description: "fake Octopus Server node (octoha node)", Location: n.info.URL, PID: pid})
	}
	return out
}

func (c *Cluster) node(name string) (*nodeProc, error) {
	for _, n := range c.nodes {
		if n.info.Name == name || n.info.ID == name {
			return n, nil
		}
	}
	return nil, fmt.Errorf("no node named %q in this cluster", name)
}

// KillNode implements cluster.NodeController.
func (c *Cluster) KillNode(ctx context.Context, name string) error {
	n, err := c.node(name)
	if err != nil {
		return err
	}
	return n.p.Kill(ctx)
}

// PauseNode implements cluster.NodeController.
func (c *Cluster) PauseNode(_ context.Context, name string) error {
	n, err := c.node(name)
	if err != nil {
		return err
	}
	return n.p.Pause()
}

// ResumeNode implements cluster.NodeController.
func (c *Cluster) ResumeNode(_ context.Context, name string) error {
	n, err := c.node(name)
	if err != nil {
		return err
	}
	return n.p.Resume()
}

// StopNode implements cluster.NodeController.
func (c *Cluster) StopNode(ctx context.Context, name string) error {
	n, err := c.node(name)
	if err != nil {
		return err
	}
	return n.p.Stop(ctx, 10*time.Second)
}

// StartNode implements cluster.NodeController.
func (c *Cluster) StartNode(ctx context.Context, name string) error {
	n, err := c.node(name)
	if err != nil {
		return err
	}
	if !n.p.Exited() {
		return fmt.Errorf("node %s is still running (pid %d)", name, n.p.PID())
	}
	if err := c.spawn(n); err != nil {
		return err
	}
	_ = c.writeState(true)
	return c.waitNodeUp(ctx, n)
}

// StopDatabase implements cluster.DatabaseController.
func (c *Cluster) StopDatabase(ctx context.Context) error {
	if c.pg == nil {
		return errors.New("the database is " + c.spec.DB.Kind + ", which this provider cannot stop (use database kind postgres)")
	}
	return c.pg.Stop(ctx)
}

// StartDatabase implements cluster.DatabaseController.
func (c *Cluster) StartDatabase(ctx context.Context) error {
	if c.pg == nil {
		return errors.New("the database is " + c.spec.DB.Kind + ", which this provider cannot start")
	}
	return c.pg.StartAgain(ctx)
}

// StopShare implements cluster.ShareController.
func (c *Cluster) StopShare(ctx context.Context) error {
	if c.smb == nil {
		return errors.New("the share is a local directory, which cannot be taken away (use storage kind smb)")
	}
	return c.smb.Stop(ctx)
}

// StartShare implements cluster.ShareController.
func (c *Cluster) StartShare(ctx context.Context) error {
	if c.smb == nil {
		return errors.New("the share is a local directory, which cannot be taken away")
	}
	return c.smb.StartAgain(ctx)
}

// PackageFiles implements cluster.FileLister: the Packages store as the
// share holds it.
func (c *Cluster) PackageFiles(ctx context.Context) ([]blob.Info, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pkgStore == nil {
		var opts []blob.Option
		if c.smb != nil {
			opts = append(opts, blob.WithPassword(c.smb.Password()))
		}
		st, err := blob.Open(ctx, c.packages, opts...)
		if err != nil {
			return nil, fmt.Errorf("open Packages store: %w", err)
		}
		c.pkgStore = st
	}
	files, err := c.pkgStore.Walk(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("list Packages store: %w", err)
	}
	return files, nil
}

// Can implements cluster.Capable (see capable): the spec records what
// actually started, the embedded fallbacks included.
func (c *Cluster) Can(cp cluster.Capability) error { return capable(c.spec, cp) }
