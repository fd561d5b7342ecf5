package node

import (
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Limits of the synthetic work endpoint.
const (
	maxWorkDuration = time.Minute
	defaultWorkWait = time.Second
)

// taskSlots is the node's task cap at work: at most MaxConcurrentTasks
// pieces of work run at once; more wait for a slot. The cap is read from
// the node's row on every acquire, so a PUT of MaxConcurrentTasks through
// any node takes effect at the next heartbeat, as in Octopus.
type taskSlots struct {
	mu      sync.Mutex
	running int
	freed   chan struct{} // closed and replaced whenever a slot frees
}

func (s *taskSlots) acquire(cap int, wait time.Duration, cancel <-chan struct{}) bool {
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		s.mu.Lock()
		if s.freed == nil {
			s.freed = make(chan struct{})
		}
		if s.running < cap {
			s.running++
			s.mu.Unlock()
			return true
		}
		ch := s.freed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-t.C:
			return false
		case <-cancel:
			return false
		}
	}
}

func (s *taskSlots) release() {
	s.mu.Lock()
	s.running--
	if s.freed != nil {
		close(s.freed)
	}
	s.freed = make(chan struct{})
	s.mu.Unlock()
}

// work handles POST /api/{space}/octoha/work?ms=N[&wait=D]: a fake-only
// endpoint standing in for a server task. It holds one of the node's
// MaxConcurrentTasks slots for N milliseconds, so a node's capacity is
// cap/N tasks per second and a cluster's is the sum over its nodes: the
// seed's "4 small VMs lose 25% of capacity with one down, 2 large lose
// 50%" becomes measurable. A request that finds no free slot within wait
// (default 1s) gets 503; a draining node takes no new work.
func (n *Node) work(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	ms, err := strconv.Atoi(q.Get("ms"))
	// Compared in milliseconds: converting first would overflow.
	if err != nil || ms < 0 || int64(ms) > maxWorkDuration.Milliseconds() {
		writeError(w, http.StatusBadRequest, "ms must be a duration in milliseconds between 0 and 60000.", nil)
		return
	}
	wait := defaultWorkWait
	if ws := q.Get("wait"); ws != "" {
		if wait, err = time.ParseDuration(ws); err != nil || wait < 0 || wait > maxWorkDuration {
			writeError(w, http.StatusBadRequest, "wait must be a duration such as 500ms, at most 1m.", nil)
			return
		}
	}
	st := n.state.Load()
	if st.node.IsInMaintenanceMode {
		writeError(w, http.StatusServiceUnavailable, "This node is draining and takes no new tasks.", nil)
		return
	}
	cap := st.node.MaxConcurrentTasks
	if cap <= 0 {
		cap = n.cfg.MaxConcurrentTasks
	}
	if !n.slots.acquire(cap, wait, r.Context().Done()) {
		writeError(w, http.StatusServiceUnavailable, "The node's task cap ("+strconv.Itoa(cap)+") is reached.", nil)
		return
	}
	n.tasks.Add(1)
	defer func() {
		n.tasks.Add(-1)
		n.slots.release()
	}()
	t := time.NewTimer(time.Duration(ms) * time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
		writeJSON(w, http.StatusOK, map[string]any{"Node": n.cfg.Name, "DurationMs": ms})
	case <-r.Context().Done():
	}
}
