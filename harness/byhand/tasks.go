package byhand

import (
	"context"
	"fmt"
	"io"
	"maps"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/octoha/octoha/fakes/node/launch"
	"github.com/octoha/octoha/harness/checker"
	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/cluster/local"
	"github.com/octoha/octoha/harness/history"
	"github.com/octoha/octoha/harness/scenario"
	"github.com/octoha/octoha/harness/tasks"
	"github.com/octoha/octoha/internal/redact"
	"github.com/octoha/octoha/octopusapi"
)

// TasksOptions are what a by-hand tasks command talks to and records in.
type TasksOptions struct {
	// URL is the load balancer; State the cluster when it is a local one
	// (its nodes are then read directly), else nil.
	URL   string
	State *local.State
	// APIKey is the key given on the command line ("" for the cluster's
	// own, else $OCTOHA_API_KEY); SpaceID the space.
	APIKey, SpaceID string
	// Out is the output directory ("" DefaultOutDir of the cluster Name).
	Out, Name string
	// Labels describe the command in the history.
	Labels map[string]string
}

// Tasks is one by-hand tasks command: its driver and its part of the
// shared history.
type Tasks struct {
	Driver *tasks.Driver
	Arts   *Artefacts
	State  *local.State
}

// OpenTasks joins the shared history as a tasks command and builds the
// driver. The nodes are read directly when the cluster is a local one
// reached through its own load balancer; else the node list is read
// through the URL.
func OpenTasks(o TasksOptions) (*Tasks, error) {
	key := APIKey(o.APIKey, o.State)
	if key == "" {
		return nil, fmt.Errorf("%w: an API key is required: set $%s (or --api-key)", ErrUsage, launch.EnvAPIKey)
	}
	var nodes []tasks.Node
	if o.State != nil && o.State.LBURL == o.URL {
		for _, n := range o.State.Nodes {
			nodes = append(nodes, tasks.Node{Name: n.Name, URL: n.URL})
		}
	} else {
		nodes = []tasks.Node{{Name: tasks.ViaLB, URL: o.URL}}
	}
	if o.Out == "" {
		o.Out = DefaultOutDir(o.State, o.Name)
	}
	labels := maps.Clone(o.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels["url"] = redact.URL(o.URL)
	arts, err := Open(o.Out, "tasks", o.State, history.Command{Labels: labels}, false)
	if err != nil {
		return nil, err
	}
	d, err := tasks.New(tasks.Options{URL: o.URL, APIKey: key, SpaceID: o.SpaceID, Nodes: nodes, Recorder: arts.Rec})
	if err != nil {
		arts.Close()
		return nil, fmt.Errorf("%w: %v", ErrUsage, err)
	}
	return &Tasks{Driver: d, Arts: arts, State: o.State}, nil
}

// Created are the IDs of the tasks the shared history shows created, in
// the order they were.
func (s *Tasks) Created() ([]string, error) {
	h, err := history.Load(s.Arts.HistoryPath())
	if err != nil {
		return nil, err
	}
	return checker.NewTaskModel(h).IDs, nil
}

// Watched is what a watch of tasks saw.
type Watched struct {
	// Start is when the watch began; Tasks the final view of each task.
	Start time.Time
	Tasks []history.TaskView
	// FinishErr says what could not be read at the end (a note).
	FinishErr error
	// Report holds the task checks' verdicts over the whole shared history.
	Report *checker.Report
}

// Watch follows the session's tasks until every one is terminal or within
// passes, calling progress with a line whenever what it sees changes, then
// reads their final states and logs and judges them with the task checks.
func (s *Tasks) Watch(ctx context.Context, every, within time.Duration, progress func(elapsed time.Duration, line string)) (*Watched, error) {
	start := time.Now()
	deadline := start.Add(within)
	last := ""
	for {
		_ = s.Driver.Poll(ctx)
		s.Driver.ObserveNodes(ctx)
		line := ProgressLine(s.Driver)
		if line != last {
			progress(time.Since(start), line)
			last = line
		}
		if len(s.Driver.Open()) == 0 || !time.Now().Before(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("interrupted: %w", context.Cause(ctx))
		case <-time.After(every):
		}
	}
	w := &Watched{Start: start, FinishErr: s.Driver.Finish(ctx), Tasks: s.Driver.Tasks()}
	if err := s.Arts.Rec.Err(); err != nil {
		return w, err
	}
	h, err := history.Load(s.Arts.HistoryPath())
	if err != nil {
		return w, err
	}
	w.Report = &checker.Report{Results: checker.Tasks(h, *TaskCheckOptions(s.State, within))}
	return w, nil
}

// ProgressLine is one line of what the driver last saw: tasks by state,
// then each node's rank, running tasks and cap.
func ProgressLine(d *tasks.Driver) string {
	c := d.Counts()
	var parts []string
	for _, st := range octopusapi.TaskStates {
		if c[st] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", st, c[st]))
		}
	}
	line := strings.Join(parts, "  ")
	var ns []string
	for _, n := range d.Nodes() {
		tag := ""
		switch {
		case n.Offline:
			tag = " offline"
		case n.Draining:
			tag = " draining"
		}
		rank := ""
		if n.Rank != "" {
			rank = " " + n.Rank
		}
		ns = append(ns, fmt.Sprintf("%s%s %d/%d%s", n.Name, rank, n.RunningTasks, n.MaxConcurrentTasks, tag))
	}
	if len(ns) > 0 {
		line += "  |  " + strings.Join(ns, "  ")
	}
	return line
}

