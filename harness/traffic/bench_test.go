package traffic

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/octoha/octoha/harness/history"
	"github.com/octoha/octoha/harness/lb"
	"github.com/octoha/octoha/harness/payload"
	"github.com/octoha/octoha/internal/proc"
	"github.com/octoha/octoha/internal/testbin"
	"github.com/octoha/octoha/octopusapi"
)

// The discard sink runs as a child process (this test binary re-executed),
// like a fake node would, so client and server do not share a Go runtime
// and the uploader's heap is measured alone.
const (
	sinkEnvAddr = "OCTOHA_TRAFFIC_SINK_ADDR" // listen address; set = run as the sink
	sinkEnvHash = "OCTOHA_TRAFFIC_SINK_HASH" // hash to report for a body of sinkEnvSize bytes
	sinkEnvSize = "OCTOHA_TRAFFIC_SINK_SIZE"
	sinkNode    = "Sink"
)

func TestMain(m *testing.M) {
	if addr := os.Getenv(sinkEnvAddr); addr != "" {
		if err := runSink(addr); err != nil {
			fmt.Fprintln(os.Stderr, "sink:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	code := m.Run()
	testbin.Cleanup()
	os.Exit(code)
}

// runSink serves ping (200) and uploads: it reads the multipart body,
// counts the file part's bytes and drops them. It does not hash (that is
// the point of a discard sink); it answers with the hash it was told for a
// body of the expected size, and with no hash otherwise, so a short or long
// body still fails the uploader's check.
func runSink(addr string) error {
	wantHash := os.Getenv(sinkEnvHash)
	var wantSize int64
	fmt.Sscan(os.Getenv(sinkEnvSize), &wantSize)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Printf("listening %s\n", ln.Addr())
	os.Stdout.Sync()
	pingBody := []byte(`{"Id":"` + sinkNode + `","Name":"` + sinkNode + `","IsInMaintenanceMode":false}`)
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+octopusapi.PingPath, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(octopusapi.HeaderNode, sinkNode)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(pingBody)
	})
	mux.HandleFunc("POST /api/{space}/packages/raw", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(octopusapi.HeaderNode, sinkNode)
		mr, err := r.MultipartReader()
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		part, err := mr.NextPart()
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		buf := make([]byte, 256<<10)
		n, err := io.CopyBuffer(io.Discard, part, buf)
		if err != nil {
			return // client went away
		}
		pf, err := octopusapi.ParseFileName(part.FileName())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		p := octopusapi.Package{Id: octopusapi.PackageResourceID(pf.ID, pf.Version), PackageId: pf.ID, Version: pf.Version, PackageSizeBytes: n}
		if n == wantSize {
			p.Hash = wantHash
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(p)
	})
	return http.Serve(ln, mux)
}

// lineWriter hands the first line a child prints to a channel.
type lineWriter struct {
	buf strings.Builder
	ch  chan string
}

func (l *lineWriter) Write(p []byte) (int, error) {
	if l.ch != nil {
		l.buf.Write(p)
		if s, _, ok := strings.Cut(l.buf.String(), "\n"); ok {
			l.ch <- s
			l.ch = nil
		}
	}
	return len(p), nil
}

// startSink starts the discard sink as a child process and returns its
// host:port once it accepts connections.
func startSink(tb testing.TB, hash string, size int64) string {
	tb.Helper()
	addr, _ := startSinkOn(tb, "127.0.0.1:0", hash, size)
	return addr
}

// startSinkOn is startSink listening on listen (host:port, port 0 for
// any); it also returns the sink's PID.
func startSinkOn(tb testing.TB, listen, hash string, size int64) (string, int) {
	tb.Helper()
	exe, err := os.Executable()
	if err != nil {
		tb.Fatal(err)
	}
	lw := &lineWriter{ch: make(chan string, 1)}
	first := lw.ch
	p, err := proc.Start(proc.Spec{
		Name: "discard sink", Path: exe, Args: []string{"-test.run=^$"},
		Env: append(os.Environ(), sinkEnvAddr+"="+listen, sinkEnvHash+"="+hash, fmt.Sprintf("%s=%d", sinkEnvSize, size)),
		Log: lw,
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := p.Stop(ctx, 2*time.Second); err != nil {
			tb.Errorf("stop sink: %v", err)
		}
	})
	var addr string
	select {
	case line := <-first:
		var ok bool
		addr, ok = strings.CutPrefix(line, "listening ")
		if !ok {
			tb.Fatalf("sink said %q", line)
		}
	case <-p.Done():
		tb.Fatalf("sink exited: %v", p.Err())
	case <-time.After(10 * time.Second):
		tb.Fatal("sink did not start within 10s")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return addr, p.PID()
		}
		if time.Now().After(deadline) {
			tb.Fatalf("sink at %s does not accept connections: %v", addr, err)
		}
		time.Sleep(10 * time.Millisecond) // polling a real condition with a deadline
	}
}

