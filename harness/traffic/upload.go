package traffic

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/octoha/octoha/harness/history"
	"github.com/octoha/octoha/harness/payload"
	"github.com/octoha/octoha/internal/redact"
	"github.com/octoha/octoha/octopusapi"
)

// Defaults of UploadOptions.
const (
	DefaultPackageIDPrefix = "OctohaLoad"
	DefaultBackoff         = 500 * time.Millisecond
	// MaxBackoff caps the exponential backoff between attempts.
	MaxBackoff          = 30 * time.Second
	DefaultStallTimeout = 2 * time.Minute
	DefaultClientName   = "upload"
	// DefaultProgressInterval is the period of plain-text progress lines.
	DefaultProgressInterval = 5 * time.Second
	// UploadAttackName is the vegeta Attack name of upload results.
	UploadAttackName = "upload"
)

// ErrStalled is the cause of an attempt cancelled because neither request
// nor response bytes moved for the stall timeout (e.g. a paused node).
var ErrStalled = errors.New("upload stalled")

// UploadOptions configures Upload. The zero value of each field means its
// documented default; URL, APIKey, Size and Count are required.
type UploadOptions struct {
	URL     string // base URL: the load balancer or one node
	APIKey  string // sent as X-Octopus-ApiKey; never logged
	SpaceID string // default octopusapi.DefaultSpaceID
	Size    int64  // bytes per package (0 is allowed: an empty file)
	// Count is how many packages to upload; Concurrency how many at once
	// (default 1).
	Count, Concurrency int
	// PackageIDPrefix is the package ID of every package (default
	// DefaultPackageIDPrefix); versions tell them apart (see PackageSpec).
	PackageIDPrefix string
	// Seed selects the packages' versions and content, so a run can be
	// replayed byte for byte.
	Seed int64
	// Retries is how many times a package is tried again after a
	// connection error or a 5xx (never after a 4xx). 0: no retries.
	Retries int
	// Backoff is the first wait before a retry; it doubles per attempt up
	// to MaxBackoff, with jitter. Default DefaultBackoff.
	Backoff time.Duration
	// OverwriteMode is sent as ?overwriteMode= (default octopusapi.FailIfExists).
	OverwriteMode string
	// StallTimeout abandons an attempt (outcome unknown) when no request or
	// response byte moves for this long, so a paused node cannot hang the
	// run. Default DefaultStallTimeout; negative disables it.
	StallTimeout time.Duration
	// Client sends the requests; nil means a fresh loopback client. Its
	// redirect policy is replaced by "do not follow"; its Timeout, if set,
	// bounds whole uploads, so leave it zero for big packages and rely on
	// StallTimeout.
	Client   *http.Client
	Recorder *history.Recorder // every attempt becomes an Op; nil: none
	// Results receives one vegeta Result per attempt, gob-encoded with
	// vegeta's own encoder (so `vegeta report` reads it); nil: none.
	Results io.Writer
	// Observe, if set, sees every attempt's Result as it is recorded (a
	// loader worker streams them to its coordinator); it runs on the
	// attempt's goroutine, concurrently with other attempts.
	Observe func(*vegeta.Result)
	// Progress receives progress bars (a terminal) or a line every
	// ProgressInterval (anything else); nil: silent.
	Progress         io.Writer
	ProgressInterval time.Duration
	// ClientName names the history clients: "<ClientName>-<worker>", one
	// sequential stream per worker. Default DefaultClientName.
	ClientName string
	// Via is recorded in each Op's Via field ("lb" or a node name).
	Via string
	// Rate limits each upload attempt's body to this many bytes per
	// second (0: as fast as the network allows), so a big package takes as
	// long as over a WAN and meets the load balancer's time limits.
	Rate   int64
	Logger *slog.Logger
	// Delta uploads the packages as successive versions of one lineage
	// (see DeltaPackageSpec), each through the delta path the official
	// clients use: ask for the signature of the nearest earlier version,
	// build an Octodiff delta from it, post the delta. A package with no
	// earlier version, or whose delta is not smaller than 95% of it, is
	// uploaded in full, as the clients do. Versions depend on each other,
	// so Concurrency must be 1.
	Delta bool
	// Change is the fraction of 64 KiB blocks each version rewrites
	// (Delta only; default DefaultChange).
	Change float64
	// First is the index of the first package (default 0), so one run can
	// continue the lineage another began.
	First int
}

// DefaultChange is the fraction of blocks each version of a delta
// lineage rewrites by default.
const DefaultChange = 0.05

