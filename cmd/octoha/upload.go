package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/octoha/octoha/fakes/node/launch"
	"github.com/octoha/octoha/harness/cluster/local"
	"github.com/octoha/octoha/harness/history"
	"github.com/octoha/octoha/harness/loaders"
	"github.com/octoha/octoha/harness/payload"
	"github.com/octoha/octoha/harness/traffic"
	"github.com/octoha/octoha/internal/redact"
	"github.com/octoha/octoha/octopusapi"
)

// trafficAPIKeyEnv supplies the API key of upload and attack, so it need not
// appear on the command line: the same variable the nodes read.
const trafficAPIKeyEnv = launch.EnvAPIKey

// Artefact names written into --out: the shared history, and one results
// file per command, named after it (upload-1.results.gob, …).
const (
	historyFileName = "history.jsonl"
	resultsSuffix   = ".results.gob"
)

// runUpload streams deterministic packages to a cluster and prints what
// became of each.
func runUpload(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("upload", stderr)
	var (
		rawURL      = fs.String("url", "", "base URL of the load balancer or a node (default: the load balancer of the cluster --name)")
		apiKey      = fs.String("api-key", "", "Octopus API key (default: the cluster's own key, else $"+trafficAPIKeyEnv+"; prefer those: flags show in process lists)")
		space       = fs.String("space", octopusapi.DefaultSpaceID, "space ID")
		sizeS       = fs.String("size", "64MiB", "bytes per package, e.g. 64MiB, 1GiB, 500MB")
		count       = fs.Int("count", 1, "number of packages")
		concurrency = fs.Int("concurrency", 1, "uploads at once")
		prefix      = fs.String("package-id-prefix", traffic.DefaultPackageIDPrefix, "package ID of the uploaded packages")
		seed        = fs.Int64("seed", 0, "seed of versions and content (default: random, printed for replay)")
		retries     = fs.Int("retries", 3, "retries per package after connection errors and 5xx")
		backoff     = fs.Duration("backoff", traffic.DefaultBackoff, "first wait before a retry (doubles each time)")
		stall       = fs.Duration("stall-timeout", traffic.DefaultStallTimeout, "abandon an attempt when no byte moves for this long")
		mode        = fs.String("overwrite-mode", octopusapi.FailIfExists, "FailIfExists, OverwriteExisting or IgnoreIfExists")
		out         = fs.String("out", "", "run directory shared with attack, fault and check: "+historyFileName+" and upload-N"+resultsSuffix+" (default "+byHandRoot()+"/<cluster>-<owner pid>)")
		via         = fs.String("via", "", `recorded as each op's "via" (e.g. lb or a node name)`)
		quiet       = fs.Bool("quiet", false, "no progress output")
		verbose     = fs.Bool("verbose", false, "log attempts and retries to stderr")
		delta       = fs.Bool("delta", false, "upload each package as the next version of the one before, as a delta (signature, Octodiff delta, delta upload), as the Octopus CLI's delta compression does; needs --concurrency 1")
		changeS     = fs.String("change", "", "with --delta: share of 64 KiB blocks each version rewrites, e.g. 5% or 0.05 (default 5%)")
		first       = fs.Int("first", 0, "index of the first package, to continue the versions (and with --delta the lineage) of an earlier run with the same --seed")
		rateS       = fs.String("rate", "", "limit each upload to this rate, e.g. 20MB/s or 2MiB/s (a slow client over a WAN); default unlimited")
	)
	cf := addClusterFlags(fs)
	lf := addLoaderFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := lf.checkUpload(fs, *delta); err != nil {
		return err
	}
	st, url, err := trafficTarget(fs, cf, *rawURL)
	if err != nil {
		return err
	}
	*rawURL = url
	size, err := payload.ParseSize(*sizeS)
	if err != nil {
		return fmt.Errorf("%w: --size: %v", errUsage, err)
	}
	rate, err := parseByteRate(*rateS)
	if err != nil {
		return fmt.Errorf("%w: --rate: %v", errUsage, err)
	}
	if !flagWasSet(fs, "seed") {
		*seed = 1 + rand.Int64N(999_999)
	}
	key := clusterAPIKey(*apiKey, st)
	if key == "" {
		return fmt.Errorf("%w: an API key is required: set $%s (or --api-key)", errUsage, trafficAPIKeyEnv)
	}
	var change float64
	if *changeS != "" {
		if !*delta {
			return fmt.Errorf("%w: --change needs --delta", errUsage)
		}
		if change, err = parseFraction(*changeS); err != nil {
			return fmt.Errorf("%w: --change: %v", errUsage, err)
		}
	}
	opts := traffic.UploadOptions{
		URL: *rawURL, APIKey: key, SpaceID: *space, Size: size, Count: *count,
		Concurrency: *concurrency, PackageIDPrefix: *prefix, Seed: *seed, Retries: *retries,
		Backoff: *backoff, OverwriteMode: *mode, StallTimeout: *stall, Via: *via, Rate: rate,
		Delta: *delta, Change: change, First: *first,
	}
	if *backoff <= 0 {
		return fmt.Errorf("%w: --backoff must be positive", errUsage)
	}
	if *stall <= 0 {
		return fmt.Errorf("%w: --stall-timeout must be positive", errUsage)
	}
	if err := opts.Validate(); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if !*quiet {
		opts.Progress = stderr
	}
	if *verbose {
		opts.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}

	if *out == "" {
		*out = defaultOutDir(st, *cf.name)
	}
	arts, err := openArtefacts(*out, "upload", st, history.Command{Seed: *seed, Labels: map[string]string{
		"url": redact.URL(*rawURL), "size": strconv.FormatInt(size, 10), "count": strconv.Itoa(*count),
		"concurrency": strconv.Itoa(*concurrency), "overwriteMode": *mode,
		"delta": strconv.FormatBool(*delta), "change": *changeS, "first": strconv.Itoa(*first),
	}}, true)
	if err != nil {
		return err
	}
	opts.Recorder = arts.rec
	opts.Results = arts.results
	if lf.enabled() {
		return uploadFromLoaders(ctx, fs, lf, opts, arts, stdout, stderr)
	}

	fmt.Fprintf(stderr, "uploading %d × %s to %s (seed %d; replay with --seed %d)\n",
		*count, payload.FormatSize(size), redact.URL(*rawURL), *seed, *seed)
	sum, uerr := traffic.Upload(ctx, opts)
	if cerr := arts.close(); uerr == nil {
		uerr = cerr
	}
	if sum != nil {
		printUploadSummary(stdout, sum)
		fmt.Fprintf(stdout, "history: %s (as %s)\nresults: %s\n", arts.historyPath(), arts.name, arts.resultsPath())
	}
	if uerr != nil {
		return uerr
	}
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted: %w", context.Cause(ctx))
	}
	return sum.Err()
}

