package loaders

import (
	"context"
	"fmt"
	"strings"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/octoha/octoha/harness/history"
	"github.com/octoha/octoha/harness/traffic"
)

// Result is a run's merged figures and each worker's own.
type Result struct {
	RunID   string
	Engine  string
	Workers []WorkerReport
	// Metrics are vegeta's over every merged result.
	Metrics vegeta.Metrics
	// Upload is the merged upload summary (upload jobs): every package of
	// the job, in index order, a dead worker's unfinished ones unknown.
	Upload *traffic.UploadSummary
	// Ops and Results count the merged records; Synthesized the unknown
	// ops recorded for packages a dead worker never reported.
	Ops, Results, Synthesized int
	// MergeBusy is the coordinator's time spent merging records.
	MergeBusy time.Duration
	Wall      time.Duration
}

// WorkerReport is one worker's part of a Result.
type WorkerReport struct {
	Index             int
	Host              string
	Offset, EndOffset Offset
	// Ops and Results count the records merged from it.
	Ops, Results int
	Metrics      vegeta.Metrics
	// Loader is what the load cost its machine (nil: it never said).
	Loader *traffic.LoaderStats
	// Upload is its part of an upload (nil for a dead worker).
	Upload *traffic.UploadSummary
	// Died says why the worker counts as dead ("" if it finished).
	Died  string
	Error string
	// Log is the end of a dead or failed worker's output, when the
	// engine can show it (LogReader).
	Log string
	// OK, Failed and Unknown count its packages (upload jobs).
	OK, Failed, Unknown int
}

// Errors is the number of its requests that did not succeed.
func (w WorkerReport) Errors() int {
	return int(w.Metrics.Requests) - int(float64(w.Metrics.Requests)*w.Metrics.Success+0.5)
}

// Bottleneck names why this worker limited the load, or "".
func (w WorkerReport) Bottleneck() string {
	if w.Loader == nil {
		return ""
	}
	switch {
	case w.Loader.Behind:
		return fmt.Sprintf("loader %d was BEHIND its schedule (%.0f/s asked, %.0f/s achieved): the load was short there, not the cluster's answer", w.Index, w.Loader.Asked, w.Loader.Achieved)
	case w.Loader.CPUShare >= saturated:
		return fmt.Sprintf("loader %d saturated its machine's CPU (%.0f%% of %d cores)", w.Index, 100*w.Loader.CPUShare, w.Loader.CPUs)
	}
	return ""
}

// saturated is the CPU share above which a loader counts as the bottleneck.
const saturated = 0.9

// Dead lists the workers that died.
func (r *Result) Dead() []WorkerReport {
	var out []WorkerReport
	for _, w := range r.Workers {
		if w.Died != "" {
			out = append(out, w)
		}
	}
	return out
}

// Bottlenecks lists the workers that limited the load, one line each.
func (r *Result) Bottlenecks() []string {
	var out []string
	for _, w := range r.Workers {
		if b := w.Bottleneck(); b != "" {
			out = append(out, b)
		}
	}
	return out
}

// result gathers the run's figures; for a dead worker of an upload it
// records every package it never reported as unknown (it may have stored
// it: never "lost"). Call it before the coordinator's batch is closed.
func (r *run) result(runID string, wall time.Duration) *Result {
	res := &Result{RunID: runID, Engine: r.o.Engine.Name(), Wall: wall}
	c := r.c
	c.mu.Lock()
	defer c.mu.Unlock()
	res.Metrics = c.merged
	res.Metrics.Close()
	res.MergeBusy = c.busy
	for i, ws := range c.workers {
		w := WorkerReport{Index: i, Host: ws.host, Offset: ws.offset, Ops: ws.ops, Results: ws.results,
			Metrics: ws.metrics, Died: ws.dead}
		w.Metrics.Close()
		if !ws.joined && w.Died == "" {
			w.Died = "never joined"
		}
		if d := ws.done; d != nil {
			w.Loader, w.EndOffset, w.Error, w.Upload = &d.Loader, d.EndOffset, d.Error, d.Upload
		}
		if w.Died != "" && ws.joined {
			r.recordDeath(i, ws)
		}
		if w.Died != "" || w.Error != "" {
			w.Log = r.logs(i)
		}
		if r.o.Job.Kind == KindUpload {
			res.Synthesized += r.uploadPart(&w, ws)
		}
		res.Ops += w.Ops
		res.Results += w.Results
		res.Workers = append(res.Workers, w)
	}
	if r.o.Job.Kind == KindUpload {
		res.Upload = mergeUploads(res.Workers, r.o.Job.Upload.Seed, wall)
	}
	return res
}

