package traffic_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/octoha/octoha/harness/checker"
	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/cluster/local"
	"github.com/octoha/octoha/harness/history"
	"github.com/octoha/octoha/harness/lb"
	"github.com/octoha/octoha/harness/traffic"
	"github.com/octoha/octoha/internal/testbin"
)

// upLocalCluster brings up a local cluster of real processes (fake nodes,
// HAProxy, SQLite, a local directory) on network and tears it down with
// the test.
func upLocalCluster(tb testing.TB, network string, nodes int) *local.Cluster {
	tb.Helper()
	if testing.Short() {
		tb.Skip("-short: skipping a test that runs a whole local cluster of processes")
	}
	if err := lb.Available(lb.HAProxy); err != nil {
		tb.Skipf("HAProxy is not installed (make deps installs it): %v", err)
	}
	bin, err := testbin.Octoha()
	if err != nil {
		tb.Fatalf("build octoha: %v", err)
	}
	spec := cluster.Defaults()
	spec.Name = "traffic-" + strings.ReplaceAll(network, ".", "-")
	spec.Network = network
	spec.Nodes = nodes
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c, err := local.Up(ctx, spec, local.Options{
		RunDir: filepath.Join(tb.TempDir(), "run"), Binary: bin, NoFallback: true,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		tb.Fatalf("local.Up: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if err := c.Down(ctx); err != nil {
			tb.Errorf("cleanup: Down: %v", err)
		}
	})
	return c
}

// checkTarget describes the cluster to the checker as a client sees it.
func checkTarget(c cluster.Cluster) checker.Target {
	t := checker.Target{LBURL: c.URL(), APIKey: c.APIKey()}
	for _, n := range c.Nodes() {
		t.Nodes = append(t.Nodes, checker.Endpoint{Name: n.Name, URL: n.URL, Live: true})
	}
	return t
}

