package local

import (
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteText writes the report as `octoha status` shows it: the owner, the
// load balancer's ping, one row per node, the components, the notes and
// a verdict line.
func (r StatusReport) WriteText(w io.Writer) {
	owner := "running"
	if !r.OwnerAlive {
		owner = "GONE"
	}
	fmt.Fprintf(w, "cluster %q  (owner pid %d %s, run dir %s)\n", r.Name, r.OwnerPID, owner, r.RunDir)
	lbPing := PingText(r.LBPing)
	if r.LBPing == 0 && r.LBPingErr != "" {
		lbPing += " (" + r.LBPingErr + ")"
	}
	fmt.Fprintf(w, "load balancer %s (%s): ping %s\n\n", r.LBURL, r.LBKind, lbPing)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tSTATE\tPID\tURL\tPING\tLB STATE\tDRAINING\tRANK\tTASKS\tLAST SEEN\tPROCESS")
	for _, n := range r.Nodes {
		fmt.Fprintln(tw, n.row())
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

// row is the node's tab-separated row; "?" where it is not known.
func (n NodeStatus) row() string {
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
	return strings.Join([]string{n.Name, n.State, pid, n.URL, PingText(n.Ping), lbs, drain, rank, tasks, seen, live}, "\t")
}

// WriteEndpoints writes the cluster's endpoint table as `octoha up` shows
// it: the load balancer, each node, where the API key is, the other
// components, the load balancer's driver and the run directory.
func (st *State) WriteEndpoints(w io.Writer) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "load balancer\t%s\t%s\n", st.LBURL, st.LBKind)
	for _, n := range st.Nodes {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", n.Name, n.URL, n.ID)
	}
	fmt.Fprintf(tw, "API key\tin %s (mode 0600)\t\n", filepath.Join(st.RunDir, APIKeyFile))
	embedded := func(yes bool) string {
		if yes {
			return "  [EMBEDDED]"
		}
		return ""
	}
	for _, c := range st.Components {
		if strings.HasPrefix(c.Part, "node ") || c.Part == "load balancer" {
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s%s\n", c.Part, c.Location, c.Description, embedded(c.Embedded))
	}
	for _, c := range st.Components {
		if c.Part == "load balancer" {
			fmt.Fprintf(tw, "lb driver\t%s%s\t\n", c.Description, embedded(c.Embedded))
		}
	}
	fmt.Fprintf(tw, "run dir\t%s\t\n", st.RunDir)
	tw.Flush()
}
