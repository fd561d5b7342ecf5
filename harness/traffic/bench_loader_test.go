package traffic

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/octoha/octoha/harness/history"
)

// The loader alone, in this process, against the discard sink (a child
// process), recording into a shared history and a results file as the
// CLI does: for profiles of the loader's own cost, e.g.
//
//	isolated go test -run '^$' -bench Loader -benchtime 1x -cpuprofile cpu.out ./harness/traffic
//	go tool pprof -top -cum cpu.out

func loaderArtefacts(b *testing.B, command string) (*history.Recorder, *os.File) {
	b.Helper()
	dir := b.TempDir()
	rec, _, err := history.Join(filepath.Join(dir, "history.jsonl"), command, history.Meta{}, history.Command{})
	if err != nil {
		b.Fatal(err)
	}
	res, err := os.Create(filepath.Join(dir, command+".results.gob"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { rec.Close(); res.Close() })
	return rec, res
}

// BenchmarkLoaderAttack: ping at rate 0 with 16 workers for
// OCTOHA_BENCH_DURATION (default 3s).
func BenchmarkLoaderAttack(b *testing.B) {
	addr := startSink(b, "", 0)
	rec, res := loaderArtefacts(b, "attack")
	dur := benchDuration(b, 3*time.Second)
	for b.Loop() {
		m, err := Attack(context.Background(), AttackOptions{URL: "http://" + addr, Target: TargetPing, Rate: vegeta.Rate{},
			Workers: 16, MaxWorkers: 16, Duration: dur, Recorder: rec, Results: res})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(m.Throughput, "ok/s")
	}
}

// BenchmarkLoaderUpload: one OCTOHA_BENCH_SIZE package (default 1 GiB)
// per iteration, straight into the sink. Its hash is usually in the hash
// cache by then; OCTOHA_HASH_CACHE=off profiles a first upload (SHA-1 on
// the send path).
func BenchmarkLoaderUpload(b *testing.B) {
	size := benchSize(b)
	spec := PackageSpec(DefaultPackageIDPrefix, 1, 0, size)
	addr := startSink(b, spec.Hash(), size)
	rec, res := loaderArtefacts(b, "upload")
	for b.Loop() {
		s, err := Upload(context.Background(), UploadOptions{URL: "http://" + addr, APIKey: testKey, Size: size, Count: 1, Seed: 1, Recorder: rec, Results: res})
		if err != nil || s.OK != 1 {
			b.Fatalf("upload: %v %+v", err, s)
		}
		b.ReportMetric(s.Loader.CPU.Seconds(), "cpu_s")
	}
}
