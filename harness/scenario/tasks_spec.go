package scenario

import (
	"time"

	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/tasks"
)

// FIXME(merge tasks-node): map to the node's task flags once the cluster
// spec has them.
func (s Shape) taskSpec(spec *cluster.Spec) {}

func nodeTaskPoll(spec cluster.Spec) time.Duration     { return taskPoll }
func nodeOfflineAfter(spec cluster.Spec) time.Duration { return taskOfflineAfter }

// ExternalTaskTemplate is the task a real cluster's YAML names for the
// harness to queue; ok is false when it names none.
func ExternalTaskTemplate(spec cluster.Spec) (tasks.Template, bool) { return tasks.Template{}, false }
