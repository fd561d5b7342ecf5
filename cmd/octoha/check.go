package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/octoha/octoha/fakes/node/launch"
	"github.com/octoha/octoha/harness/byhand"
	"github.com/octoha/octoha/harness/checker"
	"github.com/octoha/octoha/harness/cluster/local"
	"github.com/octoha/octoha/harness/history"
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

// fromCluster fills what flags left unset from the cluster octoha up
// started (its load balancer, nodes and Packages directory), unless --url
// names another one; st is nil then.
func (f *checkFlags) fromCluster(fs *flag.FlagSet, cf clusterFlags, stderr io.Writer) (st *local.State, err error) {
	if *f.lbURL == "" || flagWasSet(fs, "name") || flagWasSet(fs, "run-dir") {
		if st, _, err = cf.state(fs); err != nil {
			if *f.lbURL == "" {
				return nil, fmt.Errorf("%w: --url is required when no cluster runs (%v)", errUsage, err)
			}
			return nil, err
		}
		if *f.lbURL == "" {
			*f.lbURL = st.LBURL
		}
		if len(f.nodeFlags) == 0 {
			for _, n := range st.Nodes {
				f.nodeFlags = append(f.nodeFlags, n.Name+"="+n.URL)
			}
		}
		if *f.filesDir == "" {
			d := byhand.PackagesDir(st)
			if _, err := os.Stat(d); err == nil {
				*f.filesDir = d
			} else {
				fmt.Fprintf(stderr, "note: the cluster's Packages directory %s cannot be read here: leftovers not checked\n", d)
			}
		}
	}
	return st, nil
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

	st, err := f.fromCluster(fs, cf, stderr)
	if err != nil {
		return err
	}
	if len(f.histories) == 0 {
		if *f.out == "" {
			*f.out = defaultOutDir(st, *cf.name)
		}
		f.histories = append(f.histories, filepath.Join(*f.out, historyFileName))
	}
	if *f.lbURL == "" {
		return fmt.Errorf("%w: --url (the load balancer) is required", errUsage)
	}
	if err := checkBaseURL(*f.lbURL); err != nil {
		return fmt.Errorf("%w: --url: %v", errUsage, err)
	}
	key := clusterAPIKey(*f.apiKey, st)
	if key == "" {
		return fmt.Errorf("%w: an API key is required: set $%s (or --api-key)", errUsage, checkAPIKeyEnv)
	}
	if !octopusapi.ValidSpaceID(*f.space) {
		return fmt.Errorf("%w: --space %q is not a space ID like %s", errUsage, *f.space, octopusapi.DefaultSpaceID)
	}
	if *f.concurrency <= 0 || *f.timeout <= 0 || *f.stall <= 0 || *f.allowOutside < 0 {
		return fmt.Errorf("%w: --concurrency, --timeout and --stall-timeout must be positive, --allowed-outside-failures not negative", errUsage)
	}
	nodes, err := parseCheckNodes(f.nodeFlags, f.downFlags)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	for _, d := range f.downFlags {
		fmt.Fprintf(stdout, "%s: treated as down (--down): not read\n", d)
	}
	rules, err := parseMinOps(f.minOpsFlags)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	ignore, err := parseStatuses(f.ignoreFlags)
	if err != nil {
		return err
	}
	g := *f.grace
	if g == 0 {
		g = -1 // the flag's 0 means no grace; the option's 0 means the default
	}

	h, err := loadHistories(f.histories)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	for _, line := range markFaultedDown(h, nodes) {
		fmt.Fprintln(stdout, line)
	}
	var files *checker.FileListing
	if *f.filesDir != "" {
		if files, err = checker.ListDir(*f.filesDir); err != nil {
			return fmt.Errorf("%w: --files-dir: %v", errUsage, err)
		}
	}

	opts := checker.Options{
		Collect: checker.CollectOptions{
			DeepNodes: *f.deepNodes, DeepLimit: *f.deepLimit, Files: files, Concurrency: *f.concurrency,
			StallTimeout: *f.stall,
		},
		Leftovers:   checker.LeftoverOptions{StrictOrphans: *f.strictOrphans},
		Convergence: checker.ConvergenceOptions{EjectWithin: *f.ejectWithin, RejoinWithin: *f.rejoinWithin},
		ErrorWindow: checker.ErrorWindowOptions{Grace: g, AllowedOutsideFailures: *f.allowOutside, IgnoreStatus: ignore},
		MinOps:      rules,
	}
	if *f.deepLimit <= 0 {
		opts.Collect.DeepLimit = -1 // never, unless --deep-nodes
	}
	// Tasks the history shows created (octoha tasks) are judged too, by
	// the cluster's own task timing when it is a local one.
	if len(h.OpsOfKind(history.KindTaskCreate)) > 0 {
		opts.Tasks = byhand.TaskCheckOptions(st, 0)
	}
	tg := checker.Target{LBURL: *f.lbURL, Nodes: nodes, APIKey: key, SpaceID: *f.space}
	cctx, cancel := context.WithTimeout(ctx, *f.timeout)
	defer cancel()
	rep, err := checker.Run(cctx, h, tg, opts)
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
		printCheckReport(stdout, rep)
	}
	if failed := len(rep.Failed()); failed > 0 {
		return checksFailed{failed: failed, total: len(rep.Results)}
	}
	return nil
}

