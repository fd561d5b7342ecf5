package scenario

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/octoha/octoha/harness/checker"
	"github.com/octoha/octoha/harness/cluster"
)

// The seed's rule that one Octopus instance runs either all Windows nodes
// or all Linux-container nodes, because each records BLOB paths in its own
// form. Octopus's API does not expose a node's operating system (an
// OctopusServerNodes resource has none; go-octopusdeploy v2.114.1 reads
// IsInMaintenanceMode, MaxConcurrentTasks and Name only), so the harness
// takes it from the cluster's description: the spec of a simulated
// cluster, each node's `os:` in an external cluster's YAML.

// MixedOS shows why the rule exists: a cluster of a Windows and a Linux
// node (allowed here only), packages uploaded through the load balancer,
// and each node unable to read what the other stored.
func MixedOS() Scenario {
	return Scenario{
		Title: "Mixed operating systems",
		Claim: "With a Windows and a Linux node in one cluster, a package stored through one cannot be downloaded through the other, and the downloads check names mixed operating systems as the cause.",
		Topic: LTopology,
		Needs: []cluster.Capability{cluster.CapSimulated},
		Shape: Shape{Nodes: 2, OS: []string{cluster.OSWindows, cluster.OSLinux}, DB: cluster.DBSQLite, Storage: cluster.StorageLocal},
		// Small packages: each is downloaded through every node.
		Uploads: &Uploads{Count: 4, Concurrency: 1, MaxSize: 1 << 20},
		Checks: []Check{
			{Name: "downloads", ExpectFail: true, Finding: checker.FindingMixedOS.Name},
			// The same failed downloads make the packages unreadable
			// through a node, which is what durability checks.
			{Name: "durability", ExpectFail: true},
		},
		Providers:    []string{Local},
		ProviderNote: "it mixes node operating systems, which only a simulated cluster allows",
		Timeout:      2 * time.Minute,
		Steps:        mixedOSSteps,
	}
}

func mixedOSSteps(ctx context.Context, r Run) error {
	os := nodeOS(r.Cluster())
	r.Note("nodes: %s", describeOS(os))
	r.Step("uploading 4 packages through the load balancer, which spreads them over both nodes")
	o := r.UploadOptions(4, 1, min(r.UploadSize(), 1<<20))
	sum, err := r.Upload(ctx, o)
	if err != nil {
		return err
	}
	if err := sum.Err(); err != nil {
		return fmt.Errorf("uploads through a mixed cluster must still be stored: %w", err)
	}
	by := map[string]int{}
	for _, p := range sum.Packages {
		by[p.Node]++
	}
	if len(by) < 2 {
		return fmt.Errorf("every upload landed on one node (%v): the load balancer did not spread them, so nothing crosses operating systems", by)
	}
	rep, err := r.Check(ctx, checker.Options{NodeOS: os})
	if err != nil {
		return err
	}
	dl, _ := rep.Result("downloads")
	r.Figure("downloads-failed-across-os", dl.Value(checker.FindingMixedOS.Name), "requests")
	r.Figure("downloads-ok", dl.Value("downloads-ok"), "requests")
	return nil
}

// OSTopology is the certificate's row: every node runs one operating
// system, and a package stored through one node downloads through all.
func OSTopology() Scenario {
	return Scenario{
		Title:     "Operating systems",
		Claim:     "Every node runs the same operating system (all Windows or all Linux containers), and a package stored through any node downloads through every node.",
		Topic:     LTopology,
		Shape:     Shape{Nodes: 2, DB: cluster.DBSQLite, Storage: cluster.StorageLocal},
		Uploads:   &Uploads{Count: 2, Concurrency: 1, MaxSize: 1 << 20},
		Checks:    checks("downloads", "durability"),
		Certifies: []string{ReqSameOS},
		Timeout:   2 * time.Minute,
		Steps:     osTopologySteps,
	}
}

func osTopologySteps(ctx context.Context, r Run) error {
	os := nodeOS(r.Cluster())
	var unknown []string
	for _, n := range r.Cluster().Nodes() {
		if n.OS == "" {
			unknown = append(unknown, n.Name)
		}
	}
	if len(unknown) > 0 {
		return Skip("no operating system is given for %s: Octopus's API does not expose it (OctopusServerNodes carry none), so give each node `os: linux` or `os: windows` in the cluster YAML", strings.Join(unknown, ", "))
	}
	r.Note("nodes: %s (from the cluster's description; Octopus's API does not expose a node's OS)", describeOS(os))
	r.Step("uploading 2 small packages through the load balancer, then reading them through every node")
	sum, err := r.Upload(ctx, r.UploadOptions(2, 1, min(r.UploadSize(), 1<<20)))
	if err != nil {
		return err
	}
	if err := sum.Err(); err != nil {
		return err
	}
	if _, err := r.Check(ctx, checker.Options{NodeOS: os}); err != nil {
		return err
	}
	if oses := distinctOS(os); len(oses) > 1 {
		return fmt.Errorf("the cluster mixes operating systems (%s), which %s", describeOS(os), cluster.MixedOSRule)
	}
	return nil
}

// nodeOS maps the cluster's node names to their operating systems, where
// known.
func nodeOS(c cluster.Cluster) map[string]string {
	m := map[string]string{}
	for _, n := range c.Nodes() {
		if n.OS != "" {
			m[n.Name] = n.OS
		}
	}
	return m
}

func distinctOS(m map[string]string) []string {
	var out []string
	for _, os := range m {
		if !slices.Contains(out, os) {
			out = append(out, os)
		}
	}
	sort.Strings(out)
	return out
}

func describeOS(m map[string]string) string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	for i, n := range names {
		names[i] = n + " " + m[n]
	}
	return strings.Join(names, ", ")
}
