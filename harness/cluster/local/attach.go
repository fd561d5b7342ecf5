package local

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/lb"
	"github.com/octoha/octoha/services/toxiproxy"
)

// Attached is a running local cluster seen from another process (octoha
// fault, a certify hook) through its run directory: its state file for
// what it is, the owner's control socket for its faults, the load
// balancer's own view and Toxiproxy's socket directly. It is a
// cluster.Cluster, so the nemesis drives it as it drives the owner's.
type Attached struct {
	st  *State
	dir string
	key string
}

var (
	_ cluster.Cluster            = (*Attached)(nil)
	_ cluster.NodeController     = (*Attached)(nil)
	_ cluster.DatabaseController = (*Attached)(nil)
	_ cluster.ShareController    = (*Attached)(nil)
	_ cluster.NetworkController  = (*Attached)(nil)
)

// Attach reads the cluster in dir (started by octoha up).
func Attach(dir string) (*Attached, error) {
	st, err := ReadState(dir)
	if err != nil {
		return nil, fmt.Errorf("no cluster in %s (start one with octoha up): %w", dir, err)
	}
	key, err := ReadAPIKey(dir)
	if err != nil {
		return nil, err
	}
	return &Attached{st: st, dir: dir, key: key}, nil
}

// State is the cluster's state file.
func (a *Attached) State() *State { return a.st }

// Spec implements cluster.Cluster (redacted: the key is APIKey's).
func (a *Attached) Spec() cluster.Spec { return a.st.Spec }

// URL implements cluster.Cluster.
func (a *Attached) URL() string { return a.st.LBURL }

// Nodes implements cluster.Cluster.
func (a *Attached) Nodes() []cluster.Node { return a.st.Nodes }

// APIKey implements cluster.Cluster.
func (a *Attached) APIKey() string { return a.key }

// Components implements cluster.Cluster.
func (a *Attached) Components() []cluster.Component { return a.st.Components }

// Down implements cluster.Cluster: the cluster is its owner's to stop
// (DownDir), never an attached process's.
func (a *Attached) Down(context.Context) error { return nil }

// LBStates implements cluster.Cluster, reading the balancer's own view.
func (a *Attached) LBStates(ctx context.Context) ([]lb.ServerState, error) {
	names := make([]string, len(a.st.Nodes))
	for i, n := range a.st.Nodes {
		names[i] = n.Name
	}
	return lb.ReadStates(ctx, lb.Kind(a.st.LBKind), filepath.Clean(a.st.LBDir), names)
}

// Can implements cluster.Capable, as the owner answers it.
func (a *Attached) Can(cp cluster.Capability) error { return capable(a.st.Spec, cp) }

// Toxiproxy implements cluster.NetworkController: its API's socket is in
// the run directory (nil when the links are direct).
func (a *Attached) Toxiproxy() *toxiproxy.Client {
	if !a.st.Spec.Toxiproxy || a.st.ToxiproxySocket == "" {
		return nil
	}
	return toxiproxy.NewUnixClient(a.st.ToxiproxySocket)
}

func (a *Attached) control(ctx context.Context, action, node string) error {
	return Control(ctx, a.dir, action, node)
}

// KillNode implements cluster.NodeController (through the owner).
func (a *Attached) KillNode(ctx context.Context, n string) error {
	return a.control(ctx, ActionKill, n)
}

// PauseNode implements cluster.NodeController.
func (a *Attached) PauseNode(ctx context.Context, n string) error {
	return a.control(ctx, ActionPause, n)
}

// ResumeNode implements cluster.NodeController.
func (a *Attached) ResumeNode(ctx context.Context, n string) error {
	return a.control(ctx, ActionResume, n)
}

// StopNode implements cluster.NodeController.
func (a *Attached) StopNode(ctx context.Context, n string) error {
	return a.control(ctx, ActionStop, n)
}

// StartNode implements cluster.NodeController.
func (a *Attached) StartNode(ctx context.Context, n string) error {
	return a.control(ctx, ActionStart, n)
}

// StopDatabase implements cluster.DatabaseController.
func (a *Attached) StopDatabase(ctx context.Context) error {
	return a.control(ctx, ActionDBStop, "")
}

// StartDatabase implements cluster.DatabaseController.
func (a *Attached) StartDatabase(ctx context.Context) error {
	return a.control(ctx, ActionDBStart, "")
}

// StopShare implements cluster.ShareController.
func (a *Attached) StopShare(ctx context.Context) error {
	return a.control(ctx, ActionShareStop, "")
}

// StartShare implements cluster.ShareController.
func (a *Attached) StartShare(ctx context.Context) error {
	return a.control(ctx, ActionShareStart, "")
}

// capable is the local provider's one answer to "can this cluster take
// this fault", from its spec as started (fallbacks applied): processes can
// be killed, paused and restarted; database and share outages need the
// real PostgreSQL and Samba, not the embedded fallbacks; failovers need a
// failover group; partitions and other network faults need the links to
// go through Toxiproxy; the balancer's own view needs a balancer that has
// one (lb.FeatStateView).
func capable(spec cluster.Spec, cp cluster.Capability) error {
	group := spec.DB.Kind == cluster.DBPostgres && spec.DB.Replica != ""
	switch cp {
	case cluster.CapDBFailover:
		if !group {
			return fmt.Errorf("the database is not a failover group: failovers need database.replica sync or async with PostgreSQL (spec database.replica, apt-get install postgresql)")
		}
	case cluster.CapDBOutage:
		if group {
			return errors.New("the database is a failover group: stop it with a failover (planned or forced) instead of an outage")
		}
		if spec.DB.Kind != cluster.DBPostgres {
			return fmt.Errorf("the database is %s (embedded): database outages need PostgreSQL (--db postgres, apt-get install postgresql) or SQL Server", spec.DB.Kind)
		}
	case cluster.CapShareOutage:
		if spec.Storage.Kind != cluster.StorageSMB {
			return errors.New("the share is a local directory (embedded): share outages need Samba (--storage smb, apt-get install samba)")
		}
	case cluster.CapLBView:
		return lb.Supports(lb.Kind(spec.LB.Kind), lb.FeatStateView)
	case cluster.CapPartition, cluster.CapNetwork:
		if !spec.Toxiproxy {
			return fmt.Errorf("%s faults need the cluster's links to go through Toxiproxy (octoha up --toxiproxy, spec toxiproxy: true); the docker provider can partition too", cp)
		}
	}
	return nil
}
