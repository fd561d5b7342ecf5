package loaders

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/octoha/octoha/harness/history"
	"github.com/octoha/octoha/harness/traffic"
)

// Job kinds.
const (
	KindAttack = "attack"
	KindUpload = "upload"
)

// Job is the whole run's load, as one process would send it; each worker
// sends its Segment of it. Exactly one of Attack and Upload is set.
type Job struct {
	Kind   string     `json:"kind"`
	Attack *AttackJob `json:"attack,omitempty"`
	Upload *UploadJob `json:"upload,omitempty"`
}

// AttackJob is the part of traffic.AttackOptions that crosses to a worker.
// APIKey is a secret: it reaches workers only through the token-guarded
// join reply and is never logged.
type AttackJob struct {
	URL        string        `json:"url"`
	APIKey     string        `json:"apiKey,omitempty"`
	Target     string        `json:"target"`
	SpaceID    string        `json:"spaceId,omitempty"`
	Freq       int           `json:"freq"`
	Per        time.Duration `json:"per"`
	Duration   time.Duration `json:"duration"`
	Workers    uint64        `json:"workers,omitempty"`
	MaxWorkers uint64        `json:"maxWorkers,omitempty"`
	Timeout    time.Duration `json:"timeout,omitempty"`
	Name       string        `json:"name,omitempty"`
	Via        string        `json:"via,omitempty"`
}

// UploadJob is the part of traffic.UploadOptions that crosses to a
// worker. Packages First..First+Count-1 of (PackageIDPrefix, Seed) are
// split into contiguous ranges, so workers upload distinct versions.
type UploadJob struct {
	URL             string        `json:"url"`
	APIKey          string        `json:"apiKey"`
	SpaceID         string        `json:"spaceId,omitempty"`
	Size            int64         `json:"size"`
	Count           int           `json:"count"`
	Concurrency     int           `json:"concurrency"`
	PackageIDPrefix string        `json:"packageIdPrefix,omitempty"`
	Seed            int64         `json:"seed"`
	Retries         int           `json:"retries"`
	Backoff         time.Duration `json:"backoff,omitempty"`
	OverwriteMode   string        `json:"overwriteMode,omitempty"`
	StallTimeout    time.Duration `json:"stallTimeout,omitempty"`
	Via             string        `json:"via,omitempty"`
	Rate            int64         `json:"rate,omitempty"`
	First           int           `json:"first,omitempty"`
}

// clientName is the history client of worker i's ops, so that ops from
// two workers never share a client (each client is one sequential stream).
func clientName(i int, base string) string { return fmt.Sprintf("loader%d-%s", i, base) }

// AttackOptions is worker seg's part of the attack.
func (j AttackJob) AttackOptions(seg Segment) traffic.AttackOptions {
	freq, per := seg.Rate(j.Freq, j.Per)
	name := j.Name
	if name == "" {
		name = j.Target
	}
	workers, maxWorkers := j.Workers, j.MaxWorkers
	if maxWorkers > 0 {
		maxWorkers = max(1, uint64(seg.Part(int(maxWorkers))))
	}
	if workers > 0 {
		workers = max(1, uint64(seg.Part(int(workers))))
	}
	return traffic.AttackOptions{
		URL: j.URL, APIKey: j.APIKey, Target: j.Target, SpaceID: j.SpaceID,
		Rate: vegeta.Rate{Freq: freq, Per: per}, Duration: j.Duration,
		Workers: workers, MaxWorkers: maxWorkers, Timeout: j.Timeout,
		Name: name, ClientName: clientName(seg.Index, name), Via: j.Via,
	}
}

// UploadOptions is worker seg's part of the upload; ok is false when the
// worker has no package to send.
func (j UploadJob) UploadOptions(seg Segment) (opts traffic.UploadOptions, ok bool) {
	first, n := seg.Range(j.Count)
	conc := max(1, seg.Part(max(j.Concurrency, 1)))
	return traffic.UploadOptions{
		URL: j.URL, APIKey: j.APIKey, SpaceID: j.SpaceID, Size: j.Size, Count: n,
		Concurrency: min(conc, max(n, 1)), PackageIDPrefix: j.PackageIDPrefix, Seed: j.Seed,
		Retries: j.Retries, Backoff: j.Backoff, OverwriteMode: j.OverwriteMode,
		StallTimeout: j.StallTimeout, Via: j.Via, Rate: j.Rate, First: j.First + first,
		ClientName: clientName(seg.Index, traffic.DefaultClientName),
	}, n > 0
}

// Validate says whether count workers can share the job: each worker's
// part must be usable on its own.
func (j Job) Validate(count int) error {
	if count < 1 {
		return fmt.Errorf("%d loaders: need at least one", count)
	}
	switch j.Kind {
	case KindAttack:
		if j.Attack == nil || j.Upload != nil {
			return errors.New("an attack job needs its attack options and nothing else")
		}
		if err := SplitRate(j.Attack.Freq, count); err != nil {
			return err
		}
		if j.Attack.Duration <= 0 {
			return errors.New("an attack over loaders needs a duration")
		}
		for i := range count {
			if err := j.Attack.AttackOptions(Segment{i, count}).Validate(); err != nil {
				return fmt.Errorf("loader %d: %w", i, err)
			}
		}
	case KindUpload:
		if j.Upload == nil || j.Attack != nil {
			return errors.New("an upload job needs its upload options and nothing else")
		}
		if j.Upload.Count < count {
			return fmt.Errorf("%d packages over %d loaders leaves some loader nothing to upload: use at most %d loaders", j.Upload.Count, count, j.Upload.Count)
		}
		for i := range count {
			o, _ := j.Upload.UploadOptions(Segment{i, count})
			if err := o.Validate(); err != nil {
				return fmt.Errorf("loader %d: %w", i, err)
			}
		}
	default:
		return fmt.Errorf("job kind %q: use %s or %s", j.Kind, KindAttack, KindUpload)
	}
	return nil
}

// run sends worker seg's part of the job, recording ops into rec and
// handing every vegeta result to observe.
func (j Job) run(ctx context.Context, seg Segment, rec *history.Recorder, observe func(*vegeta.Result), log *slog.Logger) Done {
	var d Done
	switch j.Kind {
	case KindAttack:
		o := j.Attack.AttackOptions(seg)
		o.Recorder, o.Observe, o.Logger, o.Loader = rec, observe, log, &d.Loader
		if _, err := traffic.Attack(ctx, o); err != nil {
			d.Error = err.Error()
		}
	case KindUpload:
		o, ok := j.Upload.UploadOptions(seg)
		if !ok {
			return d
		}
		o.Recorder, o.Observe, o.Logger = rec, observe, log
		sum, err := traffic.Upload(ctx, o)
		if err != nil {
			d.Error = err.Error()
		}
		if sum != nil {
			d.Loader = sum.Loader
			d.Upload = sum
		}
	default:
		d.Error = fmt.Sprintf("job kind %q unknown to this worker", j.Kind)
	}
	return d
}
