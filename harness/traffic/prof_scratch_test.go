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

func BenchmarkProfAttack(b *testing.B) {
	addr := startSink(b, "", 0)
	dir := b.TempDir()
	rec, _, err := history.Join(filepath.Join(dir, "history.jsonl"), "attack", history.Meta{}, history.Command{})
	if err != nil {
		b.Fatal(err)
	}
	res, _ := os.Create(filepath.Join(dir, "r.gob"))
	for b.Loop() {
		m, err := Attack(context.Background(), AttackOptions{URL: "http://" + addr, Target: TargetPing, Rate: vegeta.Rate{}, Workers: 16, MaxWorkers: 16, Duration: 3 * time.Second, Recorder: rec, Results: res})
		if err != nil {
			b.Fatal(err)
		}
		b.Logf("%d req, %.0f/s", m.Requests, m.Throughput)
	}
}

func BenchmarkProfUpload(b *testing.B) {
	size := benchSize(b)
	spec := PackageSpec(DefaultPackageIDPrefix, 1, 0, size)
	addr := startSink(b, spec.Hash(), size)
	dir := b.TempDir()
	rec, _, _ := history.Join(filepath.Join(dir, "history.jsonl"), "upload", history.Meta{}, history.Command{})
	res, _ := os.Create(filepath.Join(dir, "r.gob"))
	for b.Loop() {
		s, err := Upload(context.Background(), UploadOptions{URL: "http://" + addr, APIKey: testKey, Size: size, Count: 1, Seed: 1, Recorder: rec, Results: res})
		if err != nil || s.OK != 1 {
			b.Fatal(err, s)
		}
	}
}
