package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mattn/go-isatty"
	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/octoha/octoha/harness/history"
	"github.com/octoha/octoha/harness/loaders"
	"github.com/octoha/octoha/harness/traffic"
	"github.com/octoha/octoha/internal/redact"
	"github.com/octoha/octoha/octopusapi"
)

// runAttack puts rate-based read load on a cluster with vegeta and prints
// vegeta's report and which node served how many requests.
func runAttack(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("attack", stderr)
	var (
		rawURL     = fs.String("url", "", "base URL of the load balancer or a node (default: the load balancer of the cluster --name)")
		target     = fs.String("target", traffic.TargetPing, "what to request: ping, nodes or packages")
		rateS      = fs.String("rate", "50/s", `requests per period, e.g. 200/s, 50/100ms; "0" = as fast as --max-workers allow`)
		duration   = fs.Duration("duration", 10*time.Second, "how long to attack")
		apiKey     = fs.String("api-key", "", "Octopus API key (default: the cluster's own key, else $"+trafficAPIKeyEnv+"; ping needs none)")
		space      = fs.String("space", octopusapi.DefaultSpaceID, "space ID (target packages)")
		workers    = fs.Uint64("workers", vegeta.DefaultWorkers, "initial workers")
		maxWorkers = fs.Uint64("max-workers", 0, "maximum workers (default unlimited; required with --rate 0)")
		timeout    = fs.Duration("timeout", traffic.DefaultAttackTimeout, "per-request timeout")
		name       = fs.String("attack-name", "", "vegeta attack name (default the target)")
		via        = fs.String("via", "", `recorded as each op's "via" (e.g. lb or a node name)`)
		out        = fs.String("out", "", "run directory shared with upload, fault and check: "+historyFileName+" and attack-N"+resultsSuffix+" (default "+byHandRoot()+"/<cluster>-<owner pid>)")
		verbose    = fs.Bool("verbose", false, "log to stderr")
		quiet      = fs.Bool("quiet", false, "no progress output")
		every      = fs.Duration("progress-every", 5*time.Second, "progress line interval when stderr is not a terminal")
	)
	cf := addClusterFlags(fs)
	lf := addLoaderFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := lf.check(fs); err != nil {
		return err
	}
	st, url, err := trafficTarget(fs, cf, *rawURL)
	if err != nil {
		return err
	}
	*rawURL = url
	rate, err := traffic.ParseRate(*rateS)
	if err != nil {
		return fmt.Errorf("%w: --rate: %v", errUsage, err)
	}
	if *duration <= 0 {
		return fmt.Errorf("%w: --duration must be positive", errUsage)
	}
	if *timeout <= 0 {
		return fmt.Errorf("%w: --timeout must be positive", errUsage)
	}
	key := clusterAPIKey(*apiKey, st)
	spread := traffic.Spread{}
	prog := &attackProgress{}
	opts := traffic.AttackOptions{
		URL: *rawURL, APIKey: key, Target: *target, SpaceID: *space, Rate: rate,
		Duration: *duration, Workers: *workers, MaxWorkers: *maxWorkers, Timeout: *timeout,
		Name: *name, Via: *via, Observe: func(r *vegeta.Result) { spread.Add(r); prog.add(r) },
		Loader: &traffic.LoaderStats{},
	}
	if err := opts.Validate(); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if *verbose {
		opts.Logger = slog.New(slog.NewTextHandler(stderr, nil))
	}
	if *every <= 0 {
		return fmt.Errorf("%w: --progress-every must be positive", errUsage)
	}
	if *out == "" {
		*out = defaultOutDir(st, *cf.name)
	}
	arts, err := openArtefacts(*out, "attack", st, history.Command{Labels: map[string]string{
		"url": redact.URL(*rawURL), "target": *target, "rate": rate.String(), "duration": duration.String(),
	}}, true)
	if err != nil {
		return err
	}
	opts.Recorder = arts.rec
	opts.Results = arts.results
	if lf.enabled() {
		return attackFromLoaders(ctx, fs, lf, opts, arts, spread, stdout, stderr)
	}

	fmt.Fprintf(stderr, "attacking %s (%s) at %s for %s (as %s)\n", redact.URL(*rawURL), *target, rate, *duration, arts.name)
	stop := func() {}
	if !*quiet {
		stop = prog.start(stderr, *duration, *every)
	}
	m, aerr := traffic.Attack(ctx, opts)
	stop()
	if cerr := arts.close(); aerr == nil {
		aerr = cerr
	}
	if m != nil {
		if err := vegeta.NewTextReporter(m).Report(stdout); err != nil {
			return fmt.Errorf("write report: %w", err)
		}
		fmt.Fprintf(stdout, "\nNode spread (%s header):\n%s", octopusapi.HeaderNode, spread)
		fmt.Fprintf(stdout, "\n%s\n", opts.Loader)
		fmt.Fprintf(stdout, "\nhistory: %s (as %s)\nresults: %s\n", arts.historyPath(), arts.name, arts.resultsPath())
	}
	return aerr
}