// TaskCheckOptions are the task checks' bounds: the cluster's own task
// timing when it is a local one (st), else Octopus's (a 20 s poll); an
// unknown cluster's nodes may see a cancel at once, so a cancelled task
// that still ends Success is judged as ignoring it.
func TaskCheckOptions(st *local.State, within time.Duration) *checker.TaskOptions {
	spec := cluster.Defaults()
	if st != nil {
		spec = st.Spec
	}
	opts := scenario.TaskCheckOptions(spec, within)
	if st == nil {
		opts.CancelGrace = 0
	}
	return opts
}

// FollowCreated follows the tasks the shared history shows created and
// those named; it is a usage error when there is none.
func (s *Tasks) FollowCreated(ids ...string) error {
	created, err := s.Created()
	if err != nil {
		return err
	}
	s.Driver.Follow(created...)
	s.Driver.Follow(ids...)
	if len(s.Driver.Tasks()) == 0 {
		return fmt.Errorf("%w: no task to watch: %s holds no created task (octoha tasks create) and no --id was given", ErrUsage, s.Arts.HistoryPath())
	}
	return nil
}

// ToCancel is ids and, with last > 0, the last tasks the shared history
// shows created; it is a usage error when that is none.
func (s *Tasks) ToCancel(ids []string, last int) ([]string, error) {
	if last <= 0 {
		return ids, nil
	}
	created, err := s.Created()
	if err != nil {
		return nil, err
	}
	ids = append(ids, created[max(0, len(created)-last):]...)
	if len(ids) == 0 {
		return nil, fmt.Errorf("%w: %s holds no created task", ErrUsage, s.Arts.HistoryPath())
	}
	return ids, nil
}

// WriteTasks writes one row per task: its state, node and times relative
// to start.
func WriteTasks(w io.Writer, vs []history.TaskView, start time.Time) {
	rel := func(t *time.Time) string {
		if t == nil {
			return "-"
		}
		return fmt.Sprintf("%+.1fs", t.Sub(start).Seconds())
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TASK\tSTATE\tNODE\tQUEUED\tSTARTED\tCOMPLETED\tERROR")
	for _, v := range vs {
		node := v.Node
		if node == "" {
			node = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", v.ID, v.State, node, rel(v.QueueTime), rel(v.StartTime), rel(v.CompletedTime), v.Error)
	}
	tw.Flush()
}
