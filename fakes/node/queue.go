package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/octoha/octoha/fakes/blob"
	"github.com/octoha/octoha/fakes/store"
	"github.com/octoha/octoha/octopusapi"
)

// queueState is the server tasks this node is running.
type queueState struct {
	mu      sync.Mutex
	running map[string]*execution
	// pending holds the unsafe mode's claims not yet written: a task read
	// as queued whose claim waits out UnsafeClaimDelay.
	pending map[string]bool
	wg      sync.WaitGroup
}

// execution is this node's run of one task.
type execution struct {
	task  store.Task
	args  octopusapi.TaskArguments
	start time.Time
	// stop carries why the run must end early: TaskCanceled for a cancel,
	// or the state another node already gave the task. Buffered, sent once.
	stop     chan string
	stopOnce sync.Once
	log      *taskLog
}

func (e *execution) signal(state string) {
	e.stopOnce.Do(func() { e.stop <- state })
}

func (q *queueState) count() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.running) + len(q.pending)
}

func (q *queueState) snapshot() []*execution {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := make([]*execution, 0, len(q.running))
	for _, e := range q.running {
		out = append(out, e)
	}
	return out
}

// RunningTasks returns the IDs of the server tasks this node is running.
func (n *Node) RunningTasks() []string {
	var ids []string
	for _, e := range n.queue.snapshot() {
		ids = append(ids, e.task.ID)
	}
	sort.Strings(ids)
	return ids
}

// runQueue polls the shared queue every TaskPoll until ctx is done. Runs
// in progress are abandoned when ctx ends, as when the process is killed:
// their tasks stay Executing until this node restarts (and fails them) or
// the leader sees the node offline.
func (n *Node) runQueue(ctx context.Context) {
	n.failOwnLeftovers(ctx)
	t := time.NewTicker(n.cfg.TaskPoll)
	defer t.Stop()
	for {
		n.pollQueue(ctx)
		select {
		case <-ctx.Done():
			n.queue.wg.Wait()
			return
		case <-t.C:
		}
	}
}

// failOwnLeftovers fails the tasks the database says this node holds but
// this process is not running: a previous incarnation of the node died
// with them (Octopus cancels them when the node restarts).
func (n *Node) failOwnLeftovers(ctx context.Context) {
	tasks, err := n.cfg.DB.ActiveTasks(ctx)
	if err != nil {
		n.log.Debug("cannot look for tasks left by a previous run", "err", err)
		return
	}
	mine := map[string]bool{}
	for _, id := range n.RunningTasks() {
		mine[id] = true
	}
	now := time.Now().UTC()
	for _, t := range tasks {
		if t.ServerNode != n.cfg.Name || mine[t.ID] {
			continue
		}
		msg := fmt.Sprintf("The server node %s restarted while running this task (it was started at %s).", n.cfg.Name, t.StartTime.Format(time.RFC3339Nano))
		n.failTaskOf(ctx, t, msg, now)
	}
}

// failTaskOf marks a task held by another (dead) incarnation or node
// Failed, and writes why into the task's log.
func (n *Node) failTaskOf(ctx context.Context, t store.Task, msg string, now time.Time) {
	ok, err := n.cfg.DB.FinishTask(ctx, t.ID, t.ServerNode, store.TaskFailed, msg, now)
	if err != nil || !ok {
		if err != nil {
			n.log.Warn("cannot fail a dead node's task", "task", t.ID, "serverNode", t.ServerNode, "err", err)
		}
		return
	}
	n.log.Warn("task failed: its node is gone", "task", t.ID, "serverNode", t.ServerNode, "reason", msg)
	l := newTaskLog(n.cfg.TaskLogs, t.ID, n.cfg.Name, now)
	l.add(now, fmt.Sprintf("Task %s marked %s by node %s: %s", t.ID, store.TaskFailed, n.cfg.Name, msg))
	_ = l.flush(ctx)
}

