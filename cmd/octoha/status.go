package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mattn/go-isatty"

	"github.com/octoha/octoha/fakes/api"
	"github.com/octoha/octoha/harness/apiclient"
	"github.com/octoha/octoha/harness/checker"
	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/cluster/local"
	"github.com/octoha/octoha/harness/lb"
)

// nodeStatus is one node's line in `octoha status`.
type nodeStatus struct {
	Name        string     `json:"name"`
	ID          string     `json:"id"`
	URL         string     `json:"url"`
	Ping        int        `json:"ping"` // direct ping status; 0 = no answer
	PingError   string     `json:"pingError,omitempty"`
	LBState     string     `json:"lbState"`
	LBCheck     string     `json:"lbCheck,omitempty"`
	Draining    *bool      `json:"draining,omitempty"`
	LastSeen    *time.Time `json:"lastSeen,omitempty"`
	Offline     *bool      `json:"offline,omitempty"`
	ProcessLive *bool      `json:"processAlive,omitempty"`
	// Rank, RunningTasks and TaskCap are the Nodes page's columns, from
	// the shared database: Leader or Follower, the tasks the node holds
	// and its MaxConcurrentTasks.
	Rank         string `json:"rank,omitempty"`
	RunningTasks *int   `json:"runningTasks,omitempty"`
	TaskCap      *int   `json:"taskCap,omitempty"`
	PID          int    `json:"pid,omitempty"`
	// State sums the node up: OK (serving through the LB), DRAINING,
	// UNHEALTHY (answers, but not 200), NOT ANSWERING (process alive),
	// DEAD (process gone), OUT (answers 200 but the LB has it out).
	State string `json:"state"`
}

type statusReport struct {
	Name       string              `json:"name"`
	RunDir     string              `json:"runDir"`
	OwnerPID   int                 `json:"ownerPid"`
	OwnerAlive bool                `json:"ownerAlive"`
	LBURL      string              `json:"lbURL"`
	LBPing     int                 `json:"lbPing"`
	LBPingErr  string              `json:"lbPingError,omitempty"`
	LBKind     string              `json:"lbKind"`
	Nodes      []nodeStatus        `json:"nodes"`
	Components []cluster.Component `json:"components"`
	Notes      []string            `json:"notes,omitempty"`
	// Degraded lists why the cluster is not fully serving (empty: it is).
	Degraded []string `json:"degraded,omitempty"`
}

// statusDegradedCode is status's exit code when the cluster is degraded
// (a node not serving, the load balancer not answering 200, the owner
// gone), so scripts can wait on it: 0 all serving, 1 error, 2 usage.
const statusDegradedCode = 3

type statusDegraded struct{ reasons []string }

func (e statusDegraded) Error() string {
	return "cluster degraded: " + strings.Join(e.reasons, "; ")
}
func (e statusDegraded) ExitCode() int { return statusDegradedCode }

func runStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("status", stderr)
	name := fs.String("name", "default", "cluster name (names the default run directory)")
	runDir := fs.String("run-dir", "", "run directory (default /tmp/octoha-<uid>/<name>)")
	asJSON := fs.Bool("json", false, "print JSON")
	watch := fs.Bool("watch", false, "refresh until Ctrl-C (or --watch-for)")
	every := fs.Duration("interval", 2*time.Second, "refresh interval with --watch")
	watchFor := fs.Duration("watch-for", 0, "with --watch, stop after this long (0: until Ctrl-C)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: octoha status [--name CLUSTER | --run-dir DIR] [--json] [--watch [--interval D] [--watch-for D]]\n\nExit code: 0 every node serving, %d degraded (a node not serving, the load balancer\nnot answering 200, the owner gone), 1 no cluster or another error, 2 usage.\n\nFlags:\n", statusDegradedCode)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *every <= 0 || *watchFor < 0 {
		return fmt.Errorf("%w: --interval must be positive, --watch-for not negative", errUsage)
	}
	if err := local.Supported(); err != nil {
		return err
	}
	dir := *runDir
	if dir == "" {
		dir = local.DefaultRunDir(*name)
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	collect := func(ctx context.Context) (statusReport, error) {
		st, err := local.ReadState(dir)
		if err != nil {
			return statusReport{}, fmt.Errorf("no cluster in %s (start one with octoha up): %w", dir, err)
		}
		return collectStatus(ctx, st), nil
	}
	show := func(rep statusReport) error {
		if *asJSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(rep)
		}
		printStatus(stdout, rep)
		return nil
	}
	if !*watch {
		rep, err := collect(ctx)
		if err != nil {
			return err
		}
		if err := show(rep); err != nil {
			return err
		}
		if len(rep.Degraded) > 0 {
			return statusDegraded{rep.Degraded}
		}
		return nil
	}
	if *watchFor > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *watchFor)
		defer cancel()
	}
	term := false
	if f, ok := stdout.(*os.File); ok && isatty.IsTerminal(f.Fd()) && !*asJSON {
		term = true
	}
	var rep statusReport
	for shown := false; ; shown = true {
		r, err := collect(ctx)
		if ctx.Err() != nil && shown {
			break // stopped mid-refresh: the last complete view stands
		}
		if err != nil {
			return err
		}
		rep = r
		if term {
			fmt.Fprint(stdout, "\033[H\033[2J")
		}
		if err := show(rep); err != nil {
			return err
		}
		if !*asJSON {
			fmt.Fprintf(stdout, "(%s; every %s, Ctrl-C stops)\n", time.Now().Format("15:04:05"), *every)
			if !term {
				fmt.Fprintln(stdout)
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(*every):
			continue
		}
		break
	}
	if len(rep.Degraded) > 0 {
		return statusDegraded{rep.Degraded}
	}
	return nil
}

