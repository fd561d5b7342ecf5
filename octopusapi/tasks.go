package octopusapi

import (
	"bufio"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"
	"time"
)

// Server task states, as Octopus spells them. Queued → Executing → one of
// the terminal states; Cancelling is a running task asked to stop.
const (
	TaskQueued     = "Queued"
	TaskExecuting  = "Executing"
	TaskCancelling = "Cancelling"
	TaskSuccess    = "Success"
	TaskFailed     = "Failed"
	TaskCanceled   = "Canceled"
	TaskTimedOut   = "TimedOut"
)

// TaskStates lists every state, non-terminal first.
var TaskStates = []string{TaskQueued, TaskExecuting, TaskCancelling, TaskSuccess, TaskFailed, TaskCanceled, TaskTimedOut}

// TaskTerminal reports whether state is final (IsCompleted in Octopus).
func TaskTerminal(state string) bool {
	switch state {
	case TaskSuccess, TaskFailed, TaskCanceled, TaskTimedOut:
		return true
	}
	return false
}

// TaskActive reports whether a node holds the task (Executing or
// Cancelling): the states that count against a node's task cap.
func TaskActive(state string) bool { return state == TaskExecuting || state == TaskCancelling }

// System task kinds the fake node accepts in POST /api/tasks (the task's
// Name, as Octopus names its built-in tasks). Each runs for its
// Arguments.DurationMs; none touches anything but its own log and
// artifact.
const (
	TaskKindHealth               = "Health"
	TaskKindRetention            = "Retention"
	TaskKindAdHocScript          = "AdHocScript"
	TaskKindSystemIntegrityCheck = "SystemIntegrityCheck"
	TaskKindUpdateCalamari       = "UpdateCalamari"
)

// TaskKinds lists the accepted kinds.
var TaskKinds = []string{TaskKindHealth, TaskKindRetention, TaskKindAdHocScript, TaskKindSystemIntegrityCheck, TaskKindUpdateCalamari}

// ValidTaskKind reports whether kind is one of TaskKinds.
func ValidTaskKind(kind string) bool {
	for _, k := range TaskKinds {
		if k == kind {
			return true
		}
	}
	return false
}

// MaxTaskDuration bounds Arguments.DurationMs.
const MaxTaskDuration = time.Hour

// TaskArguments are the arguments the fake node reads from a task. Real
// Octopus tasks carry others (EnvironmentId, ScriptBody, ...); decoding one
// into this type keeps only these.
type TaskArguments struct {
	// DurationMs is how long the task runs, in milliseconds.
	DurationMs int64
	// Fail makes the task end Failed (with an ErrorMessage) instead of
	// Success.
	Fail bool `json:",omitempty"`
	// Artifact makes the task write one artifact file to the Artifacts
	// store (see TaskArtifactPath).
	Artifact bool `json:",omitempty"`
	// TentacleId (Machines-N) makes the task wait for that polling
	// Tentacle: the node running it holds a request that only the
	// Tentacle's poll of that node picks up; DurationMs then bounds the
	// wait (the task ends TimedOut).
	TentacleId string `json:",omitempty"` //nolint:revive // Octopus's spelling
}

// TaskCreate is the body of POST /api/tasks (or /api/{spaceId}/tasks).
type TaskCreate struct {
	Name        string // one of TaskKinds
	Description string `json:",omitempty"`
	SpaceId     string `json:",omitempty"` //nolint:revive // Octopus's spelling
	Arguments   TaskArguments
}