// logTail is how many lines of a failed worker's output are quoted.
const logTail = 20

// logs is the end of worker i's output, or "" when the engine cannot
// show it.
func (r *run) logs(i int) string {
	lr, ok := r.ws.(LogReader)
	if !ok {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := lr.Logs(ctx, i, logTail)
	if err != nil {
		return "(its output could not be read: " + err.Error() + ")"
	}
	return strings.TrimRight(out, "\n")
}

// Fault kinds of the loaders themselves: a worker killed on request
// (Options.Kill) and one that died otherwise. A dead worker's unfinished
// operations fall in its fault's window, so the checkers blame them on
// the loader, not on the cluster.
const (
	FaultLoaderKill = "loader-kill"
	FaultLoaderDied = "loader-died"
)

// recordDeath records a dead worker as a fault that never ends.
func (r *run) recordDeath(i int, ws *workerState) {
	kind := FaultLoaderDied
	if ws.killed {
		kind = FaultLoaderKill
	}
	r.o.Recorder.Fault(history.Fault{Kind: kind, Target: fmt.Sprintf("loader%d", i), Start: ws.diedAt, Detail: ws.dead})
}

// uploadPart fills in a worker's packages: its own summary, or for a
// dead worker what its ops say, with an unknown op recorded for each
// package it did not see acknowledged. It returns the ops it recorded.
func (r *run) uploadPart(w *WorkerReport, ws *workerState) int {
	j := r.o.Job.Upload
	if w.Upload == nil && w.Died == "" {
		w.Died = "handed in no upload summary"
	}
	synth := 0
	if w.Died != "" {
		first, n := Segment{w.Index, len(r.c.workers)}.Range(j.Count)
		sum := &traffic.UploadSummary{Seed: j.Seed}
		for k := j.First + first; k < j.First+first+n; k++ {
			spec := traffic.PackageSpec(prefixOf(j), j.Seed, k, j.Size)
			p := traffic.PackageResult{Spec: spec, Outcome: history.Unknown, Attempts: ws.opsOf[spec.Version]}
			if ws.outcomes[spec.Version] == history.OK {
				p.Outcome = history.OK
			} else {
				p.Error = fmt.Sprintf("loader %d died before it reported this package's end (%s)", w.Index, w.Died)
				r.c.batch.Add(history.Op{
					Client: clientName(w.Index, traffic.DefaultClientName), Kind: history.KindUpload,
					Start: r.startC, End: r.c.now(), Outcome: history.Unknown, Via: j.Via,
					PackageID: spec.PackageID, Version: spec.Version, Size: spec.Size, Error: p.Error,
				})
				synth++
			}
			sum.Packages = append(sum.Packages, p)
		}
		w.Upload = sum
	}
	for _, p := range w.Upload.Packages {
		switch p.Outcome {
		case history.OK:
			w.OK++
		case history.Failed:
			w.Failed++
		default:
			w.Unknown++
		}
	}
	w.Ops += synth
	return synth
}

func prefixOf(j *UploadJob) string {
	if j.PackageIDPrefix == "" {
		return traffic.DefaultPackageIDPrefix
	}
	return j.PackageIDPrefix
}

// mergeUploads joins the workers' upload summaries, in package order.
func mergeUploads(ws []WorkerReport, seed int64, wall time.Duration) *traffic.UploadSummary {
	m := &traffic.UploadSummary{Seed: seed, Duration: wall}
	for _, w := range ws {
		m.OK, m.Failed, m.Unknown = m.OK+w.OK, m.Failed+w.Failed, m.Unknown+w.Unknown
		if w.Upload == nil {
			continue
		}
		m.Packages = append(m.Packages, w.Upload.Packages...)
		m.Attempts += w.Upload.Attempts
		m.BytesSent += w.Upload.BytesSent
		m.BytesStored += w.Upload.BytesStored
		m.Deltas += w.Upload.Deltas
	}
	if s := wall.Seconds(); s > 0 {
		m.Throughput = float64(m.BytesSent) / s
	}
	return m
}
