package loaders

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/octoha/octoha/harness/history"
	"github.com/octoha/octoha/harness/traffic"
)

func attackJob(url string, freq int, d time.Duration) Job {
	return Job{Kind: KindAttack, Attack: &AttackJob{URL: url, Target: traffic.TargetPing, Freq: freq, Per: time.Second, Duration: d}}
}

func TestRunAttackMergesEveryWorkersRecords(t *testing.T) {
	url := fakeNode(t)
	rf := newRunFiles(t)
	eng := &inprocEngine{t: t, noIndex: true}
	res, err := Run(context.Background(), Options{Engine: eng, Count: 3, Job: attackJob(url, 60, 2*time.Second),
		Recorder: rf.rec, Results: rf.results})
	if err != nil {
		t.Fatal(err)
	}
	h, rs := rf.close(t)
	ops := h.OpsOfKind(history.KindPing)
	if len(ops) != res.Ops || len(rs) != res.Results || int(res.Metrics.Requests) != len(rs) {
		t.Fatalf("history has %d ops, results file %d; the result says %d ops, %d results, %d requests",
			len(ops), len(rs), res.Ops, res.Results, res.Metrics.Requests)
	}
	if len(rs) < 100 || len(rs) > 125 {
		t.Fatalf("%d requests at 60/s for 2s", len(rs))
	}
	sumOps, sumReq := 0, uint64(0)
	clients := map[string]int{}
	for _, o := range ops {
		clients[o.Client]++
		if o.Command != "attack-1" || o.Outcome != history.OK {
			t.Fatalf("op %+v: not the coordinator's command, or not ok", o)
		}
	}
	for _, w := range res.Workers {
		sumOps += w.Ops
		sumReq += w.Metrics.Requests
		if w.Died != "" || w.Loader == nil || w.Offset.Samples == 0 || w.EndOffset.Samples == 0 {
			t.Fatalf("worker %d: %+v", w.Index, w)
		}
		if n := clients[clientName(w.Index, traffic.TargetPing)]; n != w.Ops {
			t.Fatalf("worker %d: %d ops under its client name, %d reported", w.Index, n, w.Ops)
		}
		// 60/s over 3: 20/s each for 2s.
		if w.Metrics.Requests < 35 || w.Metrics.Requests > 45 {
			t.Fatalf("worker %d sent %d requests, want about 40", w.Index, w.Metrics.Requests)
		}
	}
	if sumOps != len(ops) || sumReq != res.Metrics.Requests {
		t.Fatalf("per-worker ops %d and requests %d do not add up to %d and %d", sumOps, sumReq, len(ops), res.Metrics.Requests)
	}
	seqs := map[uint64]bool{}
	for _, o := range ops {
		if seqs[o.Seq] {
			t.Fatalf("sequence number %d twice", o.Seq)
		}
		seqs[o.Seq] = true
	}
	var b bytes.Buffer
	res.WriteSummary(&b)
	for _, want := range []string{"LOADER", "\nall ", "3 loaders on inproc", "merged "} {
		if !strings.Contains(b.String(), want) {
			t.Fatalf("summary lacks %q:\n%s", want, b.String())
		}
	}
	if eng.started[0].removed.Load() != 1 {
		t.Fatal("the workers were not removed")
	}
}

