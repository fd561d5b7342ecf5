package traffic

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/cluster/local"
	"github.com/octoha/octoha/harness/history"
	"github.com/octoha/octoha/harness/lb"
	"github.com/octoha/octoha/harness/payload"
	"github.com/octoha/octoha/internal/testbin"
	"github.com/octoha/octoha/octopusapi"
)

// benchCluster brings up a one-node local cluster (a fake node process on
// SQLite and a local directory, behind HAProxy) on network.
func benchCluster(b *testing.B, network string) *local.Cluster {
	b.Helper()
	if err := lb.Available(lb.HAProxy); err != nil {
		b.Skipf("HAProxy is not installed (make deps installs it): %v", err)
	}
	bin, err := testbin.Octoha()
	if err != nil {
		b.Fatalf("build octoha: %v", err)
	}
	spec := cluster.Defaults()
	spec.Name = "bench-" + strings.ReplaceAll(network, ".", "-")
	spec.Network = network
	spec.Nodes = 1
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := local.Up(ctx, spec, local.Options{
		RunDir: filepath.Join(b.TempDir(), "run"), Binary: bin, NoFallback: true,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
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
	return c
}

// sinkBehindSameHAProxy starts a HAProxy in front of the sink from exactly
// the options the local provider gives the cluster's HAProxy, and checks
// that the two generated configs differ only in addresses and paths.
func sinkBehindSameHAProxy(b *testing.B, c *local.Cluster, listen, sinkAddr string) (url string, pid int) {
	b.Helper()
	ls := c.Spec().LB
	dir := b.TempDir()
	node := c.Nodes()[0].Name
	bal, err := lb.New(lb.Options{
		Kind: lb.HAProxy, Listen: listen, Dir: dir,
		Backends: []lb.Backend{{Name: node, Addr: sinkAddr}},
		Interval: ls.Interval, Fall: ls.Fall, Rise: ls.Rise, Sticky: ls.Sticky,
		Drain: lb.DrainMode(ls.Drain), ShutdownSessions: ls.ShutdownSessions, ServerTimeout: ls.ServerTimeout,
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := bal.Start(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := bal.Stop(ctx); err != nil {
			b.Errorf("stop haproxy: %v", err)
		}
	})
	norm := func(path, lbAddr, backend, dir string) string {
		raw, err := os.ReadFile(path)
		if err != nil {
			b.Fatal(err)
		}
		s := strings.ReplaceAll(string(raw), dir, "DIR")
		s = strings.ReplaceAll(s, lbAddr, "LISTEN")
		return strings.ReplaceAll(s, backend, "BACKEND")
	}
	clusterCfg := norm(filepath.Join(c.RunDir(), "lb", "haproxy.cfg"), c.Spec().LBAddr(), c.Spec().NodeAddr(0), filepath.Join(c.RunDir(), "lb"))
	// The cluster's HAProxy also forwards Tentacles' polling port (TCP
	// sections after the HTTP ones); uploads never touch it.
	if i := strings.Index(clusterCfg, "\ndefaults\n    mode tcp\n"); i >= 0 {
		clusterCfg = clusterCfg[:i+1]
	}
	sinkCfg := norm(filepath.Join(dir, "haproxy.cfg"), listen, sinkAddr, dir)
	if strings.TrimSpace(clusterCfg) != strings.TrimSpace(sinkCfg) {
		b.Fatalf("the sink's HAProxy config differs from the cluster's beyond addresses:\n--- cluster\n%s\n--- sink\n%s", clusterCfg, sinkCfg)
	}
	for {
		st, err := bal.States(ctx)
		if err == nil && len(st) == 1 && st[0].State == lb.StateUp && !strings.HasPrefix(st[0].Check, "INI") {
			return bal.URL(), bal.PID()
		}
		select {
		case <-ctx.Done():
			b.Fatalf("HAProxy in front of the sink not UP: %v %+v", err, st)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// BenchmarkUploadNodeVsSinkViaHAProxy uploads one OCTOHA_BENCH_SIZE
// (default 1 GiB) package through HAProxy into a fake node storing into a
// local directory, and through the same HAProxy configuration into the
// discard sink, and directly into the sink, in one run. The two HAProxy
// uploads alternate A-B-B-A so a drift in the machine's load cancels out.
// It reports each rate, node/sink (target ≥ 0.9: the node should cost
// almost nothing beyond the load balancer), both against direct (reported
// only: one extra loopback hop costs about half on 2 cores), the
// uploader's peak heap (target ≤ 64 MiB), and the CPU time each process
// spent per GiB, which says where a gap comes from.
func BenchmarkUploadNodeVsSinkViaHAProxy(b *testing.B) {
	size := benchSize(b)
	c := benchCluster(b, "127.0.52")
	sinkSpec := PackageSpec(DefaultPackageIDPrefix, 1, 0, size)
	sinkAddr, sinkPID := startSinkOn(b, "127.0.52.21:0", sinkSpec.Hash(), size)
	sinkLB, sinkLBPID := sinkBehindSameHAProxy(b, c, "127.0.52.20:"+strconv.Itoa(c.Spec().Port), sinkAddr)
	nodePID := 0
	for _, comp := range c.Components() {
		if comp.Part == "node "+c.Nodes()[0].Name {
			nodePID = comp.PID
		}
	}
	toSink := func(url string) UploadOptions {
		return UploadOptions{URL: url, APIKey: testKey, Size: size, Count: 1, Seed: 1}
	}
	// The node keeps what it stores: overwrite one package so the disk
	// holds one copy whatever the number of rounds.
	toNode := UploadOptions{URL: c.URL(), APIKey: c.APIKey(), Size: size, Count: 1, Seed: 2, OverwriteMode: octopusapi.OverwriteExisting}
	type path struct {
		name string
		opts UploadOptions
		pids map[string]int // process role -> PID, for CPU accounting
		mbps []float64
		cpu  map[string]time.Duration
	}
	self := os.Getpid()
	node := &path{name: "node via HAProxy", opts: toNode, pids: map[string]int{"uploader": self, "haproxy": c.Balancer().PID(), "server": nodePID}}
	sink := &path{name: "sink via HAProxy", opts: toSink(sinkLB), pids: map[string]int{"uploader": self, "haproxy": sinkLBPID, "server": sinkPID}}
	direct := &path{name: "sink direct", opts: toSink("http://" + sinkAddr), pids: map[string]int{"uploader": self, "server": sinkPID}}
	var peak uint64
	measure := func(p *path) {
		before := map[string]time.Duration{}
		for role, pid := range p.pids {
			before[role] = cpuTime(b, pid)
		}
		mbps, pk := measureUpload(b, p.opts)
		if p.cpu == nil {
			p.cpu = map[string]time.Duration{}
		}
		for role, pid := range p.pids {
			p.cpu[role] += cpuTime(b, pid) - before[role]
		}
		p.mbps = append(p.mbps, mbps)
		peak = max(peak, pk)
	}
	for b.Loop() {
		measure(sink)
		measure(node)
		measure(node)
		measure(sink)
		measure(direct)
	}
	nodeMBs, sinkMBs, directMBs := mean(node.mbps), mean(sink.mbps), mean(direct.mbps)
	ratio := nodeMBs / sinkMBs
	b.ReportMetric(nodeMBs, "MB/s_node_haproxy")
	b.ReportMetric(sinkMBs, "MB/s_sink_haproxy")
	b.ReportMetric(directMBs, "MB/s_sink_direct")
	b.ReportMetric(ratio, "node/sink")
	b.ReportMetric(nodeMBs/directMBs, "node_haproxy/direct")
	b.ReportMetric(sinkMBs/directMBs, "sink_haproxy/direct")
	b.ReportMetric(float64(peak)/(1<<20), "MiB_peak_heap")
	gib := float64(size) / (1 << 30)
	perGiB := func(p *path, role string) float64 {
		return p.cpu[role].Seconds() / (gib * float64(len(p.mbps)))
	}
	b.ReportMetric(perGiB(node, "server"), "cpu_s/GiB_node")
	b.ReportMetric(perGiB(sink, "server"), "cpu_s/GiB_sink")
	b.Logf("%s: node via HAProxy %s MB/s, sink via HAProxy %s MB/s, sink direct %s MB/s; node/sink %.2f (target ≥ 0.9), node/direct %.2f, sink-via-HAProxy/direct %.2f; uploader peak heap %.1f MiB",
		payload.FormatSize(size), rates(node.mbps), rates(sink.mbps), rates(direct.mbps), ratio, nodeMBs/directMBs, sinkMBs/directMBs, float64(peak)/(1<<20))
	for _, p := range []*path{node, sink, direct} {
		wall := float64(size) / 1e6 / mean(p.mbps) // seconds per upload
		var total float64
		for _, role := range []string{"uploader", "haproxy", "server"} {
			if _, ok := p.pids[role]; ok {
				total += perGiB(p, role)
			}
		}
		b.Logf("  CPU s/GiB, %s: uploader %.2f, haproxy %.2f, server %.2f; total %.2f = %.0f%% of %d cores over %.2fs/GiB",
			p.name, perGiB(p, "uploader"), perGiB(p, "haproxy"), perGiB(p, "server"), total, 100*total*gib/wall/float64(runtime.NumCPU()), runtime.NumCPU(), wall/gib)
	}
	if ratio < 0.9 {
		b.Logf("MISSED TARGET: node/sink %.2f < 0.9", ratio)
	}
	if peak > 64<<20 {
		b.Errorf("uploader peak heap %.1f MiB exceeds 64 MiB", float64(peak)/(1<<20))
	}
}

// cpuTime is a process's user + system CPU time so far, all threads, from
// /proc/<pid>/stat (clock ticks of 1/100 s, the Linux USER_HZ).
func cpuTime(tb testing.TB, pid int) time.Duration {
	tb.Helper()
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		tb.Fatalf("CPU time of pid %d: %v", pid, err)
	}
	s := string(raw)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	// After the command: state(3) ppid pgrp session tty tpgid flags minflt
	// cminflt majflt cmajflt utime(14) stime(15), i.e. f[11] and f[12].
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		tb.Fatalf("CPU time of pid %d: cannot parse %q", pid, s)
	}
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// BenchmarkAttackPingNodeVsBare attacks the fake node's ping endpoint and a
// bare net/http handler answering 200 (the sink process, also a separate
// Go process), both directly and at the highest rate MaxWorkers reach, for
// OCTOHA_BENCH_DURATION (default 3s) each, alternating A-B-B-A. It reports
// both achieved rates and node/bare (target ≥ 0.7).
func BenchmarkAttackPingNodeVsBare(b *testing.B) {
	c := benchCluster(b, "127.0.53")
	bareAddr, _ := startSinkOn(b, "127.0.53.21:0", "", 0)
	bare := "http://" + bareAddr
	node := c.Nodes()[0].URL
	dur := 3 * time.Second
	if s := os.Getenv("OCTOHA_BENCH_DURATION"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			b.Fatalf("OCTOHA_BENCH_DURATION: %v", err)
		}
		dur = d
	}
	attack := func(url string) *vegeta.Metrics {
		m, err := Attack(context.Background(), AttackOptions{
			URL: url, Target: TargetPing, Rate: vegeta.Rate{}, MaxWorkers: 32, Duration: dur,
			Recorder: history.NewRecorder(io.Discard), Results: io.Discard,
		})
		if err != nil {
			b.Fatal(err)
		}
		if m.Success < 1 {
			b.Fatalf("ping attack on %s: success %.3f, codes %v, errors %v", url, m.Success, m.StatusCodes, m.Errors)
		}
		return m
	}
	var nodeRates, bareRates []float64
	var nodeP99, bareP99 time.Duration
	for b.Loop() {
		for _, target := range []string{bare, node, node, bare} {
			m := attack(target)
			if target == node {
				nodeRates = append(nodeRates, m.Throughput)
				nodeP99 = max(nodeP99, m.Latencies.P99)
			} else {
				bareRates = append(bareRates, m.Throughput)
				bareP99 = max(bareP99, m.Latencies.P99)
			}
		}
	}
	nodeRate, bareRate := mean(nodeRates), mean(bareRates)
	ratio := nodeRate / bareRate
	b.ReportMetric(nodeRate, "req/s_node")
	b.ReportMetric(bareRate, "req/s_bare")
	b.ReportMetric(ratio, "node/bare")
	b.Logf("ping at max rate (32 workers) for %v each: node %s req/s (p99 %v), bare handler %s req/s (p99 %v); node/bare %.2f (target ≥ 0.7)",
		dur, rates(nodeRates), nodeP99, rates(bareRates), bareP99, ratio)
	if ratio < 0.7 {
		b.Logf("MISSED TARGET: node/bare %.2f < 0.7", ratio)
	}
}

func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	t := 0.0
	for _, x := range xs {
		t += x
	}
	return t / float64(len(xs))
}

// rates renders each measurement, e.g. "512/498".
func rates(xs []float64) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.FormatFloat(x, 'f', 0, 64)
	}
	return strings.Join(s, "/")
}