// attackProgress shows an attack as it runs: requests, the rate achieved,
// errors so far and the time left; one line rewritten in place on a
// terminal, a line every few seconds otherwise.
type attackProgress struct {
	requests, errors atomic.Int64
}

func (p *attackProgress) add(r *vegeta.Result) {
	p.requests.Add(1)
	if r.Error != "" || r.Code < 200 || r.Code >= 400 {
		p.errors.Add(1)
	}
}

func (p *attackProgress) line(began time.Time, d time.Duration) string {
	el := time.Since(began)
	n := p.requests.Load()
	rate := 0.0
	if s := el.Seconds(); s > 0 {
		rate = float64(n) / s
	}
	left := max(0, d-el).Round(time.Second)
	return fmt.Sprintf("%d requests, %.1f/s achieved, %d errors, %s left", n, rate, p.errors.Load(), left)
}

// start reports to w until the returned stop is called (which prints a
// last line).
func (p *attackProgress) start(w io.Writer, d, every time.Duration) (stop func()) {
	term := false
	if f, ok := w.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
		term, every = true, 250*time.Millisecond
	}
	began := time.Now()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if term {
					fmt.Fprintf(w, "\r\033[K%s", p.line(began, d))
				} else {
					fmt.Fprintln(w, p.line(began, d))
				}
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
		if term {
			fmt.Fprint(w, "\r\033[K")
		}
		fmt.Fprintln(w, p.line(began, d))
	}
}

// attackFromLoaders sends the attack from --loaders workers and prints the
// merged report, the node spread and each worker's figures.
func attackFromLoaders(ctx context.Context, fs *flag.FlagSet, lf loaderFlags, opts traffic.AttackOptions, arts *artefacts, spread traffic.Spread, stdout, stderr io.Writer) error {
	job := loaders.Job{Kind: loaders.KindAttack, Attack: &loaders.AttackJob{
		URL: opts.URL, APIKey: opts.APIKey, Target: opts.Target, SpaceID: opts.SpaceID,
		Freq: opts.Rate.Freq, Per: opts.Rate.Per, Duration: opts.Duration, Workers: opts.Workers,
		MaxWorkers: opts.MaxWorkers, Timeout: opts.Timeout, Name: opts.Name, Via: opts.Via,
	}}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	lo, err := lf.options(fs, job, arts.rec, arts.results, spread.Add, log)
	if err != nil {
		arts.close()
		return err
	}
	fmt.Fprintf(stderr, "attacking %s (%s) at %s for %s from %d loaders on %s (as %s)\n",
		redact.URL(opts.URL), opts.Target, opts.Rate, opts.Duration, lo.Count, lo.Engine.Name(), arts.name)
	res, lerr := loaders.Run(ctx, lo)
	if cerr := arts.close(); lerr == nil {
		lerr = cerr
	}
	if res == nil {
		return lerr
	}
	if err := vegeta.NewTextReporter(&res.Metrics).Report(stdout); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	fmt.Fprintf(stdout, "\nNode spread (%s header):\n%s", octopusapi.HeaderNode, spread)
	fmt.Fprintln(stdout, "\nLoaders:")
	res.WriteSummary(stdout)
	fmt.Fprintf(stdout, "\nhistory: %s (as %s)\nresults: %s\n", arts.historyPath(), arts.name, arts.resultsPath())
	if lerr == nil {
		lerr = unexpectedDeaths(res, lo.Kill)
	}
	return lerr
}