// PackageResult is what became of one package.
type PackageResult struct {
	Spec payload.Spec
	// BaseVersion and DeltaBytes describe the delta the package was sent
	// as (Delta uploads; empty and 0 for a full upload).
	BaseVersion string
	DeltaBytes  int64
	// DeltaBuild is how long building the delta took on this machine.
	DeltaBuild time.Duration
	// Hash is the SHA-1 of the package's bytes; empty for a failed package
	// whose bytes were never all sent (not worth generating them again).
	Hash string
	// Outcome is ok when the server acknowledged the package and reported
	// our hash and size; unknown when an attempt may have stored it but
	// none confirmed it; failed otherwise.
	Outcome  history.Outcome
	Status   int    // status of the last answer, 0 if none
	Node     string // node that stored it (ok) or last answered
	Attempts int
	Error    string
	Note     string
	// BytesSent counts request body bytes over all attempts.
	BytesSent  int64
	Start, End time.Time
}

// UploadSummary is the result of Upload.
type UploadSummary struct {
	Packages            []PackageResult // in index order
	OK, Failed, Unknown int
	Attempts            int
	BytesSent           int64 // request body bytes over all attempts
	BytesStored         int64 // payload bytes of packages that ended ok
	Duration            time.Duration
	// Deltas counts the packages sent as deltas.
	Deltas int
	// Throughput is BytesSent per second of Duration.
	Throughput float64
	Seed       int64
	// Loader is what the upload cost this machine, and whether a
	// rate-limited upload kept its rate (per package at once: Rate ×
	// Concurrency is the schedule).
	Loader LoaderStats
}

// Err returns an error saying how many packages did not end ok, or nil.
func (s *UploadSummary) Err() error {
	if s == nil || s.OK == len(s.Packages) {
		return nil
	}
	first := ""
	for _, p := range s.Packages {
		if p.Outcome != history.OK {
			first = fmt.Sprintf("; first: %s: %s", p.Spec.FileName(), p.Error)
			break
		}
	}
	return fmt.Errorf("%d of %d uploads did not succeed (%d failed, %d unknown)%s",
		len(s.Packages)-s.OK, len(s.Packages), s.Failed, s.Unknown, first)
}

// PackageSpec returns the index-th package of a run: ID prefix, version
// "1.<seed mod 1e6>.<index>", content seeded from (seed, index). The same
// arguments always name the same bytes.
func PackageSpec(prefix string, seed int64, index int, size int64) payload.Spec {
	m := seed % 1_000_000
	if m < 0 {
		m = -m
	}
	return payload.Spec{
		PackageID: prefix,
		Version:   "1." + strconv.FormatInt(m, 10) + "." + strconv.Itoa(index),
		Ext:       payload.DefaultExt,
		Seed:      payload.DeriveSeed(seed, index),
		Size:      size,
	}
}

// DeltaPackageSpec returns the index-th package of a delta lineage: the
// name PackageSpec gives it, and generation index of the lineage rooted
// at the run's first package, each generation rewriting a change
// fraction of the one before's blocks.
func DeltaPackageSpec(prefix string, seed int64, index int, size int64, change float64) payload.Spec {
	s := PackageSpec(prefix, seed, index, size)
	s.Seed, s.Gen, s.Change = payload.DeriveSeed(seed, 0), index, change
	return s
}

// spec is the index-th package of the run.
func (o UploadOptions) spec(index int) payload.Spec {
	if o.Delta {
		return DeltaPackageSpec(o.PackageIDPrefix, o.Seed, index, o.Size, o.Change)
	}
	return PackageSpec(o.PackageIDPrefix, o.Seed, index, o.Size)
}

