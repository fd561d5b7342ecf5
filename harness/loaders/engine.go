// Package loaders runs octoha's loader workers on a container engine
// (Docker Swarm, Kubernetes) so that load comes from many machines while
// the coordinator keeps the faults, the LB watch and the one history.
//
// An Engine only places workers and removes them; what a worker does is
// `octoha loader` (the join protocol, its share of the load, streaming its
// records back), which is the same on every engine.
package loaders

import (
	"context"
	"time"
)

// WorkerSpec is what every worker of one run gets.
type WorkerSpec struct {
	// RunID names every resource the engine creates
	// ("octoha-loader-<RunID>"), so Remove and a leak check find them.
	RunID string
	// Count is the number of workers; each gets an index 0..Count-1.
	Count int
	// Image holds the octoha binary (the node image does).
	Image string
	// Command is the worker's argv. Its index reaches it as the
	// environment variable IndexEnv (Swarm: from the task slot;
	// Kubernetes: from JOB_COMPLETION_INDEX).
	Command []string
	// Env is passed to every worker. Secrets (the API key, the run's
	// join token) travel only here, never in Command, and an engine
	// stores them the way the engine keeps secrets where it has a way.
	Env map[string]string
	// Network is engine-specific: a Swarm network name ("host" on a
	// one-node swarm), ignored by Kubernetes.
	Network string
	// Namespace is the Kubernetes namespace; ignored by Swarm.
	Namespace string
	// CoordinatorPort is the port the coordinator listens on; Kubernetes
	// exposes it through a headless Service.
	CoordinatorPort int
	// Timeout bounds the workers' whole life: the engine stops them after it.
	Timeout time.Duration
}

// IndexEnv carries a worker's index (0-based) into its process.
const IndexEnv = "OCTOHA_LOADER_INDEX"

// SlotEnv carries a Swarm task's {{.Task.Slot}} when IndexEnv is not set.
// A replicated job's slots are 0..N-1, but the template renders slot 0
// as the task's ID (swarmkit names a slot-0 task by its ID; measured on
// Docker 20.10: "2", "1", "ilodltbf…"), so a value that is not a number
// is slot 0.
const SlotEnv = "OCTOHA_LOADER_SWARM_SLOT"

// TimeoutEnv carries WorkerSpec.Timeout to an engine's worker that has no
// deadline of its own (Swarm jobs have none): the worker ends after it.
const TimeoutEnv = "OCTOHA_LOADER_TIMEOUT"

// WorkerState is one worker as the engine sees it.
type WorkerState struct {
	Index int    `json:"index"`
	ID    string `json:"id"`    // the engine's task or pod name
	State string `json:"state"` // pending, running, complete, failed
	// Message is the engine's reason for a failed or pending worker.
	Message string `json:"message,omitempty"`
}

// Worker states.
const (
	StatePending  = "pending"
	StateRunning  = "running"
	StateComplete = "complete"
	StateFailed   = "failed"
)

// Engine places loader workers.
type Engine interface {
	// Name is "swarm" or "kubernetes".
	Name() string
	// Start creates the workers; they run until they finish or Remove.
	Start(ctx context.Context, spec WorkerSpec) (Workers, error)
}

// Workers are the workers of one Start.
type Workers interface {
	// Status reports every worker the engine knows of.
	Status(ctx context.Context) ([]WorkerState, error)
	// Kill ends worker index abruptly (a chaos test of the loaders
	// themselves: its unfinished operations must stay "unknown").
	Kill(ctx context.Context, index int) error
	// Remove deletes everything Start created. It is idempotent and is
	// called however the run ends.
	Remove(ctx context.Context) error
}

// LogReader is implemented by Workers that can show a worker's output: the
// coordinator quotes the end of it for a worker that failed or died.
type LogReader interface {
	// Logs returns up to the last lines lines worker index wrote.
	Logs(ctx context.Context, index, lines int) (string, error)
}
