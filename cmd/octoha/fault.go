package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/cluster/local"
	"github.com/octoha/octoha/harness/lb"
	"github.com/octoha/octoha/harness/nemesis"
)

// faultActions are what `octoha fault` does: the cluster owner's control
// actions, plus drain and undrain through the Octopus API.
var faultActions = append(slices.Clone(local.ControlActions), "drain", "undrain")

// runFault injects or undoes one fault on a running local cluster. It is
// also what certification hooks call when a local cluster poses as a real
// one.
func runFault(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("fault", stderr)
	name := fs.String("name", "default", "cluster name (names the default run directory)")
	runDir := fs.String("run-dir", "", "run directory (default /tmp/octoha-<uid>/<name>)")
	node := fs.String("node", "", "the node, e.g. Node2 (for node faults)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: octoha fault ACTION [--node NAME] [--name CLUSTER | --run-dir DIR]\n\nACTION is one of: %s\n\n", strings.Join(faultActions, ", "))
		fmt.Fprintln(stderr, "kill/pause/stop/db-stop/share-stop inject a fault into a cluster started with octoha up;\nstart/resume/db-start/share-start undo it (start waits until the node answers its ping);\ndrain/undrain set the node's maintenance mode through the Octopus API.\n\nFlags:")
		fs.PrintDefaults()
	}
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fs.Usage()
		return fmt.Errorf("%w: an action is required (%s)", errUsage, strings.Join(faultActions, ", "))
	}
	action := args[0]
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if !slices.Contains(faultActions, action) {
		return fmt.Errorf("%w: unknown action %q (want one of %s)", errUsage, action, strings.Join(faultActions, ", "))
	}
	needsNode := local.NodeAction(action) || action == "drain" || action == "undrain"
	if needsNode && *node == "" {
		return fmt.Errorf("%w: %s needs --node", errUsage, action)
	}
	if !needsNode && *node != "" {
		return fmt.Errorf("%w: %s takes no --node", errUsage, action)
	}
	if err := local.Supported(); err != nil {
		return err
	}
	dir := *runDir
	if dir == "" {
		dir = local.DefaultRunDir(*name)
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	st, err := local.ReadState(dir)
	if err != nil {
		return fmt.Errorf("no cluster in %s (start one with octoha up): %w", dir, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	start := time.Now()
	if action == "drain" || action == "undrain" {
		key, err := local.ReadAPIKey(dir)
		if err != nil {
			return err
		}
		env := nemesis.Env{Cluster: stateCluster{st: st, key: key}}
		if err := nemesis.SetMaintenance(ctx, env, *node, action == "drain"); err != nil {
			return err
		}
	} else if err := local.Control(ctx, dir, action, *node); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: done in %s\n", strings.TrimSpace(action+" "+*node), time.Since(start).Round(time.Millisecond))
	return nil
}

// stateCluster is a running local cluster seen through its state file:
// enough of cluster.Cluster to reach its API.
type stateCluster struct {
	st  *local.State
	key string
}

func (s stateCluster) Spec() cluster.Spec                                 { return s.st.Spec }
func (s stateCluster) URL() string                                        { return s.st.LBURL }
func (s stateCluster) Nodes() []cluster.Node                              { return s.st.Nodes }
func (s stateCluster) APIKey() string                                     { return s.key }
func (s stateCluster) LBStates(context.Context) ([]lb.ServerState, error) { return nil, nil }
func (s stateCluster) Components() []cluster.Component                    { return s.st.Components }
func (s stateCluster) Down(context.Context) error                         { return nil }
func (s stateCluster) Can(cp cluster.Capability) error {
	if cp == cluster.CapDrain {
		return nil
	}
	return fmt.Errorf("%s: use octoha fault %s", cp, cp)
}