// pollQueue is one look at the queue: it passes cancels on to the runs
// that must stop, then, unless the node is draining or at its cap, claims
// queued tasks oldest first and starts them.
func (n *Node) pollQueue(ctx context.Context) {
	pctx, cancel := context.WithTimeout(ctx, max(n.cfg.TaskPoll, 5*time.Second))
	defer cancel()
	n.checkRunning(pctx)
	// The cap and drain are read from the node's row at every poll, so a
	// PUT through any node takes effect within one poll.
	row, err := n.cfg.DB.Node(pctx, n.cfg.ID)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) && ctx.Err() == nil {
			n.log.Debug("task poll: cannot read this node's row", "err", err)
		}
		return
	}
	if row.IsInMaintenanceMode {
		return
	}
	running := n.queue.count() + int(n.tasks.Load())
	if row.MaxConcurrentTasks-running <= 0 {
		return
	}
	// The queue first: an idle poll of an empty queue costs two queries.
	queued, err := n.cfg.DB.QueuedTasks(pctx, "", row.MaxConcurrentTasks-running)
	if err != nil || len(queued) == 0 {
		if err != nil && ctx.Err() == nil {
			n.log.Debug("task poll: cannot read the queue", "err", err)
		}
		return
	}
	if fair := n.share(pctx, row.MaxConcurrentTasks, running); fair < len(queued) {
		queued = queued[:max(fair, 0)]
	}
	if n.cfg.UnsafeTaskClaim {
		n.unsafeClaims(ctx, queued)
		return
	}
	for _, t := range queued {
		at := time.Now().UTC()
		ok, err := n.cfg.DB.ClaimTask(pctx, t.ID, n.cfg.Name, at)
		if err != nil {
			n.log.Debug("task poll: claim failed", "task", t.ID, "err", err)
			return
		}
		if ok {
			t.State, t.ServerNode, t.StartTime = store.TaskExecuting, n.cfg.Name, at
			n.startTask(ctx, t, at)
		}
	}
}

// share is how many tasks the node may claim now, by Octopus's rule: up to
// its cap, and only while its load (running/cap) stays within the
// cluster's ((executing + queued) / the caps of the live, undrained
// nodes), so a queue spreads over the nodes instead of filling whichever
// polls first. Rounding up lets an idle node always take one. If the
// cluster's figures cannot be read it falls back to the cap alone.
func (n *Node) share(ctx context.Context, cap, running int) int {
	free := cap - running
	if free <= 0 {
		return 0
	}
	rows, err := n.cfg.DB.Nodes(ctx)
	if err != nil {
		return free
	}
	active, err := n.cfg.DB.ActiveTasks(ctx)
	if err != nil {
		return free
	}
	_, pending, err := n.cfg.DB.ListTasks(ctx, store.TaskQuery{States: []string{store.TaskQueued}, Take: 1})
	if err != nil {
		return free
	}
	now := time.Now()
	total := 0
	for _, r := range rows {
		if !r.IsInMaintenanceMode && now.Sub(r.LastSeen) <= n.cfg.OfflineAfter {
			total += r.MaxConcurrentTasks
		}
	}
	if total <= 0 || pending == 0 {
		return min(free, pending)
	}
	// ceil(cap * (active+pending) / total) tasks at most, in integers.
	fair := (cap*(len(active)+pending) + total - 1) / total
	return max(0, min(free, fair-running))
}

