// Package history is the append-only record of a run: every client operation
// and every fault, with start and end times, as JSON lines. It is the only
// evidence checkers and reports read besides what the cluster serves
// afterwards, so it is written as things happen and survives a crash of the
// harness up to the last complete line. It depends on the standard library
// only.
package history

import (
	"time"
)

// Outcome says what a client knows about an operation's effect.
type Outcome string

const (
	// OK: the server acknowledged the operation (a 2xx).
	OK Outcome = "ok"
	// Failed: the operation definitely did not take effect (the server
	// answered with an error status before or instead of applying it).
	Failed Outcome = "failed"
	// Unknown: the client cannot tell (timeout, reset, proxy error after the
	// body was sent); checkers must allow that it took effect.
	Unknown Outcome = "unknown"
)

// EmptyAck starts the Error of an upload answered 2xx with an empty body
// (no package resource): something acknowledged it without a node's
// answer, as Caddy 2.6 does when its read_body limit cuts a request.
const EmptyAck = "acknowledged with an empty body"

// Operation kinds recorded by the traffic generators.
const (
	KindUpload   = "upload"
	KindPing     = "ping"
	KindNodes    = "nodes"
	KindPackages = "packages"
	KindDownload = "download"
	KindDrain    = "drain"
	KindWork     = "work"
	// KindSignature is a delta-signature request before a delta upload.
	KindSignature = "delta-signature"
)

// Task operation kinds, recorded by the task driver (harness/tasks). Each
// is one HTTP request like any other op (start, end, outcome, the node
// that served it); what it saw of the task queue rides in Task, Tasks,
// Executions and NodeList, so readers that know only packages skip them.
const (
	// KindTaskCreate is POST /api/tasks; Task names the task created.
	KindTaskCreate = "task-create"
	// KindTaskCancel is POST /api/tasks/{id}/cancel; Task names it.
	KindTaskCancel = "task-cancel"
	// KindTaskPoll is one read of the tasks the driver follows; Tasks
	// holds those whose state or node changed since the last poll.
	KindTaskPoll = "task-poll"
	// KindTaskFinal is GET /api/tasks/{id} once the driver is done with a
	// task; Tasks holds its final state.
	KindTaskFinal = "task-final"
	// KindTaskLog is GET /api/tasks/{id}/raw; Executions holds the start
	// and finish lines the log holds, per node.
	KindTaskLog = "task-log"
	// KindTaskNodes is GET /api/octopusservernodes through one node (Via);
	// NodeList holds what it answered: rank, task cap, running tasks.
	KindTaskNodes = "task-nodes"
	// KindTaskCap is PUT /api/octopusservernodes/{id} changing a node's
	// MaxConcurrentTasks; NodeList holds the node as the request set it.
	KindTaskCap = "task-cap"
)

// Server task states, as Octopus spells them.
const (
	TaskQueued     = "Queued"
	TaskExecuting  = "Executing"
	TaskCancelling = "Cancelling"
	TaskSuccess    = "Success"
	TaskFailed     = "Failed"
	TaskCanceled   = "Canceled"
	TaskTimedOut   = "TimedOut"
)

// TaskTerminal reports whether a task in state will not change any more.
func TaskTerminal(state string) bool {
	switch state {
	case TaskSuccess, TaskFailed, TaskCanceled, TaskTimedOut:
		return true
	}
	return false
}

// TaskView is a server task as one response showed it.
type TaskView struct {
	ID    string `json:"id"`
	Name  string `json:"name,omitempty"`
	State string `json:"state"`
	// Node is the task's ServerNode: the node that runs (or ran) it.
	Node          string     `json:"node,omitempty"`
	QueueTime     *time.Time `json:"queueTime,omitempty"`
	StartTime     *time.Time `json:"startTime,omitempty"`
	CompletedTime *time.Time `json:"completedTime,omitempty"`
	Error         string     `json:"error,omitempty"`
}

// Execution is one run of a task on one node, from the task log's start
// line to its finish line (End zero: no finish line).
type Execution struct {
	Node  string    `json:"node"`
	Start time.Time `json:"start"`
	End   time.Time `json:"end,omitzero"`
	State string    `json:"state,omitempty"`
}

// NodeView is one OctopusServerNode as a node list showed it.
type NodeView struct {
	ID                 string     `json:"id,omitempty"`
	Name               string     `json:"name"`
	Rank               string     `json:"rank,omitempty"` // Leader, Follower
	MaxConcurrentTasks int        `json:"cap"`
	RunningTasks       int        `json:"running"`
	Draining           bool       `json:"draining,omitempty"`
	Offline            bool       `json:"offline,omitempty"`
	LastSeen           *time.Time `json:"lastSeen,omitempty"`
}