// startHAProxy puts a real HAProxy (harness/lb) in front of addr and waits
// until it reports the backend UP.
func startHAProxy(tb testing.TB, addr string) string {
	tb.Helper()
	if err := lb.Available(lb.HAProxy); err != nil {
		tb.Skipf("HAProxy is not available (%v); `make deps` installs it", err)
	}
	bal, err := lb.New(lb.Options{Kind: lb.HAProxy, Listen: "127.0.0.1:0", Dir: tb.TempDir(),
		Backends: []lb.Backend{{Name: sinkNode, Addr: addr}}})
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := bal.Start(ctx); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := bal.Stop(ctx); err != nil {
			tb.Errorf("stop haproxy: %v", err)
		}
	})
	for {
		st, err := bal.States(ctx)
		if err == nil && len(st) == 1 && st[0].State == lb.StateUp {
			return bal.URL()
		}
		select {
		case <-ctx.Done():
			tb.Fatalf("HAProxy backend not UP: %v %+v", err, st)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// benchSize is OCTOHA_BENCH_SIZE (default 1GiB).
func benchSize(tb testing.TB) int64 {
	s := os.Getenv("OCTOHA_BENCH_SIZE")
	if s == "" {
		return 1 << 30
	}
	n, err := payload.ParseSize(s)
	if err != nil {
		tb.Fatalf("OCTOHA_BENCH_SIZE: %v", err)
	}
	return n
}

// uploadMeasured uploads one package to url and returns its throughput
// (payload MB/s) and the peak heap in use during the upload.
func uploadMeasured(tb testing.TB, url string, size int64) (mbps float64, peakHeap uint64) {
	tb.Helper()
	return measureUpload(tb, UploadOptions{URL: url, APIKey: testKey, Size: size, Count: 1, Seed: 1})
}

// measureUpload runs one Upload of a single package and returns its
// throughput (payload MB/s) and the peak heap in use meanwhile.
func measureUpload(tb testing.TB, opts UploadOptions) (mbps float64, peakHeap uint64) {
	tb.Helper()
	runtime.GC()
	stopSampling := sampleHeapPeak(50 * time.Millisecond)
	start := time.Now()
	s, err := Upload(context.Background(), opts)
	el := time.Since(start)
	peak := stopSampling()
	if err != nil {
		tb.Fatal(err)
	}
	if s.OK != 1 {
		tb.Fatalf("upload to %s: %+v", opts.URL, s.Packages[0])
	}
	return float64(opts.Size) / el.Seconds() / 1e6, peak
}

// BenchmarkUploadSinkViaHAProxy uploads one OCTOHA_BENCH_SIZE package into a
// discard sink, directly and through a real HAProxy, and reports both rates,
// their ratio and the uploader's peak heap. A fake node's upload rate should
// be compared with the HAProxy figure (same hop count).
func BenchmarkUploadSinkViaHAProxy(b *testing.B) {
	size := benchSize(b)
	spec := PackageSpec(DefaultPackageIDPrefix, 1, 0, size)
	hash := spec.Hash()
	addr := startSink(b, hash, size)
	lbURL := startHAProxy(b, addr)
	var direct, via float64
	var peak uint64
	for b.Loop() {
		var p1, p2 uint64
		direct, p1 = uploadMeasured(b, "http://"+addr, size)
		via, p2 = uploadMeasured(b, lbURL, size)
		peak = max(peak, p1, p2)
	}
	b.ReportMetric(via, "MB/s_haproxy")
	b.ReportMetric(direct, "MB/s_direct")
	b.ReportMetric(via/direct, "haproxy/direct")
	b.ReportMetric(float64(peak)/(1<<20), "MiB_peak_heap")
	b.Logf("%s: direct %.0f MB/s, via HAProxy %.0f MB/s (ratio %.2f), uploader peak heap %.1f MiB",
		payload.FormatSize(size), direct, via, via/direct, float64(peak)/(1<<20))
	if peak > 64<<20 {
		b.Errorf("uploader peak heap %.1f MiB exceeds 64 MiB", float64(peak)/(1<<20))
	}
}

// BenchmarkAttackPing attacks a bare net/http ping handler (the sink
// process) at a fixed high rate and at the highest rate the workers reach;
// the fake node's ping benchmark is compared with these numbers.
func BenchmarkAttackPing(b *testing.B) {
	addr := startSink(b, "", 0)
	dur := 3 * time.Second
	if s := os.Getenv("OCTOHA_BENCH_DURATION"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			b.Fatalf("OCTOHA_BENCH_DURATION: %v", err)
		}
		dur = d
	}
	rateS := os.Getenv("OCTOHA_BENCH_RATE")
	if rateS == "" {
		rateS = "2000/s"
	}
	rate, err := ParseRate(rateS)
	if err != nil {
		b.Fatalf("OCTOHA_BENCH_RATE: %v", err)
	}
	for _, tc := range []struct {
		name string
		rate vegeta.Rate
		max  uint64
	}{{"rate=" + rateS, rate, 0}, {"max", vegeta.Rate{}, 32}} {
		b.Run(tc.name, func(b *testing.B) {
			var m *vegeta.Metrics
			for b.Loop() {
				var err error
				m, err = Attack(context.Background(), AttackOptions{
					URL: "http://" + addr, Target: TargetPing, Rate: tc.rate, Duration: dur, MaxWorkers: tc.max,
					Recorder: history.NewRecorder(io.Discard), Results: io.Discard,
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(m.Rate, "req/s")
			b.ReportMetric(m.Throughput, "ok/s")
			b.ReportMetric(m.Success*100, "%ok")
			b.ReportMetric(float64(m.Latencies.P99.Microseconds())/1000, "ms_p99")
			b.Logf("%s for %s: %d requests, rate %.0f/s, throughput %.0f/s, success %.1f%%, p50 %s, p99 %s",
				tc.name, dur, m.Requests, m.Rate, m.Throughput, m.Success*100, m.Latencies.P50, m.Latencies.P99)
		})
	}
}

// sampleHeapPeak samples the heap in use every interval until the returned
// function is called, which stops sampling and returns the peak seen.
func sampleHeapPeak(every time.Duration) func() uint64 {
	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tk := time.NewTicker(every)
		defer tk.Stop()
		for {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-tk.C:
			}
		}
	})
	return func() uint64 {
		close(stop)
		wg.Wait()
		return peak.Load()
	}
}