func TestRunCorrectsTimestampsByTheClockOffset(t *testing.T) {
	url := fakeNode(t)
	rf := newRunFiles(t)
	skew := 2 * time.Hour
	eng := &inprocEngine{t: t}
	before := time.Now()
	res, err := runWith(context.Background(), Options{Engine: eng, Count: 2, Job: attackJob(url, 20, time.Second),
		Recorder: rf.rec, Results: rf.results}, func(c *coordinator) {
		c.now = func() time.Time { return time.Now().Add(skew) }
	})
	if err != nil {
		t.Fatal(err)
	}
	after := time.Now()
	h, rs := rf.close(t)
	for _, w := range res.Workers {
		if d := w.Offset.Offset - skew; d.Abs() > w.Offset.Uncertainty+time.Millisecond {
			t.Fatalf("worker %d measured %s, want %s", w.Index, w.Offset, skew)
		}
	}
	lo, hi := before.Add(skew-time.Second), after.Add(skew+time.Second)
	for _, o := range h.OpsOfKind(history.KindPing) {
		if o.Start.Before(lo) || o.End.After(hi) {
			t.Fatalf("op at %s..%s is not on the coordinator's clock (%s..%s)", o.Start, o.End, lo, hi)
		}
	}
	for _, r := range rs {
		if r.Timestamp.Before(lo) || r.Timestamp.After(hi) {
			t.Fatalf("result at %s is not on the coordinator's clock", r.Timestamp)
		}
	}
}

func uploadJob(url string, count int, rate int64) Job {
	return Job{Kind: KindUpload, Upload: &UploadJob{URL: url, APIKey: testKey, Size: 256 << 10, Count: count,
		Concurrency: count, Seed: 7, Retries: 1, Rate: rate}}
}

