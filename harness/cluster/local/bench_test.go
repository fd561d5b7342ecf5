package local_test

import (
	"context"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/cluster/local"
	"github.com/octoha/octoha/harness/lb"
)

// benchRounds is how many times each cluster is brought up per benchmark
// iteration; the median is reported.
const benchRounds = 5

// BenchmarkUpToReady measures local.Up from call to ready (every node
// answers 200 directly, HAProxy reports all UP after a passed check, the
// LB answers 200) for 3 nodes + HAProxy on SQLite + a local directory
// (target ≤ 2 s) and on PostgreSQL + Samba (target ≤ 10 s). Each
// iteration brings the cluster up and down benchRounds times and reports
// the median, min and max seconds to ready, and the median Down time.
func BenchmarkUpToReady(b *testing.B) {
	for _, tc := range []struct {
		name, network, db, storage string
		target                     time.Duration
	}{
		{"sqlite-dir", "127.0.50", cluster.DBSQLite, cluster.StorageLocal, 2 * time.Second},
		{"postgres-samba", "127.0.51", cluster.DBPostgres, cluster.StorageSMB, 10 * time.Second},
	} {
		b.Run(tc.name, func(b *testing.B) {
			bin := needLocal(b, lb.HAProxy, tc.db, tc.storage)
			spec := testSpec(tc.network, lb.HAProxy, tc.db, tc.storage)
			var ups, downs []time.Duration
			for b.Loop() {
				for r := range benchRounds {
					up, down := upDownOnce(b, bin, spec, filepath.Join(b.TempDir(), "run"+strconv.Itoa(r)))
					ups = append(ups, up)
					downs = append(downs, down)
				}
			}
			slices.Sort(ups)
			slices.Sort(downs)
			med := ups[len(ups)/2]
			b.ReportMetric(med.Seconds(), "s_to_ready_median")
			b.ReportMetric(ups[0].Seconds(), "s_to_ready_min")
			b.ReportMetric(ups[len(ups)-1].Seconds(), "s_to_ready_max")
			b.ReportMetric(downs[len(downs)/2].Seconds(), "s_down_median")
			b.Logf("%s: start to ready over %d runs: %v (median %v, target %v); down: %v", tc.name, len(ups), ups, med, tc.target, downs)
			if med > tc.target {
				b.Errorf("median start to ready %v exceeds the target %v", med, tc.target)
			}
		})
	}
}

// upDownOnce brings a cluster up and down and times both.
func upDownOnce(b *testing.B, bin string, spec cluster.Spec, dir string) (up, down time.Duration) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	start := time.Now()
	c, err := local.Up(ctx, spec, local.Options{RunDir: dir, Binary: bin, Logger: testLogger(b), NoFallback: true})
	up = time.Since(start)
	if err != nil {
		b.Fatalf("local.Up: %v", err)
	}
	pids := c.PIDs()
	start = time.Now()
	if err := c.Down(ctx); err != nil {
		b.Fatalf("Down: %v", err)
	}
	down = time.Since(start)
	assertAllGone(b, pids)
	return up, down
}