// Task is a ServerTask resource, with the fields of go-octopusdeploy's
// tasks.Task (v2.114.1).
type Task struct {
	Id          string //nolint:revive // Octopus's spelling
	SpaceId     string //nolint:revive
	Name        string
	Description string
	Arguments   TaskArguments
	State       string
	// Completed is Octopus's human text for when the task ended ("" while
	// it runs).
	Completed       string     `json:",omitempty"`
	QueueTime       *time.Time `json:",omitempty"`
	QueueTimeExpiry *time.Time `json:",omitempty"`
	StartTime       *time.Time `json:",omitempty"`
	LastUpdatedTime *time.Time `json:",omitempty"`
	CompletedTime   *time.Time `json:",omitempty"`
	// ServerNode is the Name of the node that holds (or last held) the
	// task; "" while it is queued.
	ServerNode string `json:",omitempty"`
	// Duration is Octopus's human text for the run time so far.
	Duration                   string `json:",omitempty"`
	ErrorMessage               string `json:",omitempty"`
	IsCompleted                bool
	FinishedSuccessfully       bool
	HasBeenPickedUpByProcessor bool
	HasPendingInterruptions    bool
	HasWarningsOrErrors        bool
	CanRerun                   bool
	Links                      Links
}

// TaskDetails is GET /api/tasks/{id}/details (go-octopusdeploy's
// TaskDetailsResource). The fake has no activity tree: ActivityLogs is
// empty and the log is at Links.Raw.
type TaskDetails struct {
	Task            Task
	ActivityLogs    []any
	PhysicalLogSize int64
	Progress        TaskProgress
	Links           Links
}

// TaskProgress is a task's progress estimate.
type TaskProgress struct {
	ProgressPercentage     int
	EstimatedTimeRemaining string
}

// TaskPath returns the path of one task.
func TaskPath(id string) string { return TasksPath + "/" + url.PathEscape(id) }

// TaskRawPath returns the path of a task's raw log (text/plain).
func TaskRawPath(id string) string { return TaskPath(id) + "/raw" }

// TaskDetailsPath returns the path of a task's details.
func TaskDetailsPath(id string) string { return TaskPath(id) + "/details" }

// TaskCancelPath returns the path that cancels a task (POST); it is also
// served under /api/{spaceId}/tasks/{id}/cancel and
// /api/spaces/{spaceId}/tasks/{id}/cancel (go-octopusdeploy's form).
func TaskCancelPath(id string) string { return TaskPath(id) + "/cancel" }

// SpaceTasksPath returns the space-scoped task collection.
func SpaceTasksPath(spaceID string) string { return SpacePath(spaceID) + "/tasks" }

// TaskListQuery builds the query of GET /api/tasks: states and ids are
// comma-separated, node is a node Name, take 0 leaves the default (30).
// The node also filters by name=<kind>, running=true and active=true.
func TaskListQuery(states []string, node string, ids []string, skip, take int) string {
	q := url.Values{}
	if len(states) > 0 {
		q.Set("states", strings.Join(states, ","))
	}
	if node != "" {
		q.Set("node", node)
	}
	if len(ids) > 0 {
		q.Set("ids", strings.Join(ids, ","))
	}
	if skip > 0 {
		q.Set("skip", fmt.Sprint(skip))
	}
	if take > 0 {
		q.Set("take", fmt.Sprint(take))
	}
	if len(q) == 0 {
		return TasksPath
	}
	return TasksPath + "?" + q.Encode()
}

// TaskLogPrefix is the directory of a task's log files in the TaskLogs
// store: every execution (and every node that changes the task's state
// outside an execution) writes a file of its own under it, so two nodes
// running one task never overwrite each other's lines. The raw log is
// their concatenation, ordered by file name (which starts with the time
// the file was begun).
func TaskLogPrefix(taskID string) string { return strings.ToLower(taskID) }

// TaskLogFile names one log file of a task in the TaskLogs store, begun at
// at by node (the writer of the lines in it). The name sorts by time.
func TaskLogFile(taskID, nodeName string, at time.Time) string {
	return fmt.Sprintf("%s/%020d-%s.log.txt", TaskLogPrefix(taskID), at.UnixNano(), nodeName)
}

// TaskArtifactPath is where a task with Arguments.Artifact writes its
// artifact in the Artifacts store, one file per executing node.
func TaskArtifactPath(taskID, nodeName string) string {
	return strings.ToLower(taskID) + "/artifact-" + nodeName + ".txt"
}