func TestRunUploadSplitsPackages(t *testing.T) {
	url := fakeNode(t)
	rf := newRunFiles(t)
	res, err := Run(context.Background(), Options{Engine: &inprocEngine{t: t}, Count: 3, Job: uploadJob(url, 7, 0),
		Recorder: rf.rec, Results: rf.results, RunTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	h, rs := rf.close(t)
	u := res.Upload
	if u.OK != 7 || len(u.Packages) != 7 || len(rs) != 7 {
		t.Fatalf("%d of %d packages ok, %d results", u.OK, len(u.Packages), len(rs))
	}
	versions := map[string]bool{}
	for _, o := range h.OpsOfKind(history.KindUpload) {
		if versions[o.Version] || o.Outcome != history.OK {
			t.Fatalf("op %s %s: duplicate version or not ok", o.Version, o.Outcome)
		}
		versions[o.Version] = true
	}
	sum := 0
	for _, w := range res.Workers {
		sum += w.OK
	}
	if sum != 7 || len(versions) != 7 {
		t.Fatalf("per-worker ok %d, versions %d", sum, len(versions))
	}
}

func TestKilledWorkersPackagesStayUnknown(t *testing.T) {
	url := fakeNode(t)
	rf := newRunFiles(t)
	// 64 KiB/s: each 256 KiB package takes 4s, so the kill at 1s lands
	// mid-upload.
	res, err := Run(context.Background(), Options{Engine: &inprocEngine{t: t}, Count: 3, Job: uploadJob(url, 6, 64<<10),
		Recorder: rf.rec, Results: rf.results, RunTimeout: time.Minute, Kill: &KillPlan{Index: 1, After: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	h, _ := rf.close(t)
	dead := res.Dead()
	if len(dead) != 1 || dead[0].Index != 1 || !strings.Contains(dead[0].Died, "killed") {
		t.Fatalf("dead: %+v", dead)
	}
	if res.Synthesized != 2 || dead[0].Unknown != 2 || res.Upload.Unknown != 2 || res.Upload.OK != 4 {
		t.Fatalf("synthesized %d, worker unknown %d, merged %+v", res.Synthesized, dead[0].Unknown, res.Upload)
	}
	if len(h.Faults) != 1 || h.Faults[0].Kind != FaultLoaderKill || h.Faults[0].Target != "loader1" || h.Faults[0].Start.IsZero() {
		t.Fatalf("the kill as a fault: %+v", h.Faults)
	}
	best := map[string]history.Outcome{}
	for _, o := range h.OpsOfKind(history.KindUpload) {
		if best[o.Version] != history.OK {
			best[o.Version] = o.Outcome
		}
	}
	if len(best) != 6 {
		t.Fatalf("%d of 6 packages in the history", len(best))
	}
	for v, oc := range best {
		if oc == history.Failed {
			t.Fatalf("package %s recorded failed: the killed worker's packages must stay unknown", v)
		}
	}
	var b bytes.Buffer
	res.WriteSummary(&b)
	if !strings.Contains(b.String(), "loader 1 died: killed on request") || !strings.Contains(b.String(), "2 unfinished packages recorded as unknown") {
		t.Fatalf("summary:\n%s", b.String())
	}
}

func TestSilentWorkerIsDeclaredDead(t *testing.T) {
	url := fakeNode(t)
	rf := newRunFiles(t)
	eng := &inprocEngine{t: t}
	began := time.Now()
	res, err := runWith(context.Background(), Options{Engine: eng, Count: 2, Job: attackJob(url, 20, 3*time.Second),
		Recorder: rf.rec, Results: rf.results, DeadAfter: time.Second}, func(c *coordinator) {
		c.afterRelease = func() {
			time.AfterFunc(startDelay+500*time.Millisecond, func() {
				eng.mu.Lock()
				defer eng.mu.Unlock()
				eng.started[0].silence(0)
			})
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	h, _ := rf.close(t)
	if len(h.Faults) != 1 || h.Faults[0].Kind != FaultLoaderDied || h.Faults[0].Target != "loader0" {
		t.Fatalf("the silent loader as a fault: %+v", h.Faults)
	}
	if d := res.Dead(); len(d) != 1 || d[0].Index != 0 || !strings.Contains(d[0].Died, "silent") {
		t.Fatalf("dead: %+v", d)
	}
	if d := res.Workers[0].Ops; d == 0 || d > 15 {
		t.Fatalf("the silenced worker's ops before it went silent: %d", d)
	}
	if el := time.Since(began); el > 15*time.Second {
		t.Fatalf("run took %s", el)
	}
}

func TestCancelledRunRemovesWorkers(t *testing.T) {
	url := fakeNode(t)
	rf := newRunFiles(t)
	eng := &inprocEngine{t: t}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(1500*time.Millisecond, cancel)
	began := time.Now()
	res, err := Run(ctx, Options{Engine: eng, Count: 2, Job: attackJob(url, 20, time.Minute), Recorder: rf.rec, Results: rf.results})
	if err == nil || !strings.Contains(err.Error(), "interrupted") {
		t.Fatalf("err = %v", err)
	}
	if el := time.Since(began); el > 10*time.Second {
		t.Fatalf("a cancelled run took %s to end", el)
	}
	_, rs := rf.close(t)
	if res == nil || len(res.Dead()) != 0 || len(rs) == 0 || len(rs) != res.Results {
		t.Fatalf("the stopped workers' records: %d results, %+v", len(rs), res)
	}
	if eng.started[0].removed.Load() != 1 {
		t.Fatal("not removed")
	}
}

func TestRunRefusesWhatItCannotSplit(t *testing.T) {
	for _, tc := range []struct {
		o    Options
		want string
	}{
		{Options{Count: 2, Job: attackJob("http://127.0.0.1:1", 10, time.Second)}, "no engine"},
		{Options{Engine: &inprocEngine{}, Count: 3, Job: attackJob("http://127.0.0.1:1", 2, time.Second)}, "at least 3"},
		{Options{Engine: &inprocEngine{}, Count: 2, Job: uploadJob("http://127.0.0.1:1", 2, 0)}, "run timeout"},
		{Options{Engine: &inprocEngine{failStart: true}, Count: 2, Job: attackJob("http://127.0.0.1:1", 10, time.Second)}, "engine refused"},
		{Options{Engine: &inprocEngine{}, Count: 2, Job: attackJob("http://127.0.0.1:1", 10, time.Second), Listen: "256.0.0.1:0"}, "listen for loaders"},
	} {
		_, err := Run(context.Background(), tc.o)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("err = %v, want %q", err, tc.want)
		}
	}
}
