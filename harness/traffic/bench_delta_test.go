package traffic

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/cluster/local"
	"github.com/octoha/octoha/harness/lb"
	"github.com/octoha/octoha/harness/payload"
	"github.com/octoha/octoha/internal/testbin"
	"github.com/octoha/octoha/octopusapi"
)

// rssBytes is a process's resident set size, from /proc/<pid>/status.
func rssBytes(tb testing.TB, pid int) int64 {
	tb.Helper()
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		tb.Fatalf("RSS of pid %d: %v", pid, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				tb.Fatalf("RSS of pid %d: %q", pid, rest)
			}
			return kb << 10
		}
	}
	tb.Fatalf("RSS of pid %d: no VmRSS line", pid)
	return 0
}

// sampleRSSPeak samples a process's RSS every 10 ms until stopped and
// returns the peak.
func sampleRSSPeak(tb testing.TB, pid int) (stop func() int64) {
	var (
		mu   sync.Mutex
		peak = rssBytes(tb, pid)
		done = make(chan struct{})
		wg   sync.WaitGroup
	)
	wg.Go(func() {
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
				if err != nil {
					continue
				}
				for _, line := range strings.Split(string(raw), "\n") {
					if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
						kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
						mu.Lock()
						peak = max(peak, kb<<10)
						mu.Unlock()
					}
				}
			}
		}
	})
	return func() int64 {
		close(done)
		wg.Wait()
		return peak
	}
}