// packageListing lists the Packages store as the share holds it.
func packageListing(tb testing.TB, c cluster.Cluster) *checker.FileListing {
	tb.Helper()
	fl, ok := c.(cluster.FileLister)
	if !ok {
		tb.Fatal("the local cluster is not a FileLister")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	infos, err := fl.PackageFiles(ctx)
	if err != nil {
		tb.Fatalf("list Packages: %v", err)
	}
	l := &checker.FileListing{Source: "local provider Packages store", Files: []checker.FileInfo{}}
	for _, i := range infos {
		if !i.IsDir {
			l.Files = append(l.Files, checker.FileInfo{Name: i.Name, Size: i.Size})
		}
	}
	return l
}

// decodeResults reads a results file with vegeta's own decoder, as
// `vegeta report` would.
func decodeResults(tb testing.TB, path string) []vegeta.Result {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	dec := vegeta.DecoderFor(f)
	if dec == nil {
		tb.Fatalf("vegeta.DecoderFor does not recognise %s", path)
	}
	var out []vegeta.Result
	for {
		var r vegeta.Result
		if err := dec.Decode(&r); err != nil {
			if errors.Is(err, io.EOF) {
				return out
			}
			tb.Fatalf("decode %s after %d results: %v", path, len(out), err)
		}
		out = append(out, r)
	}
}

// TestLocalClusterUploadsAttackAndCheck: against a local cluster (three fake
// nodes behind HAProxy), four concurrent 256 MiB uploads succeed and the
// checker finds them durable with no leftovers; a fixed-rate ping attack
// spreads evenly over the three nodes; both results files decode with
// vegeta's decoder. Packages damaged on the share afterwards make the same
// checks fail, so the clean verdict is not vacuous.
func TestLocalClusterUploadsAttackAndCheck(t *testing.T) {
	c := upLocalCluster(t, "127.0.30", 3)
	dir := t.TempDir()
	histPath := filepath.Join(dir, "history.jsonl")
	rec, err := history.Create(histPath)
	if err != nil {
		t.Fatal(err)
	}
	uploadsPath, attackPath := filepath.Join(dir, "upload.bin"), filepath.Join(dir, "ping.bin")
	uf, err := os.Create(uploadsPath)
	if err != nil {
		t.Fatal(err)
	}
	af, err := os.Create(attackPath)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// 4 × 256 MiB, 4 at a time, through HAProxy.
	const size, count = 256 << 20, 4
	sum, err := traffic.Upload(ctx, traffic.UploadOptions{
		URL: c.URL(), APIKey: c.APIKey(), Size: size, Count: count, Concurrency: count,
		Seed: 20261125, Recorder: rec, Results: uf, Via: "lb", StallTimeout: 60 * time.Second,
	})
	if err != nil {
		t.Fatalf("Upload: %v", err)
	}
	served := map[string]int{}
	for _, p := range sum.Packages {
		served[p.Node]++
	}
	t.Logf("uploads: %d ok of %d in %v (%.0f MB/s in total), stored by %v", sum.OK, count, sum.Duration.Round(time.Millisecond), sum.Throughput/1e6, served)
	if err := sum.Err(); err != nil {
		t.Fatalf("uploads: %v", err)
	}

	// A fixed-rate ping attack through HAProxy.
	spread := traffic.Spread{}
	rate := vegeta.Rate{Freq: 100, Per: time.Second}
	const dur = 3 * time.Second
	m, err := traffic.Attack(ctx, traffic.AttackOptions{
		URL: c.URL(), Target: traffic.TargetPing, Rate: rate, Duration: dur,
		Recorder: rec, Results: af, Observe: spread.Add, Via: "lb",
	})
	if err != nil {
		t.Fatalf("Attack: %v", err)
	}
	t.Logf("ping attack at %s for %v: %d requests, rate %.1f/s, success %.1f%%, p99 %v; spread:\n%s", rate, dur, m.Requests, m.Rate, 100*m.Success, m.Latencies.P99, spread)
	want := uint64(rate.Freq) * uint64(dur/rate.Per)
	if m.Requests != want || m.Success != 1 {
		t.Errorf("attack: %d requests, success %.3f; want %d all ok (codes %v, errors %v)", m.Requests, m.Success, want, m.StatusCodes, m.Errors)
	}
	// HAProxy's roundrobin with equal weights is a strict rotation over the
	// servers that are UP, so each node gets N/3 ± 1 while all three stay
	// up. ±10% of N/3 leaves room for a health check that misses once on a
	// loaded 2-core machine, and still fails a balancer that favours a node
	// (e.g. 40/30/30) or leaves one out.
	share := float64(m.Requests) / 3
	for _, n := range c.Nodes() {
		if got := float64(spread[n.Name]); math.Abs(got-share) > 0.1*share {
			t.Errorf("node %s served %.0f of %d pings; want %.0f ± 10%% (spread %v)", n.Name, got, m.Requests, share, spread)
		}
	}
	if len(spread) != 3 {
		t.Errorf("pings served by %v; want exactly the three nodes", spread)
	}
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	uf.Close()
	af.Close()

	// Both results files decode with vegeta's own decoder.
	ups := decodeResults(t, uploadsPath)
	if len(ups) != sum.Attempts {
		t.Errorf("upload results file: %d results, want one per attempt (%d)", len(ups), sum.Attempts)
	}
	for _, r := range ups {
		if r.Attack != traffic.UploadAttackName || r.Code != http.StatusCreated || r.Method != http.MethodPost || r.Error != "" {
			t.Errorf("upload result: attack %q code %d method %s error %q; want %q 201 POST", r.Attack, r.Code, r.Method, r.Error, traffic.UploadAttackName)
		}
	}
	pings := decodeResults(t, attackPath)
	if uint64(len(pings)) != m.Requests {
		t.Errorf("ping results file: %d results, want %d", len(pings), m.Requests)
	}
	for i, r := range pings {
		if r.Attack != traffic.TargetPing || r.Code != http.StatusOK {
			t.Errorf("ping result %d: attack %q code %d", i, r.Attack, r.Code)
			break
		}
	}
	if fromFile := traffic.NodeSpread(pings); !equalSpread(fromFile, spread) {
		t.Errorf("spread from the results file %v differs from the live one %v", fromFile, spread)
	}

	// The history holds every op; the checker finds everything clean.
	h, err := history.Load(histPath)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(h.OpsOfKind(history.KindUpload)); n != sum.Attempts {
		t.Errorf("history: %d upload ops, want %d", n, sum.Attempts)
	}
	if n := uint64(len(h.OpsOfKind(history.KindPing))); n != m.Requests {
		t.Errorf("history: %d ping ops, want %d", n, m.Requests)
	}
	start := time.Now()
	rep, err := checker.Run(ctx, h, checkTarget(c), checker.Options{Collect: checker.CollectOptions{Files: packageListing(t, c)}})
	if err != nil {
		t.Fatalf("checker.Run: %v", err)
	}
	t.Logf("checks took %v", time.Since(start).Round(time.Millisecond))
	for _, r := range rep.Results {
		t.Logf("check %s: %s: %s %v", r.Name, r.Status, r.Summary, r.Figures)
	}
	if !rep.Passed() {
		for _, r := range rep.Failed() {
			t.Errorf("check %s failed: %s\n%s", r.Name, r.Summary, strings.Join(r.Evidence, "\n"))
		}
	}
	dura, _ := rep.Result("durability")
	left, _ := rep.Result("no-leftovers")
	if dura.Status != checker.Pass || dura.Value("verified") != count {
		t.Errorf("durability: %s, verified %v; want pass with %d packages verified", dura.Status, dura.Value("verified"), count)
	}
	if left.Status != checker.Pass || left.Value("files") != count || left.Value("rows") != count {
		t.Errorf("no-leftovers: %s, %v files, %v rows; want pass over %d of each", left.Status, left.Value("files"), left.Value("rows"), count)
	}

	// Damage two stored packages behind the cluster's back, one truncated
	// and one overwritten in place at the same size: the same checks must
	// now fail, so the clean verdict above was not vacuous.
	files := packageListing(t, c)
	root := ""
	for _, comp := range c.Components() {
		if comp.Part == "share" {
			root = filepath.Join(comp.Location, "Packages")
		}
	}
	if root == "" || len(files.Files) != count {
		t.Fatalf("no local Packages directory (%q) or not %d files (%v)", root, count, files.Files)
	}
	truncated := filepath.Join(root, filepath.FromSlash(files.Files[0].Name))
	if err := os.Truncate(truncated, size/2); err != nil {
		t.Fatal(err)
	}
	overwritten := filepath.Join(root, filepath.FromSlash(files.Files[1].Name))
	f, err := os.OpenFile(overwritten, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(make([]byte, 4096), size/2); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err = checker.Run(ctx, h, checkTarget(c), checker.Options{Collect: checker.CollectOptions{Files: packageListing(t, c)}})
	if err != nil {
		t.Fatalf("checker.Run after the damage: %v", err)
	}
	dura, _ = rep.Result("durability")
	left, _ = rep.Result("no-leftovers")
	t.Logf("after truncating %s and overwriting 4 KiB of %s:\n  durability %s: %s\n  no-leftovers %s: %s",
		files.Files[0].Name, files.Files[1].Name, dura.Status, dura.Summary, left.Status, left.Summary)
	// The truncated file is served short of its Content-Length, so a
	// client cannot read it (unreadable); the overwritten one is served
	// whole with the wrong hash (corrupt).
	if dura.Status != checker.Fail || dura.Value("corrupt") != 1 || dura.Value("unreadable") != 1 || dura.Value("verified") != count-2 {
		t.Errorf("durability after the damage: %s %v; want fail with 1 corrupt, 1 unreadable, %d verified", dura.Status, dura.Figures, count-2)
	}
	// Only the size change is visible to a listing.
	if left.Status != checker.Fail || left.Value("size-mismatches") != 1 {
		t.Errorf("no-leftovers after the damage: %s %v; want fail with one size mismatch", left.Status, left.Figures)
	}
}

func equalSpread(a, b traffic.Spread) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
