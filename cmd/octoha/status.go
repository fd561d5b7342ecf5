package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/octoha/octoha/fakes/api"
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
}

type statusReport struct {
	Name       string              `json:"name"`
	RunDir     string              `json:"runDir"`
	OwnerPID   int                 `json:"ownerPid"`
	OwnerAlive bool                `json:"ownerAlive"`
	LBURL      string              `json:"lbURL"`
	LBPing     int                 `json:"lbPing"`
	LBKind     string              `json:"lbKind"`
	Nodes      []nodeStatus        `json:"nodes"`
	Components []cluster.Component `json:"components"`
	Notes      []string            `json:"notes,omitempty"`
}

func runStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("status", stderr)
	name := fs.String("name", "default", "cluster name (names the default run directory)")
	runDir := fs.String("run-dir", "", "run directory (default /tmp/octoha-<uid>/<name>)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
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
	st, err := local.ReadState(dir)
	if err != nil {
		return fmt.Errorf("no cluster in %s (start one with octoha up): %w", dir, err)
	}
	rep := collectStatus(ctx, st)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	printStatus(stdout, rep)
	return nil
}

func collectStatus(ctx context.Context, st *local.State) statusReport {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	rep := statusReport{Name: st.Name, RunDir: st.RunDir, OwnerPID: st.SupervisorPID, OwnerAlive: st.Alive(), LBURL: st.LBURL, LBKind: st.LBKind, Components: st.Components}
	if !rep.OwnerAlive {
		rep.Notes = append(rep.Notes, fmt.Sprintf("the cluster's owner (pid %d) is gone: the cluster is down; run octoha down to clean up", st.SupervisorPID))
	}
	rep.LBPing, _, _ = cluster.PingStatus(ctx, client, st.LBURL)

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
	if key, err := local.ReadAPIKey(st.RunDir); err == nil {
		urls := []string{st.LBURL}
		for _, n := range st.Nodes {
			urls = append(urls, n.URL)
		}
		for _, u := range urls {
			if list, err := getNodes(ctx, client, u, key); err == nil {
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
		}
		if pid := pids["node "+n.Name]; pid > 0 {
			alive := st.Running(pid)
			ns.ProcessLive = &alive
		}
		rep.Nodes = append(rep.Nodes, ns)
	}
	return rep
}

func getNodes(ctx context.Context, client *http.Client, baseURL, key string) ([]api.Node, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+api.NodesAllPath, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set(api.HeaderAPIKey, key)
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
	fmt.Fprintf(w, "load balancer %s (%s): ping %s\n\n", r.LBURL, r.LBKind, codeText(r.LBPing))
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tURL\tPING\tLB STATE\tDRAINING\tLAST SEEN\tPROCESS")
	for _, n := range r.Nodes {
		drain, seen, live := "?", "?", "?"
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
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n.Name, n.URL, codeText(n.Ping), lbs, drain, seen, live)
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
