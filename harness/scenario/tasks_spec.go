package scenario

import (
	"time"

	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/tasks"
)

// taskSpec sets the nodes' task-queue flags of the shape.
func (s Shape) taskSpec(spec *cluster.Spec) {
	if s.TaskPoll > 0 {
		spec.Node.TaskPoll = s.TaskPoll
	}
	if s.OfflineAfter > 0 {
		spec.Node.OfflineAfter = s.OfflineAfter
	}
	if s.RetentionInterval != 0 {
		spec.Node.RetentionInterval = s.RetentionInterval
	}
	spec.Node.UnsafeTaskClaim = s.UnsafeTaskClaim
}

// nodeTaskPoll is how often the cluster's nodes poll the queue.
func nodeTaskPoll(spec cluster.Spec) time.Duration {
	if spec.Node.TaskPoll > 0 {
		return spec.Node.TaskPoll
	}
	return 20 * time.Second // Octopus's, and the fake node's default
}

// nodeOfflineAfter is the heartbeat age that makes a node offline: the
// fake node's default is 5 heartbeats, at least 5 s.
func nodeOfflineAfter(spec cluster.Spec) time.Duration {
	if spec.Node.OfflineAfter > 0 {
		return spec.Node.OfflineAfter
	}
	return max(5*spec.Node.Heartbeat, 5*time.Second)
}

// nodeLeaderLease is the leader lease: the fake node's default is 3
// heartbeats, at least 3 s.
func nodeLeaderLease(spec cluster.Spec) time.Duration {
	if spec.Node.LeaderLease > 0 {
		return spec.Node.LeaderLease
	}
	return max(3*spec.Node.Heartbeat, 3*time.Second)
}

// ExternalTaskTemplate is the task a real cluster's YAML names for the
// harness to queue (and cancel) on it (external.task); ok is false when it
// names none, and the task scenarios then skip, saying why: queueing work
// the operator did not name would run real deployments.
func ExternalTaskTemplate(spec cluster.Spec) (tasks.Template, bool) {
	if spec.External == nil || spec.External.Task == nil {
		return tasks.Template{}, false
	}
	t := spec.External.Task
	tmpl := tasks.Template{Name: t.Name, Description: t.Description, Arguments: map[string]any{}}
	if tmpl.Description == "" {
		tmpl.Description = "octoha certification task"
	}
	for k, v := range t.Arguments {
		tmpl.Arguments[k] = v
	}
	return tmpl, true
}