// flagWasSet reports whether the flag was given on the command line.
func flagWasSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == name {
			set = true
		}
	})
	return set
}

// trafficTarget is the URL upload and attack send to: --url, or the load
// balancer of the cluster --name/--run-dir names. The cluster's state is
// returned when there is one (for its API key and the default --out).
func trafficTarget(fs *flag.FlagSet, cf clusterFlags, rawURL string) (*local.State, string, error) {
	if rawURL != "" && !flagWasSet(fs, "name") && !flagWasSet(fs, "run-dir") {
		return nil, rawURL, nil // another cluster: nothing of the local one applies
	}
	st, explicit, err := cf.state(fs)
	if err != nil {
		if rawURL == "" && !explicit {
			return nil, "", fmt.Errorf("%w: --url is required when no cluster runs (%v)", errUsage, err)
		}
		return nil, "", err
	}
	if rawURL == "" {
		rawURL = st.LBURL
	}
	return st, rawURL, nil
}

// printUploadSummary prints one row per package, the totals and what
// the upload cost this machine.
func printUploadSummary(w io.Writer, s *traffic.UploadSummary) {
	printUploadPackages(w, s)
	fmt.Fprintln(w, s.Loader)
}

// printUploadPackages prints one row per package and the totals.
func printUploadPackages(w io.Writer, s *traffic.UploadSummary) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PACKAGE\tSIZE\tSENT AS\tOUTCOME\tATTEMPTS\tSTATUS\tNODE\tSHA1\tDURATION\tERROR / NOTE")
	for _, p := range s.Packages {
		status, node, hash, dur, as := "-", "-", "-", "-", "full"
		if p.DeltaBytes > 0 && p.Spec.Size > 0 {
			as = fmt.Sprintf("delta %s (%.1f%%) on %s", payload.FormatSize(p.DeltaBytes), 100*float64(p.DeltaBytes)/float64(p.Spec.Size), p.BaseVersion)
		}
		if p.Status != 0 {
			status = strconv.Itoa(p.Status)
		}
		if p.Node != "" {
			node = p.Node
		}
		if p.Hash != "" {
			hash = p.Hash[:12]
		}
		if !p.Start.IsZero() {
			dur = p.End.Sub(p.Start).Round(time.Millisecond).String()
		}
		msg := p.Error
		if p.Note != "" {
			msg = joinNonEmpty(msg, "note: "+p.Note)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", p.Spec.FileName(), payload.FormatSize(p.Spec.Size), as,
			p.Outcome, p.Attempts, status, node, hash, dur, msg)
	}
	tw.Flush()
	if s.Deltas > 0 {
		fmt.Fprintf(w, "%d of %d packages sent as deltas\n", s.Deltas, len(s.Packages))
	}
	fmt.Fprintf(w, "%d packages: %d ok, %d failed, %d unknown; %d attempts; %s sent in %s (%.1f MB/s); seed %d\n",
		len(s.Packages), s.OK, s.Failed, s.Unknown, s.Attempts, payload.FormatSize(s.BytesSent),
		s.Duration.Round(time.Millisecond), s.Throughput/1e6, s.Seed)
}