// unsafeClaims is the broken claim: no conditional update, and a pause
// between reading the queue and writing the claim in which any other node
// may claim the same tasks. The pause runs beside the poll loop, which
// keeps polling, so with the default pause (two polls) every other unsafe
// node reads the queue inside it and claims the same tasks: the race shows
// every time, even on a loaded machine.
func (n *Node) unsafeClaims(ctx context.Context, queued []store.Task) {
	n.queue.mu.Lock()
	if n.queue.pending == nil {
		n.queue.pending = map[string]bool{}
	}
	var mine []store.Task
	for _, t := range queued {
		if _, runs := n.queue.running[t.ID]; runs || n.queue.pending[t.ID] {
			continue
		}
		n.queue.pending[t.ID] = true
		mine = append(mine, t)
	}
	if len(mine) == 0 {
		n.queue.mu.Unlock()
		return
	}
	n.queue.wg.Add(1)
	n.queue.mu.Unlock()
	go func() {
		defer n.queue.wg.Done()
		defer func() {
			n.queue.mu.Lock()
			for _, t := range mine {
				delete(n.queue.pending, t.ID)
			}
			n.queue.mu.Unlock()
		}()
		t := time.NewTimer(n.cfg.UnsafeClaimDelay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		for _, task := range mine {
			at := time.Now().UTC()
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err := n.cfg.DB.ForceClaimTask(cctx, task.ID, n.cfg.Name, at)
			cancel()
			if err != nil {
				n.log.Debug("unsafe claim failed", "task", task.ID, "err", err)
				return
			}
			task.State, task.ServerNode, task.StartTime = store.TaskExecuting, n.cfg.Name, at
			n.startTask(ctx, task, at)
		}
	}()
}

// checkRunning reads the state of every task this node runs and stops the
// runs that must end: cancelled ones (Cancelling), and ones another node
// has already ended (the leader failed them while this node was out of
// touch). In the unsafe mode a task claimed since by another node is not
// noticed: the broken node checks nothing about ownership.
func (n *Node) checkRunning(ctx context.Context) {
	runs := n.queue.snapshot()
	if len(runs) == 0 {
		return
	}
	ids := make([]string, len(runs))
	for i, e := range runs {
		ids[i] = e.task.ID
	}
	states, err := n.cfg.DB.TaskStates(ctx, ids)
	if err != nil {
		if ctx.Err() == nil {
			n.log.Debug("task poll: cannot read running tasks' states", "err", err)
		}
		return
	}
	for _, e := range runs {
		t, ok := states[e.task.ID]
		switch {
		case !ok:
			e.signal(store.TaskCanceled) // deleted
		case t.State == store.TaskCancelling && (t.ServerNode == n.cfg.Name || n.cfg.UnsafeTaskClaim):
			e.signal(store.TaskCanceled)
		case octopusapi.TaskTerminal(t.State):
			e.signal(t.State)
		}
	}
}

func (n *Node) startTask(ctx context.Context, t store.Task, at time.Time) {
	e := &execution{task: t, start: at, stop: make(chan string, 1), log: newTaskLog(n.cfg.TaskLogs, t.ID, n.cfg.Name, at)}
	_ = json.Unmarshal([]byte(t.Args), &e.args)
	n.queue.mu.Lock()
	if n.queue.running == nil {
		n.queue.running = map[string]*execution{}
	}
	if _, dup := n.queue.running[t.ID]; dup {
		// Only the unsafe mode can claim a task it already runs.
		n.queue.mu.Unlock()
		return
	}
	n.queue.running[t.ID] = e
	n.queue.wg.Add(1)
	n.queue.mu.Unlock()
	n.log.Info("task started", "task", t.ID, "name", t.Name, "durationMs", e.args.DurationMs)
	go n.execute(ctx, e)
}

// execute runs one task to its end and records the outcome.
func (n *Node) execute(ctx context.Context, e *execution) {
	defer n.queue.wg.Done()
	defer func() {
		n.queue.mu.Lock()
		delete(n.queue.running, e.task.ID)
		n.queue.mu.Unlock()
	}()
	t := e.task
	e.log.add(e.start, octopusapi.TaskStartedLine(t.ID, n.cfg.Name, e.start))
	desc := ""
	if t.Description != "" {
		desc = " (" + t.Description + ")"
	}
	e.log.add(time.Now(), fmt.Sprintf("Running %s%s for %dms", t.Name, desc, e.args.DurationMs))
	n.flushLog(ctx, e.log)
	if e.args.Artifact {
		n.writeArtifact(ctx, e)
	}

	state, msg := store.TaskSuccess, ""
	timer := time.NewTimer(time.Duration(e.args.DurationMs) * time.Millisecond)
	defer timer.Stop()
	picked, failed, release := n.holdForTentacle(ctx, e) // tentacles.go; nil for other tasks
	defer release()
	if failed != "" {
		timer.Reset(0)
	}
	select {
	case <-ctx.Done():
		return // abandoned, as by a killed process
	case <-picked:
		e.log.add(time.Now(), "The Tentacle picked up the request: done")
	case <-timer.C:
		switch {
		case failed != "":
			state, msg = store.TaskFailed, failed
			e.log.add(time.Now(), "Error: "+msg)
		case e.args.TentacleId != "":
			state, msg = octopusapi.TaskTimedOut, fmt.Sprintf("The Tentacle %s did not poll node %s within %dms.", e.args.TentacleId, n.cfg.Name, e.args.DurationMs)
			e.log.add(time.Now(), "Error: "+msg)
		}
		if t.Name == octopusapi.TaskKindRetention {
			e.log.add(time.Now(), "Retention: nothing deleted (the fake node keeps every task log and artifact)")
		}
		if e.args.Fail {
			state, msg = store.TaskFailed, "The task failed because its arguments asked it to (Fail: true)."
			e.log.add(time.Now(), "Error: "+msg)
		}
	case s := <-e.stop:
		state = s
		if s == store.TaskCanceled {
			e.log.add(time.Now(), "Cancellation requested: stopping")
		}
	}
	end := time.Now().UTC()
	// The log is whole before the task shows as ended: a client that sees
	// the task completed and reads its raw log finds the finished line.
	e.log.add(end, octopusapi.TaskFinishedLine(t.ID, n.cfg.Name, end, state))
	n.flushLog(ctx, e.log)
	recorded := n.recordFinish(ctx, e, state, msg, end)
	if !recorded.ok {
		e.log.add(end, fmt.Sprintf("This run's outcome was not recorded: the task is already %s on node %q", recorded.state, recorded.node))
		n.flushLog(ctx, e.log)
	}
	n.log.Info("task finished", "task", t.ID, "state", state, "recorded", recorded.ok)
}

type finishResult struct {
	ok          bool
	state, node string
}

// recordFinish writes the run's end state, retrying every poll while the
// database is unreachable (a task must not stay Executing because its
// node lost the database for a while), until ctx ends.
func (n *Node) recordFinish(ctx context.Context, e *execution, state, msg string, at time.Time) finishResult {
	for {
		fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		ok, err := n.cfg.DB.FinishTask(fctx, e.task.ID, n.cfg.Name, state, msg, at)
		var cur store.Task
		if err == nil && !ok {
			cur, err = n.cfg.DB.Task(fctx, e.task.ID)
		}
		cancel()
		if err == nil {
			return finishResult{ok: ok, state: cur.State, node: cur.ServerNode}
		}
		n.log.Warn("cannot record a task's end; retrying", "task", e.task.ID, "state", state, "err", err)
		t := time.NewTimer(min(n.cfg.TaskPoll, time.Second))
		select {
		case <-ctx.Done():
			t.Stop()
			return finishResult{state: "unknown"}
		case <-t.C:
		}
	}
}

// flushLog writes a run's log file, retrying briefly: the TaskLogs store
// may be out for a moment; a line that cannot be written now is written
// with the next flush.
func (n *Node) flushLog(ctx context.Context, l *taskLog) {
	for i := 0; i < 3; i++ {
		if err := l.flush(ctx); err == nil {
			return
		} else if i == 2 || ctx.Err() != nil {
			n.log.Warn("cannot write a task log", "task", l.taskID, "err", err)
			return
		}
		t := time.NewTimer(200 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

func (n *Node) writeArtifact(ctx context.Context, e *execution) {
	name := octopusapi.TaskArtifactPath(e.task.ID, n.cfg.Name)
	actx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	w, err := n.cfg.Artifacts.Create(actx, name)
	if err == nil {
		_, err = fmt.Fprintf(w, "Artifact of task %s, written by node %s at %s\n", e.task.ID, n.cfg.Name, time.Now().UTC().Format(time.RFC3339Nano))
		if err != nil {
			_ = w.Abort()
		} else {
			err = w.Close()
		}
	}
	if err != nil {
		e.log.add(time.Now(), "Could not write the artifact "+name+": "+err.Error())
		n.log.Warn("cannot write a task artifact", "task", e.task.ID, "err", err)
		return
	}
	e.log.add(time.Now(), "Artifact written: "+name)
}

// taskLog is one writer's log file of a task: the whole file is rewritten
// at every flush, so a reader always sees whole lines and no writer ever
// touches another's file (two nodes running one task each have theirs).
type taskLog struct {
	store  blob.Store
	taskID string
	name   string
	mu     sync.Mutex
	lines  []string
}

func newTaskLog(s blob.Store, taskID, nodeName string, at time.Time) *taskLog {
	return &taskLog{store: s, taskID: taskID, name: octopusapi.TaskLogFile(taskID, nodeName, at)}
}

func (l *taskLog) add(at time.Time, line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !strings.HasPrefix(line, "Task ") {
		line = at.UTC().Format("15:04:05.000") + "  " + line
	}
	l.lines = append(l.lines, line)
}

func (l *taskLog) flush(ctx context.Context) error {
	l.mu.Lock()
	body := strings.Join(l.lines, "\n") + "\n"
	l.mu.Unlock()
	fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	// Written aside, then renamed over the file: a reader (or a kill
	// mid-write) never sees the file without the lines it had.
	tmp := l.name + ".partial"
	w, err := l.store.Create(fctx, tmp)
	if err != nil {
		return fmt.Errorf("create task log %s: %w", tmp, err)
	}
	if _, err := io.WriteString(w, body); err != nil {
		_ = w.Abort()
		return fmt.Errorf("write task log %s: %w", tmp, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("close task log %s: %w", tmp, err)
	}
	if err := l.store.Publish(fctx, tmp, l.name, true); err != nil {
		return fmt.Errorf("publish task log %s: %w", l.name, err)
	}
	return nil
}

// readTaskLog concatenates a task's log files in name (start time) order.
func readTaskLog(ctx context.Context, s blob.Store, taskID string) ([]byte, error) {
	files, err := s.Walk(ctx, octopusapi.TaskLogPrefix(taskID))
	if err != nil {
		return nil, fmt.Errorf("list the log files of %s: %w", taskID, err)
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Name < files[j].Name })
	var out []byte
	for _, f := range files {
		if !strings.HasSuffix(f.Name, ".log.txt") {
			continue
		}
		r, err := s.Open(ctx, f.Name)
		if errors.Is(err, blob.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", f.Name, err)
		}
		b, err := io.ReadAll(r)
		r.Close()
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", f.Name, err)
		}
		out = append(out, b...)
	}
	return out, nil
}