// The two lines every execution writes to its task's log: one when a node
// starts running the task, one when that run ends. Times are UTC,
// RFC 3339 with nanoseconds. A run whose node died has no finished line.
const (
	taskStartedFmt  = "Task %s started on node %s at %s"
	taskFinishedFmt = "Task %s finished on node %s at %s with %s"
)

// TaskStartedLine renders the line a node writes when it starts a task.
func TaskStartedLine(taskID, nodeName string, at time.Time) string {
	return fmt.Sprintf(taskStartedFmt, taskID, nodeName, at.UTC().Format(time.RFC3339Nano))
}

// TaskFinishedLine renders the line a node writes when its run of a task
// ends in state.
func TaskFinishedLine(taskID, nodeName string, at time.Time, state string) string {
	return fmt.Sprintf(taskFinishedFmt, taskID, nodeName, at.UTC().Format(time.RFC3339Nano), state)
}

// TaskLogEvent is a parsed started or finished line.
type TaskLogEvent struct {
	TaskID   string
	Node     string
	At       time.Time
	Finished bool   // false: a started line
	State    string // the end state of a finished line
}

// ParseTaskLogLine parses one line written by TaskStartedLine or
// TaskFinishedLine; ok is false for any other line.
func ParseTaskLogLine(line string) (ev TaskLogEvent, ok bool) {
	f := strings.Fields(strings.TrimSpace(line))
	// Task <id> started on node <name> at <time>
	// Task <id> finished on node <name> at <time> with <state>
	if len(f) < 7 || f[0] != "Task" || f[3] != "on" || f[4] != "node" || f[6] != "at" {
		return TaskLogEvent{}, false
	}
	switch {
	case f[2] == "started" && len(f) == 8:
	case f[2] == "finished" && len(f) == 10 && f[8] == "with":
		ev.Finished, ev.State = true, f[9]
	default:
		return TaskLogEvent{}, false
	}
	at, err := time.Parse(time.RFC3339Nano, f[7])
	if err != nil {
		return TaskLogEvent{}, false
	}
	ev.TaskID, ev.Node, ev.At = f[1], f[5], at.UTC()
	return ev, true
}

// TaskExecution is one node's run of a task, from a task log.
type TaskExecution struct {
	TaskID string
	Node   string
	Start  time.Time
	// End is zero when the log has no finished line for the run (the
	// node died, or the run is still going).
	End   time.Time
	State string // end state; "" when End is zero
}

// ParseTaskLog reads a raw task log and returns its executions in the
// order they started. A node's finished line closes that node's earliest
// open run (a restarted node may run a task again only after its first run
// ended or was abandoned).
func ParseTaskLog(r io.Reader) ([]TaskExecution, error) {
	var out []TaskExecution
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		ev, ok := ParseTaskLogLine(sc.Text())
		if !ok {
			continue
		}
		if !ev.Finished {
			out = append(out, TaskExecution{TaskID: ev.TaskID, Node: ev.Node, Start: ev.At})
			continue
		}
		for i := range out {
			if out[i].Node == ev.Node && out[i].TaskID == ev.TaskID && out[i].End.IsZero() {
				out[i].End, out[i].State = ev.At, ev.State
				break
			}
		}
	}
	if err := sc.Err(); err != nil {
		return out, fmt.Errorf("read task log: %w", err)
	}
	// Files are concatenated in start order already; sort anyway so a
	// reader of several logs can rely on it.
	sort.SliceStable(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out, nil
}

// Node ranks, as Octopus's Nodes page showed them (older servers sent
// Rank in the node resource; the fake keeps it).
const (
	RankLeader   = "Leader"
	RankFollower = "Follower"
)

// HumanDuration renders d as Octopus's task Duration text ("1 second",
// "3 minutes").
func HumanDuration(d time.Duration) string {
	unit := func(n int64, s string) string {
		if n == 1 {
			return "1 " + s
		}
		return fmt.Sprintf("%d %ss", n, s)
	}
	switch {
	case d < time.Minute:
		return unit(int64(d/time.Second), "second")
	case d < time.Hour:
		return unit(int64(d/time.Minute), "minute")
	default:
		return unit(int64(d/time.Hour), "hour")
	}
}
