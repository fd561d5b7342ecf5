package docker

import (
	"context"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/history"
	"github.com/octoha/octoha/harness/lb"
	"github.com/octoha/octoha/harness/nemesis"
	"github.com/octoha/octoha/harness/traffic"
	"github.com/octoha/octoha/internal/otheruser"
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
	checkToxiproxyLockedOut(t, c)
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

// TestOtherUserHelper is the body of the probes otheruser.Run runs as nobody.
func TestOtherUserHelper(t *testing.T) { otheruser.Serve(t) }

// checkToxiproxyLockedOut: the Toxiproxy API published on 127.0.0.1 wants
// the cluster's secret. Without it (as any local user would try; as nobody
// when the test runs as root) creating a proxy on 0.0.0.0:81 or re-pointing
// client-lb is refused with 401, and nothing changed.
func checkToxiproxyLockedOut(t *testing.T, c *Cluster) {
	t.Helper()
	api := "http://" + c.Toxiproxy().Addr()
	probes := []otheruser.Probe{
		{Name: "proxy on 0.0.0.0:81", Kind: "http", Method: http.MethodPost, Target: api + "/proxies", Body: `{"name":"evil","listen":"0.0.0.0:81","upstream":"node1:8080"}`},
		{Name: "re-point client-lb", Kind: "http", Method: http.MethodPost, Target: api + "/proxies/client-lb", Body: `{"upstream":"127.0.0.1:9"}`},
	}
	for _, p := range probes {
		req, err := http.NewRequest(p.Method, p.Target, strings.NewReader(p.Body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s without the secret: %v", p.Name, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s without the secret: %s, want 401", p.Name, resp.Status)
		}
	}
	if os.Geteuid() == 0 {
		res := otheruser.Run(t, "TestOtherUserHelper", probes)
		for _, p := range probes {
			if r := res[p.Name]; !strings.Contains(r.Err, "401") {
				t.Errorf("%s as %s: %+v, want 401", p.Name, otheruser.User, r)
			}
		}
	}
	links, err := c.Toxiproxy().Links(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range links {
		if l.Name == "evil" || l.Upstream == "127.0.0.1:9" {
			t.Errorf("link %+v was made without the secret", l)
		}
	}
}
