package byhand

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/octoha/octoha/fakes/node/launch"
	"github.com/octoha/octoha/harness/checker"
	"github.com/octoha/octoha/harness/cluster/local"
	"github.com/octoha/octoha/harness/history"
	"github.com/octoha/octoha/harness/rundir"
	"github.com/octoha/octoha/octopusapi"
)

// CheckOptions are one by-hand check: the histories to judge, the cluster
// to collect what it serves from, and the checkers' bounds, as typed on
// the command line (each is parsed and checked by Check).
type CheckOptions struct {
	// Histories are history files; several are merged. None means the
	// history of the output directory Out ("" DefaultOutDir of the
	// cluster Name).
	Histories []string
	Out, Name string
	// LBURL is the load balancer; Nodes are Name=URL, read directly;
	// Down names nodes not to read.
	LBURL       string
	Nodes, Down []string
	// MinOps are [KIND=]N anti-vacuity rules; IgnoreStatus HTTP statuses
	// that are not the cluster's failures.
	MinOps, IgnoreStatus []string
	// APIKey is the key given ("" for the cluster's own, else
	// $OCTOHA_API_KEY); SpaceID the space.
	APIKey, SpaceID string
	// State is the cluster when it is a local one (its task timing), else nil.
	State *local.State
	// FilesDir is the Packages directory to scan ("" none).
	FilesDir string

	DeepNodes     bool
	DeepLimit     int64
	StrictOrphans bool
	EjectWithin   time.Duration
	RejoinWithin  time.Duration
	// Grace 0 means none (not the checker's default).
	Grace          time.Duration
	AllowedOutside int
	Concurrency    int
	Stall, Timeout time.Duration

	// Print receives what is decided before collecting (nodes not read).
	Print io.Writer
}

// FromCluster fills what the options leave unset from the cluster octoha
// up started: its load balancer, nodes and Packages directory (noting on
// note when that cannot be read here).
func (o *CheckOptions) FromCluster(st *local.State, note io.Writer) {
	o.State = st
	if o.LBURL == "" {
		o.LBURL = st.LBURL
	}
	if len(o.Nodes) == 0 {
		for _, n := range st.Nodes {
			o.Nodes = append(o.Nodes, n.Name+"="+n.URL)
		}
	}
	if o.FilesDir == "" {
		d := PackagesDir(st)
		if _, err := os.Stat(d); err == nil {
			o.FilesDir = d
		} else {
			fmt.Fprintf(note, "note: the cluster's Packages directory %s cannot be read here: leftovers not checked\n", d)
		}
	}
}

// Check loads the histories, collects what the cluster serves afterwards
// over its HTTP API and runs the checkers.
func Check(ctx context.Context, o CheckOptions) (*checker.Report, error) {
	h, tg, opts, err := o.prepare()
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	return checker.Run(cctx, h, tg, opts)
}