// BenchmarkDeltaUploadViaHAProxy: one node process behind HAProxy (its
// share a local directory, or Samba with OCTOHA_BENCH_STORAGE=smb). A
// package of OCTOHA_BENCH_SIZE (default 1 GiB) goes in full; its next
// version, with DefaultChange (5%) of its 64 KiB blocks rewritten, goes
// once in full (under another package ID, for comparison) and once as a
// delta. Reported: time and bytes sent, full vs delta; the node's CPU
// seconds to compute the signature and to patch; the node's memory growth
// (RSS over its level before the signature) while it computes the
// signature and patches, which must stay within 64 MiB.
func BenchmarkDeltaUploadViaHAProxy(b *testing.B) {
	size := benchSize(b)
	if err := lb.Available(lb.HAProxy); err != nil {
		b.Skipf("HAProxy is not installed (make deps installs it): %v", err)
	}
	bin, err := testbin.Octoha()
	if err != nil {
		b.Fatalf("build octoha: %v", err)
	}
	spec := cluster.Defaults()
	spec.Name, spec.Network, spec.Nodes = "bench-delta", "127.0.131", 1
	if os.Getenv("OCTOHA_BENCH_STORAGE") == "smb" {
		spec.Storage.Kind = cluster.StorageSMB
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	c, err := local.Up(ctx, spec, local.Options{
		RunDir: filepath.Join(b.TempDir(), "run"), Binary: bin, NoFallback: true,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	cancel()
	if err != nil {
		b.Fatalf("local.Up: %v", err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if err := c.Down(ctx); err != nil {
			b.Errorf("cleanup: Down: %v", err)
		}
	})
	nodePID := 0
	for _, comp := range c.Components() {
		if comp.Part == "node "+c.Nodes()[0].Name {
			nodePID = comp.PID
		}
	}
	if nodePID == 0 {
		b.Fatal("no node PID")
	}
	round := 0
	for b.Loop() {
		round++
		seed := int64(round)
		opts := func(prefix string, first int) UploadOptions {
			return UploadOptions{URL: c.URL(), APIKey: c.APIKey(), Size: size, Count: 1, First: first, Seed: seed,
				PackageIDPrefix: prefix, Delta: true, Change: DefaultChange}
		}
		upload := func(o UploadOptions) (PackageResult, time.Duration, time.Duration) {
			cpu0, t0 := cpuTime(b, nodePID), time.Now()
			s, err := Upload(context.Background(), o)
			wall, cpu := time.Since(t0), cpuTime(b, nodePID)-cpu0
			if err != nil || s.OK != 1 {
				b.Fatalf("upload %s: %v %+v", o.PackageIDPrefix, err, s)
			}
			return s.Packages[0], wall, cpu
		}
		// The base, and the next version in full under another ID (no
		// earlier version there, so it goes in full).
		upload(opts("Bench.Delta", 0))
		full, fullWall, fullCPU := upload(opts("Bench.Full", 1))
		if full.DeltaBytes != 0 {
			b.Fatalf("the comparison upload went as a delta")
		}

		// The signature, computed by the node (then cached).
		next := DeltaPackageSpec("Bench.Delta", seed, 1, size, DefaultChange)
		base := rssBytes(b, nodePID)
		stopRSS := sampleRSSPeak(b, nodePID)
		cpu0, t0 := cpuTime(b, nodePID), time.Now()
		sigBytes := getSignature(b, c.URL(), c.APIKey(), next)
		sigWall, sigCPU := time.Since(t0), cpuTime(b, nodePID)-cpu0
		t1 := time.Now()
		getSignature(b, c.URL(), c.APIKey(), next)
		cachedWall := time.Since(t1)

		// The delta: signature (cached) → delta built here → posted and
		// patched on the node.
		delta, deltaWall, patchCPU := upload(opts("Bench.Delta", 1))
		peak := stopRSS()
		if delta.DeltaBytes == 0 || delta.Hash != next.Hash() {
			b.Fatalf("delta upload: %+v", delta)
		}
		growth := peak - base
		gib := float64(size) / (1 << 30)
		b.ReportMetric(float64(full.BytesSent)/float64(delta.BytesSent), "bytes_full/delta")
		b.ReportMetric(fullWall.Seconds()/deltaWall.Seconds(), "time_full/delta")
		b.ReportMetric(sigCPU.Seconds(), "node_cpu_s_signature")
		b.ReportMetric(patchCPU.Seconds(), "node_cpu_s_patch")
		b.ReportMetric(float64(growth)/(1<<20), "node_MiB_growth")
		b.Logf("%s package, %.0f%% of 64 KiB blocks changed, storage %s, through HAProxy:", payload.FormatSize(size), 100*DefaultChange, spec.Storage.Kind)
		b.Logf("  full upload:  %s sent in %s (node CPU %.2fs)", payload.FormatSize(full.BytesSent), fullWall.Round(time.Millisecond), fullCPU.Seconds())
		b.Logf("  delta upload: %s sent (delta %s = %.2f%% of the package) in %s, of which building the delta here %s; node CPU %.2fs (patch, and serving the cached signature)",
			payload.FormatSize(delta.BytesSent), payload.FormatSize(delta.DeltaBytes), 100*float64(delta.DeltaBytes)/float64(size),
			deltaWall.Round(time.Millisecond), delta.DeltaBuild.Round(time.Millisecond), patchCPU.Seconds())
		b.Logf("  signature: %s base64 in %s, node CPU %.2fs (%.2f s/GiB); cached: %s",
			payload.FormatSize(sigBytes), sigWall.Round(time.Millisecond), sigCPU.Seconds(), sigCPU.Seconds()/gib, cachedWall.Round(time.Millisecond))
		b.Logf("  ratios full/delta: bytes %.1f×, time %.2f× (time full/(signature+delta) %.2f×)",
			float64(full.BytesSent)/float64(delta.BytesSent), fullWall.Seconds()/deltaWall.Seconds(), fullWall.Seconds()/(sigWall+deltaWall).Seconds())
		// What the bytes mean on a slow link to the cluster (computed,
		// not measured): the delta's fixed costs against the full body.
		const link = 100e6 / 8 // 100 Mbit/s in bytes per second
		b.Logf("  on a 100 Mbit/s link (computed from the bytes and the measured signature and build times): full %.1fs, delta %.1fs",
			float64(full.BytesSent)/link, (sigWall+delta.DeltaBuild).Seconds()+float64(delta.BytesSent)/link)
		b.Logf("  node RSS: %.1f MiB before the signature, peak %.1f MiB during signature and patch: growth %.1f MiB (limit 64 MiB)",
			float64(base)/(1<<20), float64(peak)/(1<<20), float64(growth)/(1<<20))
		if growth > 64<<20 {
			b.Errorf("node memory grew by %.1f MiB computing a signature and patching a %s package, over the 64 MiB limit", float64(growth)/(1<<20), payload.FormatSize(size))
		}
	}
}

// getSignature asks for the delta signature of spec's version and returns
// the answer's size.
func getSignature(tb testing.TB, base, key string, spec payload.Spec) int64 {
	tb.Helper()
	req, err := http.NewRequest(http.MethodGet, base+octopusapi.DeltaSignaturePath(octopusapi.DefaultSpaceID, spec.PackageID, spec.Version), nil)
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set(octopusapi.HeaderAPIKey, key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		tb.Fatalf("signature: %d (%v)", resp.StatusCode, err)
	}
	return n
}