// Op is one client operation: one HTTP request and its outcome.
type Op struct {
	Seq uint64 `json:"seq"`
	// ID is the operation ID the client sent in the X-Octoha-Op header, so
	// node and load-balancer logs can be joined with the history.
	ID      string    `json:"id,omitempty"`
	Client  string    `json:"client,omitempty"`
	Kind    string    `json:"kind"`
	Start   time.Time `json:"start"`
	End     time.Time `json:"end"`
	Outcome Outcome   `json:"outcome"`
	Status  int       `json:"status,omitempty"`
	// Node is the node that served the request, from its X-Octoha-Node
	// header; empty when no node answered.
	Node string `json:"node,omitempty"`
	// Via is where the request was sent: "lb" or a node name.
	Via   string `json:"via,omitempty"`
	URL   string `json:"url,omitempty"`
	Bytes int64  `json:"bytes,omitempty"` // request body bytes sent
	// Package fields are set for uploads and downloads.
	PackageID string `json:"packageId,omitempty"`
	Version   string `json:"version,omitempty"`
	Hash      string `json:"hash,omitempty"` // expected SHA-1, hex
	Size      int64  `json:"size,omitempty"` // expected size in bytes
	Attempt   int    `json:"attempt,omitempty"`
	// BaseVersion and DeltaBytes are set for a delta upload: the version
	// the delta was built against and the delta's size (Bytes counts the
	// request body; Size is still the full package's).
	BaseVersion string `json:"baseVersion,omitempty"`
	DeltaBytes  int64  `json:"deltaBytes,omitempty"`
	Error       string `json:"error,omitempty"`
	// Note explains an outcome the status alone does not (e.g. a 409 after
	// an unknown attempt, verified to be this client's own package).
	Note string `json:"note,omitempty"`
	// Task is the server task the op acted on (task kinds).
	Task string `json:"task,omitempty"`
	// Tasks, Executions and NodeList are what a task op saw (see the
	// task kinds).
	Tasks      []TaskView  `json:"tasks,omitempty"`
	Executions []Execution `json:"executions,omitempty"`
	NodeList   []NodeView  `json:"nodeList,omitempty"`
	// Command names the command that recorded the op when several share
	// one history (e.g. "attack-2"); see Join.
	Command string `json:"cmd,omitempty"`
}

// Duration is End - Start.
func (o Op) Duration() time.Duration { return o.End.Sub(o.Start) }

// Fault is one injected failure, from injection to recovery.
type Fault struct {
	ID     string    `json:"id"`
	Kind   string    `json:"kind"`             // e.g. "kill", "pause", "drain", "db-outage"
	Target string    `json:"target,omitempty"` // node name, "database", "share"
	Start  time.Time `json:"start"`
	// End is when recovery finished; zero while the fault is active or when
	// the fault has no recovery (a kill without restart).
	End    time.Time `json:"end,omitzero"`
	Detail string    `json:"detail,omitempty"`
	Error  string    `json:"error,omitempty"`
	// Command names the command that injected the fault (see Op.Command).
	Command string `json:"cmd,omitempty"`
}

// Active reports whether t falls inside the fault's window.
func (f Fault) Active(t time.Time) bool {
	return !t.Before(f.Start) && (f.End.IsZero() || t.Before(f.End))
}

// LBState is one observation of a load balancer's view of a server,
// recorded when it changes.
type LBState struct {
	Time   time.Time `json:"time"`
	Server string    `json:"server"` // node name
	State  string    `json:"state"`  // UP, DOWN, DRAIN, MAINT, NOLB, ...
	Detail string    `json:"detail,omitempty"`
	// Command names the command that observed it (see Op.Command).
	Command string `json:"cmd,omitempty"`
}

// Meta describes the run: what was tested and how to replay it.
type Meta struct {
	Time     time.Time         `json:"time"`
	Scenario string            `json:"scenario,omitempty"`
	Seed     int64             `json:"seed,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
}

// Command is one command that joined a history several commands share
// (one run directory: upload, attack, fault, …; see Join).
type Command struct {
	// Name is the command and its number in the history, e.g. "attack-2":
	// its records carry it, and its vegeta results file is named after it.
	Name   string            `json:"name"`
	Time   time.Time         `json:"time"`
	Seed   int64             `json:"seed,omitempty"`
	Labels map[string]string `json:"labels,omitempty"`
}

// entry is one JSON line; exactly one field is set.
type entry struct {
	Op      *Op      `json:"op,omitempty"`
	Fault   *Fault   `json:"fault,omitempty"`
	LB      *LBState `json:"lb,omitempty"`
	Meta    *Meta    `json:"meta,omitempty"`
	Command *Command `json:"command,omitempty"`
}
