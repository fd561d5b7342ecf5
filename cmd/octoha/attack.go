package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/octoha/octoha/fakes/api"
	"github.com/octoha/octoha/harness/history"
	"github.com/octoha/octoha/harness/traffic"
)

// runAttack puts rate-based read load on a cluster with vegeta and prints
// vegeta's report and which node served how many requests.
func runAttack(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("attack", stderr)
	var (
		rawURL     = fs.String("url", "", "base URL of the load balancer or a node (required)")
		target     = fs.String("target", traffic.TargetPing, "what to request: ping, nodes or packages")
		rateS      = fs.String("rate", "50/s", `requests per period, e.g. 200/s, 50/100ms; "0" = as fast as --max-workers allow`)
		duration   = fs.Duration("duration", 10*time.Second, "how long to attack")
		apiKey     = fs.String("api-key", "", "Octopus API key (default $"+trafficAPIKeyEnv+"; ping needs none)")
		space      = fs.String("space", api.DefaultSpaceID, "space ID (target packages)")
		workers    = fs.Uint64("workers", vegeta.DefaultWorkers, "initial workers")
		maxWorkers = fs.Uint64("max-workers", 0, "maximum workers (default unlimited; required with --rate 0)")
		timeout    = fs.Duration("timeout", traffic.DefaultAttackTimeout, "per-request timeout")
		name       = fs.String("name", "", "vegeta attack name (default the target)")
		via        = fs.String("via", "", `recorded as each op's "via" (e.g. lb or a node name)`)
		out        = fs.String("out", "", "directory for "+historyFileName+" and "+attackResultsFileName)
		verbose    = fs.Bool("verbose", false, "log to stderr")
	)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
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
	key := *apiKey
	if key == "" {
		key = os.Getenv(trafficAPIKeyEnv)
	}
	spread := traffic.Spread{}
	opts := traffic.AttackOptions{
		URL: *rawURL, APIKey: key, Target: *target, SpaceID: *space, Rate: rate,
		Duration: *duration, Workers: *workers, MaxWorkers: *maxWorkers, Timeout: *timeout,
		Name: *name, Via: *via, Observe: spread.Add,
	}
	if err := opts.Validate(); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if *verbose {
		opts.Logger = slog.New(slog.NewTextHandler(stderr, nil))
	}
	arts, err := openArtefacts(*out, attackResultsFileName)
	if err != nil {
		return err
	}
	opts.Recorder = arts.rec
	if arts.results != nil { // a nil *os.File in an io.Writer is not nil
		opts.Results = arts.results
	}
	arts.rec.Meta(history.Meta{Scenario: "attack", Labels: map[string]string{
		"url": *rawURL, "target": *target, "rate": rate.String(), "duration": duration.String(),
	}})

	fmt.Fprintf(stderr, "attacking %s (%s) at %s for %s\n", *rawURL, *target, rate, *duration)
	m, aerr := traffic.Attack(ctx, opts)
	if cerr := arts.close(); aerr == nil {
		aerr = cerr
	}
	if m != nil {
		if err := vegeta.NewTextReporter(m).Report(stdout); err != nil {
			return fmt.Errorf("write report: %w", err)
		}
		fmt.Fprintf(stdout, "\nNode spread (%s header):\n%s", api.HeaderNode, spread)
		if *out != "" {
			fmt.Fprintf(stdout, "\nhistory: %s\nresults: %s\n", filepath.Join(*out, historyFileName), filepath.Join(*out, attackResultsFileName))
		}
	}
	return aerr
}