// parseFraction reads "5%" or "0.05" as 0.05; it must be in (0, 1].
func parseFraction(s string) (float64, error) {
	v, pct, err := parsePercent(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a share (e.g. 5%% or 0.05): %v", s, err)
	}
	if pct {
		v /= 100
	}
	if v <= 0 || v > 1 {
		return 0, fmt.Errorf("%q: want more than 0 and at most 100%%", s)
	}
	return v, nil
}

func joinNonEmpty(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// parseByteRate reads a rate such as "20MB/s" or "2MiB/s" ("/s" may be
// left out); "" or "0" is unlimited (0).
func parseByteRate(s string) (int64, error) {
	t := strings.TrimSuffix(strings.TrimSpace(s), "/s")
	if t == "" || t == "0" {
		return 0, nil
	}
	n, err := payload.ParseSize(t)
	if err != nil {
		return 0, fmt.Errorf("%q: want bytes per second such as 20MB/s: %w", s, err)
	}
	if n <= 0 {
		return 0, fmt.Errorf("%q: the rate must be positive", s)
	}
	return n, nil
}

// uploadFromLoaders sends the upload from --loaders workers, each its own
// range of the packages, and prints the merged summary and each worker's.
func uploadFromLoaders(ctx context.Context, fs *flag.FlagSet, lf loaderFlags, opts traffic.UploadOptions, arts *artefacts, stdout, stderr io.Writer) error {
	job := loaders.Job{Kind: loaders.KindUpload, Upload: &loaders.UploadJob{
		URL: opts.URL, APIKey: opts.APIKey, SpaceID: opts.SpaceID, Size: opts.Size, Count: opts.Count,
		Concurrency: opts.Concurrency, PackageIDPrefix: opts.PackageIDPrefix, Seed: opts.Seed,
		Retries: opts.Retries, Backoff: opts.Backoff, OverwriteMode: opts.OverwriteMode,
		StallTimeout: opts.StallTimeout, Via: opts.Via, Rate: opts.Rate, First: opts.First,
	}}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	lo, err := lf.options(fs, job, arts.rec, arts.results, nil, log)
	if err != nil {
		arts.close()
		return err
	}
	fmt.Fprintf(stderr, "uploading %d × %s to %s from %d loaders on %s (seed %d; replay with --seed %d)\n",
		opts.Count, payload.FormatSize(opts.Size), redact.URL(opts.URL), lo.Count, lo.Engine.Name(), opts.Seed, opts.Seed)
	res, lerr := loaders.Run(ctx, lo)
	if cerr := arts.close(); lerr == nil {
		lerr = cerr
	}
	if res == nil {
		return lerr
	}
	printUploadPackages(stdout, res.Upload)
	fmt.Fprintln(stdout, "\nLoaders:")
	res.WriteSummary(stdout)
	fmt.Fprintf(stdout, "\nhistory: %s (as %s)\nresults: %s\n", arts.historyPath(), arts.name, arts.resultsPath())
	if lerr == nil {
		lerr = unexpectedDeaths(res, lo.Kill)
	}
	switch {
	case lerr != nil:
	case lo.Kill == nil:
		lerr = res.Upload.Err()
	case res.Upload.Failed > 0: // the killed loader's packages are unknown, as they must be
		lerr = fmt.Errorf("%d of %d uploads failed", res.Upload.Failed, len(res.Upload.Packages))
	}
	return lerr
}
