package checker

import (
	"slices"

	"github.com/octoha/octoha/harness/history"
	"github.com/octoha/octoha/harness/nemesis"
)

// downKinds are the faults that leave a node unable to answer until they
// are recovered. A drained node still serves reads, and a slowed or lossy
// link still carries them: those nodes are read.
var downKinds = []string{nemesis.KindKill, nemesis.KindPause, nemesis.KindRestart, nemesis.KindPartition}

// KeepsNodeDown reports whether fault f, while open, leaves its target
// node unable to answer. It is the one decision of which faulted nodes
// the checks do not read, for the runner and for octoha check alike.
func KeepsNodeDown(f history.Fault) bool {
	return f.Target != "" && slices.Contains(downKinds, f.Kind)
}

// MarkFaultedDown marks as not live every live node that the history shows
// under a fault that keeps it down (KeepsNodeDown) and was not recovered,
// and returns those faults, one per node marked, in the nodes' order.
func MarkFaultedDown(h *history.History, nodes []Endpoint) []history.Fault {
	var marked []history.Fault
	for i := range nodes {
		n := &nodes[i]
		if !n.Live {
			continue
		}
		f, ok := h.OpenFault(n.Name, downKinds...)
		if !ok {
			continue
		}
		n.Live = false
		marked = append(marked, f)
	}
	return marked
}
