package local

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/octoha/octoha/harness/apiclient"
	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/lb"
	"github.com/octoha/octoha/octopusapi"
)

// NodeStatus is one node as `octoha status` shows it.
type NodeStatus struct {
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

// StatusReport is a running cluster as `octoha status` shows it: its
// owner, its load balancer and each node.
type StatusReport struct {
	Name       string              `json:"name"`
	RunDir     string              `json:"runDir"`
	OwnerPID   int                 `json:"ownerPid"`
	OwnerAlive bool                `json:"ownerAlive"`
	LBURL      string              `json:"lbURL"`
	LBPing     int                 `json:"lbPing"`
	LBPingErr  string              `json:"lbPingError,omitempty"`
	LBKind     string              `json:"lbKind"`
	Nodes      []NodeStatus        `json:"nodes"`
	Components []cluster.Component `json:"components"`
	Notes      []string            `json:"notes,omitempty"`
	// Degraded lists why the cluster is not fully serving (empty: it is).
	Degraded []string `json:"degraded,omitempty"`
}

// Status reads a running cluster as an operator would: each node's own
// ping, the load balancer's ping and view, the node rows of the shared
// database (through any node that answers) and the processes.
func Status(ctx context.Context, st *State) StatusReport {
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
	rep := StatusReport{Name: st.Name, RunDir: st.RunDir, OwnerPID: st.SupervisorPID, OwnerAlive: st.Alive(), LBURL: st.LBURL, LBKind: st.LBKind, Components: st.Components}
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
	rows := map[string]octopusapi.Node{}
	// The key goes through apiclient, to the cluster's own origins only.
	key, err := ReadAPIKey(st.RunDir)
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
		ns := NodeStatus{Name: n.Name, ID: n.ID, URL: n.URL, LBState: string(lb.StateUnknown)}
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
		ns.State = nodeSummary(ns)
		if ns.State != "OK" {
			rep.Degraded = append(rep.Degraded, n.Name+" "+ns.State)
		}
		rep.Nodes = append(rep.Nodes, ns)
	}
	if rep.LBPing != http.StatusOK {
		rep.Degraded = append(rep.Degraded, "load balancer ping "+PingText(rep.LBPing))
	}
	if !rep.OwnerAlive {
		rep.Degraded = append([]string{"owner gone"}, rep.Degraded...)
	}
	return rep
}

// nodeSummary sums up one node from its process, its own ping and the
// load balancer's view.
func nodeSummary(n NodeStatus) string {
	switch {
	case n.ProcessLive != nil && !*n.ProcessLive:
		return "DEAD"
	case n.Ping == 0:
		return "NOT ANSWERING"
	case n.Ping == http.StatusTeapot || (n.Draining != nil && *n.Draining):
		return "DRAINING"
	case n.Ping != http.StatusOK:
		return "UNHEALTHY"
	case n.LBState != string(lb.StateUnknown) && !lb.Serving(n.LBState):
		return "OUT"
	}
	return "OK"
}

func getNodes(ctx context.Context, client *http.Client, baseURL string) ([]octopusapi.Node, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+octopusapi.NodesAllPath, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", octopusapi.NodesAllPath, resp.Status)
	}
	var nodes []octopusapi.Node
	return nodes, json.NewDecoder(resp.Body).Decode(&nodes)
}

// PingText reads a ping status as status shows it ("no answer", "200
// serving", "418 draining", …).
func PingText(code int) string {
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