// withDefaults fills in defaults and validates; it sends nothing.
func (o UploadOptions) withDefaults() (UploadOptions, string, error) {
	base, err := parseBaseURL(o.URL)
	if err != nil {
		return o, "", err
	}
	if o.APIKey == "" {
		return o, "", errors.New("an API key is required")
	}
	if o.SpaceID == "" {
		o.SpaceID = octopusapi.DefaultSpaceID
	}
	if !octopusapi.ValidSpaceID(o.SpaceID) {
		return o, "", fmt.Errorf("space ID %q is not valid (e.g. Spaces-1)", o.SpaceID)
	}
	if o.Size < 0 {
		return o, "", fmt.Errorf("size %d is negative", o.Size)
	}
	if o.Count < 1 {
		return o, "", fmt.Errorf("count %d: at least one package is needed", o.Count)
	}
	if o.Concurrency == 0 {
		o.Concurrency = 1
	}
	if o.Concurrency < 0 {
		return o, "", fmt.Errorf("concurrency %d is negative", o.Concurrency)
	}
	o.Concurrency = min(o.Concurrency, o.Count)
	if o.PackageIDPrefix == "" {
		o.PackageIDPrefix = DefaultPackageIDPrefix
	}
	if o.First < 0 {
		return o, "", fmt.Errorf("first package index %d is negative", o.First)
	}
	if o.Delta {
		if o.Change == 0 {
			o.Change = DefaultChange
		}
		if o.Change < 0 || o.Change > 1 {
			return o, "", fmt.Errorf("change %v: want a fraction of blocks in (0, 1]", o.Change)
		}
		if o.Concurrency > 1 {
			return o, "", fmt.Errorf("delta uploads go one version after another: concurrency %d must be 1", o.Concurrency)
		}
	} else if o.Change != 0 {
		return o, "", errors.New("a change fraction needs delta uploads")
	}
	if err := o.spec(o.First + o.Count - 1).Validate(); err != nil {
		return o, "", fmt.Errorf("package names: %w", err)
	}
	if o.Retries < 0 {
		return o, "", fmt.Errorf("retries %d is negative", o.Retries)
	}
	if o.Backoff == 0 {
		o.Backoff = DefaultBackoff
	}
	if o.Backoff < 0 {
		return o, "", fmt.Errorf("backoff %s is negative", o.Backoff)
	}
	switch o.OverwriteMode {
	case "":
		o.OverwriteMode = octopusapi.FailIfExists
	case octopusapi.FailIfExists, octopusapi.OverwriteExisting, octopusapi.IgnoreIfExists:
	default:
		return o, "", fmt.Errorf("overwrite mode %q: use %s, %s or %s", o.OverwriteMode, octopusapi.FailIfExists, octopusapi.OverwriteExisting, octopusapi.IgnoreIfExists)
	}
	if o.Rate < 0 {
		return o, "", fmt.Errorf("rate %d bytes/s is negative", o.Rate)
	}
	if o.StallTimeout == 0 {
		o.StallTimeout = DefaultStallTimeout
	}
	if o.ProgressInterval <= 0 {
		o.ProgressInterval = DefaultProgressInterval
	}
	if o.ClientName == "" {
		o.ClientName = DefaultClientName
	}
	if o.Logger == nil {
		o.Logger = discardLogger()
	}
	return o, base, nil
}

// Validate reports whether the options are usable, without sending anything.
func (o UploadOptions) Validate() error {
	_, _, err := o.withDefaults()
	return err
}

// uploader is one Upload call.
type uploader struct {
	opts      UploadOptions
	base      string
	uploadURL string
	// shownURL is uploadURL as written to histories, results and logs:
	// user info and secret query keys redacted.
	shownURL string
	client   *http.Client
	results  *resultWriter
	nonce    string
	began    time.Time
	prog     *tracker

	seqMu sync.Mutex
	seq   uint64
}

// Upload streams opts.Count packages of opts.Size bytes to the upload
// endpoint, opts.Concurrency at a time, retrying as configured, and records
// every attempt. The error is non-nil only for unusable options or a failure
// to write the results stream; per-package failures are in the summary
// (see UploadSummary.Err). Cancelling ctx stops new attempts and aborts
// running ones (their outcome is unknown).
func Upload(ctx context.Context, opts UploadOptions) (*UploadSummary, error) {
	o, base, err := opts.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("upload options: %w", err)
	}
	client, err := clientFor(o.Client, o.Concurrency, base, o.APIKey)
	if err != nil {
		return nil, fmt.Errorf("upload: %w", err)
	}
	u := &uploader{
		opts:      o,
		base:      base,
		uploadURL: base + octopusapi.UploadPath(o.SpaceID, o.OverwriteMode),
		shownURL:  redact.URL(base + octopusapi.UploadPath(o.SpaceID, o.OverwriteMode)),
		client:    client,
		results:   newResultWriter(o.Results),
		nonce:     newNonce(),
		began:     time.Now(),
	}
	u.prog = newTracker(o.Count, o.Size, func(i int) string {
		return o.spec(o.First + i).FileName()
	})
	stopProgress := startProgress(ctx, o.Progress, o.ProgressInterval, u.prog)

	o.Logger.Info("upload starting", "url", u.shownURL, "count", o.Count, "size", o.Size,
		"concurrency", o.Concurrency, "seed", o.Seed, "retries", o.Retries, "delta", o.Delta, "change", o.Change)

	clock := startLoaderClock()
	out := make([]PackageResult, o.Count)
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := range o.Concurrency {
		wg.Go(func() {
			client := o.ClientName + "-" + strconv.Itoa(w+1)
			for {
				i := int(next.Add(1) - 1)
				if i >= o.Count {
					return
				}
				spec := o.spec(o.First + i)
				if ctx.Err() != nil {
					out[i] = PackageResult{Spec: spec, Outcome: history.Failed,
						Error: "not attempted: " + context.Cause(ctx).Error()}
					continue
				}
				out[i] = u.uploadOne(ctx, client, i, spec)
			}
		})
	}
	wg.Wait()
	stopProgress()

	s := &UploadSummary{Packages: out, Duration: time.Since(u.began), Seed: o.Seed}
	for _, p := range out {
		switch p.Outcome {
		case history.OK:
			s.OK++
			s.BytesStored += p.Spec.Size
		case history.Unknown:
			s.Unknown++
		default:
			s.Failed++
		}
		s.Attempts += p.Attempts
		s.BytesSent += p.BytesSent
		if p.DeltaBytes > 0 {
			s.Deltas++
		}
	}
	if s.Duration > 0 {
		s.Throughput = float64(s.BytesSent) / s.Duration.Seconds()
	}
	s.Loader = clock.stats(float64(o.Rate)*float64(o.Concurrency), s.Throughput)
	o.Logger.Info("upload finished", "ok", s.OK, "failed", s.Failed, "unknown", s.Unknown,
		"bytes", s.BytesSent, "duration", s.Duration, "MBps", s.Throughput/1e6,
		"loaderCPUShare", s.Loader.CPUShare, "behind", s.Loader.Behind)
	return s, u.results.Flush()
}