// prepare checks and parses the options, loads the histories and says
// which nodes are not read.
func (o CheckOptions) prepare() (*history.History, checker.Target, checker.Options, error) {
	var tg checker.Target
	var opts checker.Options
	if len(o.Histories) == 0 {
		if o.Out == "" {
			o.Out = DefaultOutDir(o.State, o.Name)
		}
		o.Histories = []string{filepath.Join(o.Out, rundir.HistoryFile)}
	}
	if o.LBURL == "" {
		return nil, tg, opts, fmt.Errorf("%w: --url (the load balancer) is required", ErrUsage)
	}
	if err := checkBaseURL(o.LBURL); err != nil {
		return nil, tg, opts, fmt.Errorf("%w: --url: %v", ErrUsage, err)
	}
	key := APIKey(o.APIKey, o.State)
	if key == "" {
		return nil, tg, opts, fmt.Errorf("%w: an API key is required: set $%s (or --api-key)", ErrUsage, launch.EnvAPIKey)
	}
	if !octopusapi.ValidSpaceID(o.SpaceID) {
		return nil, tg, opts, fmt.Errorf("%w: --space %q is not a space ID like %s", ErrUsage, o.SpaceID, octopusapi.DefaultSpaceID)
	}
	if o.Concurrency <= 0 || o.Timeout <= 0 || o.Stall <= 0 || o.AllowedOutside < 0 {
		return nil, tg, opts, fmt.Errorf("%w: --concurrency, --timeout and --stall-timeout must be positive, --allowed-outside-failures not negative", ErrUsage)
	}
	nodes, err := parseNodes(o.Nodes, o.Down)
	if err != nil {
		return nil, tg, opts, fmt.Errorf("%w: %v", ErrUsage, err)
	}
	for _, d := range o.Down {
		fmt.Fprintf(o.Print, "%s: treated as down (--down): not read\n", d)
	}
	if opts, err = o.checkerOptions(); err != nil {
		return nil, tg, opts, err
	}
	h, err := loadHistories(o.Histories)
	if err != nil {
		return nil, tg, opts, fmt.Errorf("%w: %v", ErrUsage, err)
	}
	for _, f := range checker.MarkFaultedDown(h, nodes) {
		fmt.Fprintf(o.Print, "%s: treated as down: fault %s (%s at %s) was not recovered; not read\n",
			f.Target, f.ID, f.Kind, f.Start.Local().Format("15:04:05"))
	}
	if o.FilesDir != "" {
		if opts.Collect.Files, err = checker.ListDir(o.FilesDir); err != nil {
			return nil, tg, opts, fmt.Errorf("%w: --files-dir: %v", ErrUsage, err)
		}
	}
	// Tasks the history shows created (octoha tasks) are judged too, by
	// the cluster's own task timing when it is a local one.
	if len(h.OpsOfKind(history.KindTaskCreate)) > 0 {
		opts.Tasks = TaskCheckOptions(o.State, 0)
	}
	return h, checker.Target{LBURL: o.LBURL, Nodes: nodes, APIKey: key, SpaceID: o.SpaceID}, opts, nil
}

// checkerOptions are the checkers' options from the flags' values.
func (o CheckOptions) checkerOptions() (checker.Options, error) {
	rules, err := parseMinOps(o.MinOps)
	if err != nil {
		return checker.Options{}, fmt.Errorf("%w: %v", ErrUsage, err)
	}
	ignore, err := parseStatuses(o.IgnoreStatus)
	if err != nil {
		return checker.Options{}, err
	}
	g := o.Grace
	if g == 0 {
		g = -1 // the flag's 0 means no grace; the option's 0 means the default
	}
	opts := checker.Options{
		Collect: checker.CollectOptions{
			DeepNodes: o.DeepNodes, DeepLimit: o.DeepLimit, Concurrency: o.Concurrency, StallTimeout: o.Stall,
		},
		Leftovers:   checker.LeftoverOptions{StrictOrphans: o.StrictOrphans},
		Convergence: checker.ConvergenceOptions{EjectWithin: o.EjectWithin, RejoinWithin: o.RejoinWithin},
		ErrorWindow: checker.ErrorWindowOptions{Grace: g, AllowedOutsideFailures: o.AllowedOutside, IgnoreStatus: ignore},
		MinOps:      rules,
	}
	if o.DeepLimit <= 0 {
		opts.Collect.DeepLimit = -1 // never, unless --deep-nodes
	}
	return opts, nil
}

// parseStatuses reads --ignore-status values.
func parseStatuses(flags []string) ([]int, error) {
	var codes []int
	for _, s := range flags {
		code, err := strconv.Atoi(s)
		if err != nil || code < 100 || code > 599 {
			return nil, fmt.Errorf("%w: --ignore-status %q is not an HTTP status", ErrUsage, s)
		}
		codes = append(codes, code)
	}
	return codes, nil
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

// parseNodes parses Name=URL flags; names in down are not live.
func parseNodes(nodeFlags, down []string) ([]checker.Endpoint, error) {
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