func collectStatus(ctx context.Context, st *local.State) statusReport {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	// The key goes only to this cluster's own addresses (issue 11 item 3).
	origins := []string{st.LBURL}
	for _, n := range st.Nodes {
		origins = append(origins, n.URL)
	}
	client, err := apiclient.New(apiclient.Options{Origins: origins, Timeout: 2 * time.Second})
	if err != nil {
		client = &http.Client{Timeout: 2 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	rep := statusReport{Name: st.Name, RunDir: st.RunDir, OwnerPID: st.SupervisorPID, OwnerAlive: st.Alive(), LBURL: st.LBURL, LBKind: st.LBKind, Components: st.Components}
	if !rep.OwnerAlive {
		rep.Notes = append(rep.Notes, fmt.Sprintf("the cluster's owner (pid %d) is gone: the cluster is down; run octoha down to clean up", st.SupervisorPID))
	}
	// The LB's ping: a balancer may route one attempt to a node that just
	// died or froze; ask again before saying it does not answer.
	for attempt := 0; attempt < 3; attempt++ {
		code, _, err := cluster.PingStatus(ctx, client, st.LBURL)
		rep.LBPing, rep.LBPingErr = code, ""
		if err != nil {
			rep.LBPingErr = err.Error()
		}
		if code == http.StatusOK || ctx.Err() != nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}

	names := make([]string, len(st.Nodes))
	for i, n := range st.Nodes {
		names[i] = n.Name
	}
	lbStates := map[string]lb.ServerState{}
	if states, err := lb.ReadStates(ctx, lb.Kind(st.LBKind), st.LBDir, names); err == nil {
		for _, s := range states {
			lbStates[s.Name] = s
		}
	} else {
		rep.Notes = append(rep.Notes, "load balancer state unavailable: "+err.Error())
	}

	// Heartbeats and drain flags come from the shared database, through
	// any node that answers (as an operator would read them).
	rows := map[string]api.Node{}
	// The key goes through apiclient, to the cluster's own origins only.
	key, err := local.ReadAPIKey(st.RunDir)
	var kc *http.Client
	if err == nil {
		kc, err = apiclient.New(apiclient.Options{APIKey: key, Origins: origins, Timeout: 2 * time.Second})
	}
	if err == nil {
		for _, u := range origins {
			if list, err := getNodes(ctx, kc, u); err == nil {
				for _, n := range list {
					rows[n.Id] = n
				}
				break
			}
		}
	}
	pids := map[string]int{}
	for _, c := range st.Components {
		pids[c.Part] = c.PID
	}
	for _, n := range st.Nodes {
		ns := nodeStatus{Name: n.Name, ID: n.ID, URL: n.URL, LBState: string(lb.StateUnknown)}
		code, _, err := cluster.PingStatus(ctx, client, n.URL)
		ns.Ping = code
		if err != nil {
			ns.PingError = err.Error()
		}
		if s, ok := lbStates[n.Name]; ok {
			ns.LBState, ns.LBCheck = string(s.State), s.Check
		}
		if r, ok := rows[n.ID]; ok {
			d, off := r.IsInMaintenanceMode, r.IsOffline
			ns.Draining, ns.Offline, ns.LastSeen = &d, &off, r.LastSeen
			running, cap := r.RunningTaskCount, r.MaxConcurrentTasks
			ns.Rank, ns.RunningTasks, ns.TaskCap = r.Rank, &running, &cap
		}
		if pid := pids["node "+n.Name]; pid > 0 {
			alive := st.Running(pid)
			ns.ProcessLive, ns.PID = &alive, pid
		}
		ns.State = nodeState(ns)
		if ns.State != "OK" {
			rep.Degraded = append(rep.Degraded, n.Name+" "+ns.State)
		}
		rep.Nodes = append(rep.Nodes, ns)
	}
	if rep.LBPing != http.StatusOK {
		rep.Degraded = append(rep.Degraded, "load balancer ping "+codeText(rep.LBPing))
	}
	if !rep.OwnerAlive {
		rep.Degraded = append([]string{"owner gone"}, rep.Degraded...)
	}
	return rep
}

// nodeState sums up one node from its process, its own ping and the
// load balancer's view.
func nodeState(n nodeStatus) string {
	switch {
	case n.ProcessLive != nil && !*n.ProcessLive:
		return "DEAD"
	case n.Ping == 0:
		return "NOT ANSWERING"
	case n.Ping == http.StatusTeapot || (n.Draining != nil && *n.Draining):
		return "DRAINING"
	case n.Ping != http.StatusOK:
		return "UNHEALTHY"
	case n.LBState != string(lb.StateUnknown) && !checker.IsUp(n.LBState):
		return "OUT"
	}
	return "OK"
}

func getNodes(ctx context.Context, client *http.Client, baseURL string) ([]api.Node, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+api.NodesAllPath, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", api.NodesAllPath, resp.Status)
	}
	var nodes []api.Node
	return nodes, json.NewDecoder(resp.Body).Decode(&nodes)
}

func printStatus(w io.Writer, r statusReport) {
	owner := "running"
	if !r.OwnerAlive {
		owner = "GONE"
	}
	fmt.Fprintf(w, "cluster %q  (owner pid %d %s, run dir %s)\n", r.Name, r.OwnerPID, owner, r.RunDir)
	lbPing := codeText(r.LBPing)
	if r.LBPing == 0 && r.LBPingErr != "" {
		lbPing += " (" + r.LBPingErr + ")"
	}
	fmt.Fprintf(w, "load balancer %s (%s): ping %s\n\n", r.LBURL, r.LBKind, lbPing)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tSTATE\tPID\tURL\tPING\tLB STATE\tDRAINING\tRANK\tTASKS\tLAST SEEN\tPROCESS")
	for _, n := range r.Nodes {
		drain, seen, live, rank, tasks := "?", "?", "?", "?", "?"
		if n.Rank != "" {
			rank = n.Rank
		}
		if n.RunningTasks != nil && n.TaskCap != nil {
			tasks = fmt.Sprintf("%d/%d", *n.RunningTasks, *n.TaskCap)
		}
		if n.Draining != nil {
			drain = fmt.Sprint(*n.Draining)
		}
		if n.LastSeen != nil {
			seen = fmt.Sprintf("%.1fs ago", time.Since(*n.LastSeen).Seconds())
			if n.Offline != nil && *n.Offline {
				seen += " (offline)"
			}
		}
		if n.ProcessLive != nil {
			live = map[bool]string{true: "alive", false: "dead"}[*n.ProcessLive]
		}
		lbs := n.LBState
		if n.LBCheck != "" {
			lbs += " (" + n.LBCheck + ")"
		}
		pid := "-"
		if n.PID > 0 {
			pid = strconv.Itoa(n.PID)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n.Name, n.State, pid, n.URL, codeText(n.Ping), lbs, drain, rank, tasks, seen, live)
	}
	tw.Flush()
	fmt.Fprintln(w, "\nComponents:")
	tw = tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	for _, c := range r.Components {
		kind := "real"
		if c.Embedded {
			kind = "EMBEDDED"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", c.Part, kind, c.Description, c.Location)
	}
	tw.Flush()
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	if len(r.Degraded) > 0 {
		fmt.Fprintf(w, "DEGRADED: %s\n", strings.Join(r.Degraded, "; "))
	} else {
		fmt.Fprintln(w, "OK: every node serving")
	}
}

func codeText(code int) string {
	switch code {
	case 0:
		return "no answer"
	case http.StatusOK:
		return "200 serving"
	case http.StatusTeapot:
		return "418 draining"
	case http.StatusServiceUnavailable:
		return "503 unavailable"
	}
	return fmt.Sprintf("%d", code)
}