// parseStatuses reads --ignore-status values.
func parseStatuses(flags []string) ([]int, error) {
	var codes []int
	for _, s := range flags {
		code, err := strconv.Atoi(s)
		if err != nil || code < 100 || code > 599 {
			return nil, fmt.Errorf("%w: --ignore-status %q is not an HTTP status", errUsage, s)
		}
		codes = append(codes, code)
	}
	return codes, nil
}

// markFaultedDown marks the nodes that the history shows faulted and not
// recovered as down (not read), as the runner does, and says so.
func markFaultedDown(h *history.History, nodes []checker.Endpoint) []string {
	var lines []string
	for _, f := range checker.MarkFaultedDown(h, nodes) {
		lines = append(lines, fmt.Sprintf("%s: treated as down: fault %s (%s at %s) was not recovered; not read",
			f.Target, f.ID, f.Kind, f.Start.Local().Format("15:04:05")))
	}
	return lines
}

// checkBaseURL accepts http(s)://host[:port][/prefix].
func checkBaseURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q: want http(s)://host[:port]", u.Redacted())
	}
	return nil
}

// parseCheckNodes parses Name=URL flags; names in down are not live.
func parseCheckNodes(nodeFlags, down []string) ([]checker.Endpoint, error) {
	var nodes []checker.Endpoint
	seen := map[string]bool{}
	for _, f := range nodeFlags {
		name, raw, ok := strings.Cut(f, "=")
		name = strings.TrimSpace(name)
		if !ok || name == "" || raw == "" {
			return nil, fmt.Errorf("--node %q: want Name=URL", f)
		}
		if name == checker.ViaLB || seen[name] {
			return nil, fmt.Errorf("--node %q: the name must be unique and not %q", f, checker.ViaLB)
		}
		if err := checkBaseURL(raw); err != nil {
			return nil, fmt.Errorf("--node %s: %v", name, err)
		}
		seen[name] = true
		nodes = append(nodes, checker.Endpoint{Name: name, URL: raw, Live: true})
	}
	for _, d := range down {
		if !seen[d] {
			return nil, fmt.Errorf("--down %q: no --node has that name", d)
		}
		for i := range nodes {
			if nodes[i].Name == d {
				nodes[i].Live = false
			}
		}
	}
	return nodes, nil
}

// parseMinOps parses [KIND=]N rules.
func parseMinOps(flags []string) ([]checker.MinOpsRule, error) {
	var rules []checker.MinOpsRule
	for _, f := range flags {
		kind, num, ok := strings.Cut(f, "=")
		if !ok {
			kind, num = "", f
		}
		n, err := strconv.Atoi(num)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("--min-ops %q: want [KIND=]N with N ≥ 1", f)
		}
		rules = append(rules, checker.MinOpsRule{Kind: strings.TrimSpace(kind), N: n})
	}
	return rules, nil
}

// loadHistories loads the files; several are merged (which renumbers ops).
func loadHistories(paths []string) (*history.History, error) {
	var hs []*history.History
	for _, p := range paths {
		h, err := history.Load(p)
		if err != nil {
			return nil, err
		}
		hs = append(hs, h)
	}
	if len(hs) == 1 {
		return hs[0], nil
	}
	return history.Merge(hs...), nil
}

// printCheckReport writes one line per check, then its figures and
// evidence indented, then a verdict line.
func printCheckReport(w io.Writer, rep *checker.Report) {
	width := 0
	for _, r := range rep.Results {
		width = max(width, len(r.Name))
	}
	skipped := 0
	for _, r := range rep.Results {
		if r.Status == checker.Skip {
			skipped++
		}
		fmt.Fprintf(w, "%-4s  %-*s  %s\n", strings.ToUpper(string(r.Status)), width, r.Name, r.Summary)
		if len(r.Figures) > 0 {
			var fs []string
			for _, f := range r.Figures {
				fs = append(fs, f.String())
			}
			fmt.Fprintf(w, "      %s\n", strings.Join(fs, "  "))
		}
		for _, e := range r.Evidence {
			fmt.Fprintf(w, "      - %s\n", e)
		}
	}
	failed := len(rep.Failed())
	if failed > 0 {
		fmt.Fprintf(w, "FAIL: %d of %d checks failed (%d skipped)\n", failed, len(rep.Results), skipped)
		return
	}
	fmt.Fprintf(w, "PASS: %d checks passed (%d skipped)\n", len(rep.Results)-skipped, skipped)
}