// job is one package being uploaded: its spec and, once known, its hash.
type job struct {
	index  int
	client string
	spec   payload.Spec
	hash   string
	// hadUnknown is set once an attempt may have stored the package, so a
	// later 409 must be checked against what the server holds.
	hadUnknown bool
	// deltaReady is set once a delta upload knows how it sends the
	// package: as delta (non-nil), or in full.
	deltaReady bool
	delta      *deltaBody
}

// expectedHash returns the package's SHA-1, generating the bytes once if no
// attempt has sent them all.
func (j *job) expectedHash() string {
	if j.hash == "" {
		j.hash = j.spec.CachedHash()
	}
	return j.hash
}

func (u *uploader) uploadOne(ctx context.Context, client string, index int, spec payload.Spec) PackageResult {
	j := &job{index: index, client: client, spec: spec}
	res := PackageResult{Spec: spec, Start: time.Now(), Outcome: history.Failed}
	u.prog.begin(index)
	defer func() { j.delta.remove() }() // j.delta is set later
	for n := 1; n <= 1+u.opts.Retries; n++ {
		if n > 1 {
			d := backoff(u.opts.Backoff, n-1)
			u.opts.Logger.Warn("upload attempt failed, retrying", "package", spec.FileName(),
				"attempt", n-1, "error", res.Error, "backoff", d)
			if !sleepCtx(ctx, d) {
				break
			}
			u.prog.retry(index)
		}
		if u.opts.Delta && !j.deltaReady {
			retry, err := u.prepareDelta(ctx, j, n)
			if err != nil {
				res.Attempts, res.Error = n, err.Error()
				if retry && ctx.Err() == nil {
					continue
				}
				break
			}
			if j.delta != nil {
				res.BaseVersion, res.DeltaBytes, res.DeltaBuild = j.delta.base, j.delta.size, j.delta.buildTime
			}
		}
		a := u.attempt(ctx, j, n)
		res.Attempts = n
		res.BytesSent += a.bodyBytes
		if a.status != 0 {
			res.Status = a.status
		}
		if a.node != "" {
			res.Node = a.node
		}
		res.Outcome, res.Note = a.verdict, a.note
		res.Error = ""
		if a.err != nil {
			res.Error = a.err.Error()
		}
		if a.outcome == history.Unknown {
			j.hadUnknown = true
		}
		if !a.retry || ctx.Err() != nil {
			break
		}
	}
	// A later failure does not undo an earlier attempt that may have
	// stored the package.
	if res.Outcome == history.Failed && j.hadUnknown {
		res.Outcome = history.Unknown
		res.Note = strings.TrimPrefix(res.Note+"; an earlier attempt's outcome is unknown", "; ")
	}
	if res.Outcome != history.Failed {
		res.Hash = j.expectedHash()
	} else {
		res.Hash = j.hash // known if an attempt sent it all
	}
	res.End = time.Now()
	u.prog.end(index, res.Outcome == history.OK)
	u.opts.Logger.Debug("package done", "package", spec.FileName(), "outcome", res.Outcome,
		"attempts", res.Attempts, "node", res.Node, "error", res.Error)
	return res
}

// backoff returns the wait before retry number n (1-based): base·2^(n-1),
// capped, with "equal jitter" so concurrent clients do not retry in step.
func backoff(base time.Duration, n int) time.Duration {
	d := base
	for i := 1; i < n && d < MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, MaxBackoff)
	return d/2 + rand.N(d/2+1)
}

// sleepCtx waits for d or until ctx is done; it reports whether d passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// nextSeq returns the next vegeta sequence number and its timestamp, taken
// together as vegeta does so both orders agree.
func (u *uploader) nextSeq() (uint64, time.Time) {
	u.seqMu.Lock()
	defer u.seqMu.Unlock()
	s := u.seq
	u.seq++
	return s, u.began.Add(time.Since(u.began))
}
