package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/octoha/octoha/fakes/node/launch"
	"github.com/octoha/octoha/harness/byhand"
	"github.com/octoha/octoha/harness/checker"
	"github.com/octoha/octoha/octopusapi"
)

// checkAPIKeyEnv supplies check's API key, so it need not appear on the
// command line: the same variable the nodes read.
const checkAPIKeyEnv = launch.EnvAPIKey

// checksFailed is returned when the checks ran and at least one failed; the
// report has been printed, and the exit code is 1.
type checksFailed struct{ failed, total int }

func (e checksFailed) Error() string {
	return fmt.Sprintf("%d of %d checks failed", e.failed, e.total)
}

func (e checksFailed) ExitCode() int { return 1 }

// checkFlags are octoha check's flags.
type checkFlags struct {
	histories, nodeFlags, downFlags, minOpsFlags, ignoreFlags stringsFlag

	lbURL, out, apiKey, space, filesDir              *string
	jsonOut, deepNodes, strictOrphans                *bool
	deepLimit                                        *int64
	ejectWithin, rejoinWithin, grace, stall, timeout *time.Duration
	allowOutside, concurrency                        *int
}

func (f *checkFlags) register(fs *flag.FlagSet) {
	fs.Var(&f.histories, "history", "history file (JSON lines; repeatable: histories from several machines are merged; default --out's "+historyFileName+")")
	fs.Var(&f.nodeFlags, "node", "a node as Name=URL, read directly to compare it with the load balancer (repeatable; default the nodes of the cluster --name)")
	fs.Var(&f.downFlags, "down", "name of a node that is expected down: not read (repeatable; nodes the history shows faulted and not recovered are down anyway)")
	fs.Var(&f.minOpsFlags, "min-ops", "anti-vacuity rule [KIND=]N: at least N acknowledged ops (of KIND) before the first fault (repeatable)")
	fs.Var(&f.ignoreFlags, "ignore-status", "HTTP status that is not a cluster failure in the error-window check, e.g. 409 (repeatable)")
	f.lbURL = fs.String("url", "", "base URL of the load balancer (default: that of the cluster --name)")
	f.out = fs.String("out", "", "run directory that upload, attack and fault wrote (default "+byHandRoot()+"/<cluster>-<owner pid>)")
	f.apiKey = fs.String("api-key", "", "Octopus API key (default: the cluster's own key, else $"+checkAPIKeyEnv+"; prefer those: flags show in process lists)")
	f.space = fs.String("space", octopusapi.DefaultSpaceID, "space ID")
	f.filesDir = fs.String("files-dir", "", "local Packages directory to scan for leftovers and orphans (default: the cluster's, local or the Samba share's; skipped without one)")
	f.jsonOut = fs.Bool("json", false, "print the report as JSON")
	f.deepNodes = fs.Bool("deep-nodes", false, "download and hash every package through every live node, whatever its size")
	f.deepLimit = fs.Int64("deep-limit", checker.DefaultDeepLimit, "largest package (bytes) downloaded through every live node without --deep-nodes")
	f.ejectWithin = fs.Duration("eject-within", 0, "fail when the LB takes longer to eject a faulted node (0: report only)")
	f.rejoinWithin = fs.Duration("rejoin-within", 0, "fail when a node takes longer to serve again after its fault ends (0: report only)")
	f.grace = fs.Duration("grace", checker.DefaultGrace, "failures this long after a fault's end still belong to it")
	f.allowOutside = fs.Int("allowed-outside-failures", 0, "client failures outside every fault window that still pass")
	f.strictOrphans = fs.Bool("strict-orphans", false, "fail on package files no package row points to")
	f.concurrency = fs.Int("concurrency", checker.DefaultConcurrency, "reads at once while collecting")
	f.stall = fs.Duration("stall-timeout", checker.DefaultStallTimeout, "abandon a read (and report its view unreadable) after this long without progress")
	f.timeout = fs.Duration("timeout", 30*time.Minute, "give up collecting after this long")
}

// runCheck loads one or more histories, collects what the cluster serves
// afterwards over its HTTP API and prints the checkers' verdicts.
func runCheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("check", stderr)
	var f checkFlags
	f.register(fs)
	cf := addClusterFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	o := byhand.CheckOptions{
		Histories: f.histories, Out: *f.out, Name: *cf.name, LBURL: *f.lbURL, Nodes: f.nodeFlags, Down: f.downFlags,
		MinOps: f.minOpsFlags, IgnoreStatus: f.ignoreFlags, APIKey: *f.apiKey, SpaceID: *f.space,
		FilesDir: *f.filesDir, DeepNodes: *f.deepNodes, DeepLimit: *f.deepLimit,
		StrictOrphans: *f.strictOrphans, EjectWithin: *f.ejectWithin, RejoinWithin: *f.rejoinWithin,
		Grace: *f.grace, AllowedOutside: *f.allowOutside, Concurrency: *f.concurrency,
		Stall: *f.stall, Timeout: *f.timeout, Print: stdout,
	}
	// The cluster octoha up started fills what flags left unset, unless
	// --url names another one.
	if o.LBURL == "" || flagWasSet(fs, "name") || flagWasSet(fs, "run-dir") {
		st, _, err := cf.state(fs)
		if err != nil {
			if o.LBURL == "" {
				return fmt.Errorf("%w: --url is required when no cluster runs (%v)", errUsage, err)
			}
			return err
		}
		o.FromCluster(st, stderr)
	}
	rep, err := byhand.Check(ctx, o)
	if err != nil {
		return err
	}
	return reportChecks(stdout, rep, *f.jsonOut)
}

// reportChecks prints the report (as JSON with asJSON) and fails the
// command when a check failed.
func reportChecks(stdout io.Writer, rep *checker.Report, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return fmt.Errorf("write report: %w", err)
		}
	} else {
		rep.WriteText(stdout)
	}
	if failed := len(rep.Failed()); failed > 0 {
		return checksFailed{failed: failed, total: len(rep.Results)}
	}
	return nil
}
