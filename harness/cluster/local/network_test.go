package local_test

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/cluster/local"
	"github.com/octoha/octoha/harness/lb"
	"github.com/octoha/octoha/harness/payload"
	"github.com/octoha/octoha/harness/traffic"
	"github.com/octoha/octoha/octopusapi"
)

// TestToxiproxyCluster: with Spec.Toxiproxy every link has its proxy, the
// cluster serves through them, a partition cuts a node off the load
// balancer, healing brings it back, and after Down nothing listens.
func TestToxiproxyCluster(t *testing.T) {
	bin := needLocal(t, lb.HAProxy, cluster.DBPostgres, cluster.StorageSMB)
	spec := testSpec("127.0.142", lb.HAProxy, cluster.DBPostgres, cluster.StorageSMB)
	spec.Toxiproxy = true
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c, err := local.Up(ctx, spec, local.Options{RunDir: filepath.Join(t.TempDir(), "run"), Binary: bin, Logger: testLogger(t), NoFallback: true})
	if err != nil {
		t.Fatalf("local.Up: %v", err)
	}
	downed := false
	t.Cleanup(func() {
		if !downed {
			_ = c.Down(context.Background())
		}
	})
	for _, cp := range []cluster.Capability{cluster.CapPartition, cluster.CapNetwork} {
		if err := cluster.Can(c, cp); err != nil {
			t.Errorf("Can(%s) = %v", cp, err)
		}
	}
	links, err := c.Toxiproxy().Links(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range links {
		names = append(names, l.Name)
	}
	for _, want := range []string{"client-lb", "lb-Node1", "Node1-db", "Node1-share", "lb-Node3", "Node3-db", "Node3-share"} {
		if !slices.Contains(names, want) {
			t.Errorf("links %v: no %s", names, want)
		}
	}
	// An upload through the proxied client link, LB and share.
	sum, err := traffic.Upload(ctx, traffic.UploadOptions{URL: c.URL(), APIKey: c.APIKey(), Size: 4 << 20, Count: 3, Concurrency: 3, Seed: 1})
	if err != nil || sum.Err() != nil {
		t.Fatalf("upload through the proxies: %v %v", err, sum.Err())
	}
	if err := c.PartitionNode(ctx, "Node2"); err != nil {
		t.Fatal(err)
	}
	lbState(t, c, "Node2", lb.StateDown, 10*time.Second)
	if err := c.HealNode(ctx, "Node2"); err != nil {
		t.Fatal(err)
	}
	lbState(t, c, "Node2", lb.StateUp, 20*time.Second)
	directPing(t, c.URL(), http.StatusOK, 5*time.Second)

	pids := c.PIDs()
	downed = true
	if err := c.Down(ctx); err != nil {
		t.Fatalf("Down: %v", err)
	}
	assertAllGone(t, pids)
	// Nothing listens on any address of the cluster or of its proxies.
	addrs := []string{spec.LBAddr(), "127.0.142.10:8081"}
	for i := range spec.Nodes {
		h, _, _ := net.SplitHostPort(spec.NodeAddr(i))
		for _, p := range []string{"8080", "8081", "5432", "4445"} {
			addrs = append(addrs, net.JoinHostPort(h, p))
		}
	}
	for _, a := range addrs {
		l, err := net.Listen("tcp", a)
		if err != nil {
			t.Errorf("%s is still in use after Down: %v", a, err)
			continue
		}
		l.Close()
	}
}

// BenchmarkToxiproxyOverhead uploads the same package size through HAProxy
// to a node, on PostgreSQL and Samba, on a cluster with every link proxied
// and on one without, both up at once, alternating which goes first,
// OCTOHA_BENCH_ROUNDS times (default 3), and reports the proxied/direct
// time ratio per round as median (min–max). TEST_UPLOAD_SIZE sets the
// size (default 1GiB).
func BenchmarkToxiproxyOverhead(b *testing.B) {
	bin := needLocal(b, lb.HAProxy, cluster.DBPostgres, cluster.StorageSMB)
	size := int64(1 << 30)
	if s := os.Getenv("TEST_UPLOAD_SIZE"); s != "" {
		n, err := payload.ParseSize(s)
		if err != nil {
			b.Fatalf("TEST_UPLOAD_SIZE: %v", err)
		}
		size = n
	}
	rounds := 3
	if s := os.Getenv("OCTOHA_BENCH_ROUNDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			b.Fatalf("OCTOHA_BENCH_ROUNDS=%q: want a positive count", s)
		}
		rounds = n
	}
	up := func(proxied bool, network string) *local.Cluster {
		spec := testSpec(network, lb.HAProxy, cluster.DBPostgres, cluster.StorageSMB)
		spec.Toxiproxy = proxied
		c, _ := upCluster(b, bin, spec)
		return c
	}
	direct, proxied := up(false, "127.0.143"), up(true, "127.0.144")
	timeUpload := func(c *local.Cluster, seed int64) time.Duration {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		start := time.Now()
		// One package per cluster, overwritten each round: the share
		// holds one copy whatever the number of rounds.
		sum, err := traffic.Upload(ctx, traffic.UploadOptions{URL: c.URL(), APIKey: c.APIKey(), Size: size, Count: 1, Seed: seed, OverwriteMode: octopusapi.OverwriteExisting})
		took := time.Since(start)
		if err != nil || sum.Err() != nil {
			b.Fatalf("upload to %s: %v %v", c.URL(), err, sum.Err())
		}
		return took
	}
	var ratios []float64
	var d, p []time.Duration
	for b.Loop() {
		for r := range rounds {
			var td, tp time.Duration
			if r%2 == 0 {
				td, tp = timeUpload(direct, 11), timeUpload(proxied, 12)
			} else {
				tp, td = timeUpload(proxied, 12), timeUpload(direct, 11)
			}
			d, p = append(d, td), append(p, tp)
			ratios = append(ratios, tp.Seconds()/td.Seconds())
		}
	}
	slices.Sort(ratios)
	med := ratios[len(ratios)/2]
	if len(ratios)%2 == 0 {
		med = (ratios[len(ratios)/2-1] + ratios[len(ratios)/2]) / 2
	}
	b.ReportMetric(med, "ratio")
	b.Logf("%s upload through HAProxy → node → Samba, %d rounds alternating: direct %v, every link through Toxiproxy %v: ratio %.2f (%.2f–%.2f)",
		payload.FormatSize(size), rounds, d, p, med, ratios[0], ratios[len(ratios)-1])
}
