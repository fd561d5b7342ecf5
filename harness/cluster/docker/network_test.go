package docker

import (
	"context"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/history"
	"github.com/octoha/octoha/harness/lb"
	"github.com/octoha/octoha/harness/nemesis"
	"github.com/octoha/octoha/harness/traffic"
)

// TestToxiproxyCluster: with Spec.Toxiproxy the docker cluster's links go
// through a Toxiproxy container; uploads pass through them, a partition
// through Toxiproxy takes a node out and healing brings it back, and Down
// leaves nothing. The node image must hold an octoha with the toxiproxy
// subcommand ($OCTOHA_IMAGE_NODE).
func TestToxiproxyCluster(t *testing.T) {
	needDocker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	spec := cluster.Defaults()
	spec.Name = "dockernet"
	spec.Nodes = 2
	spec.Toxiproxy = true
	spec.LB.Interval = 300 * time.Millisecond
	c := upCluster(t, ctx, spec, Options{})
	if err := cluster.Can(c, cluster.CapNetwork); err != nil {
		t.Fatal(err)
	}
	links, err := c.Toxiproxy().Links(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range links {
		names = append(names, l.Name)
	}
	for _, want := range []string{"client-lb", "lb-Node1", "Node1-db", "Node1-share", "lb-Node2", "Node2-db", "Node2-share"} {
		if !slices.Contains(names, want) {
			t.Errorf("links %v lack %s", names, want)
		}
	}
	sum, err := traffic.Upload(ctx, traffic.UploadOptions{URL: c.URL(), APIKey: c.APIKey(), Size: 8 << 20, Count: 2, Concurrency: 2, Seed: 3})
	if err != nil || sum.Err() != nil {
		t.Fatalf("upload through the proxies: %v %v", err, sum.Err())
	}
	env := nemesis.Env{Cluster: c, Recorder: history.NewRecorder(io.Discard)}
	inj, err := nemesis.Inject(ctx, env, nemesis.NetworkPartition(cluster.LinkAll), "Node2")
	if err != nil {
		t.Fatal(err)
	}
	waitState(t, ctx, c, "Node2", lb.StateDown)
	if err := inj.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	waitState(t, ctx, c, "Node2", lb.StateUp)
	if err := c.Down(ctx); err != nil {
		t.Fatal(err)
	}
	assertNothingLeft(t, ctx, c.RunID(), "")
}
