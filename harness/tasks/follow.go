package tasks

// Following tasks: polling their state, waiting for them to end, and
// reading each one's final state and log.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/octoha/octoha/harness/history"
	"github.com/octoha/octoha/octopusapi"
)

// Poll reads every task the driver follows that it has not seen terminal
// (by id, in batches) and records one task-poll op per batch holding the
// tasks whose state or node changed.
func (d *Driver) Poll(ctx context.Context) error {
	d.mu.Lock()
	var open []string
	for _, id := range d.order {
		if !history.TaskTerminal(d.tasks[id].State) {
			open = append(open, id)
		}
	}
	d.mu.Unlock()
	var errs []error
	for start := 0; start < len(open); start += DefaultBatch {
		batch := open[start:min(start+DefaultBatch, len(open))]
		if err := d.pollBatch(ctx, batch); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (d *Driver) pollBatch(ctx context.Context, ids []string) error {
	c := d.do(ctx, history.KindTaskPoll, http.MethodGet, d.o.URL, octopusapi.TaskListQuery(nil, "", ids, 0, len(ids)), ViaLB, nil)
	if c.op.Outcome != history.OK {
		d.record(c.op)
		return fmt.Errorf("read tasks: %s", opError(c.op))
	}
	var page octopusapi.Page[task]
	if err := json.Unmarshal(c.body, &page); err != nil {
		c.op.Outcome, c.op.Error = history.Failed, "not a task list: "+err.Error()
		d.record(c.op)
		return fmt.Errorf("read tasks: %w", err)
	}
	d.mu.Lock()
	for _, t := range page.Items {
		prev, ok := d.tasks[t.ID]
		if !ok { // a server that ignores ids: keep only ours
			continue
		}
		v := t.view()
		if prev.State != v.State || prev.Node != v.Node {
			c.op.Tasks = append(c.op.Tasks, v)
		}
		d.tasks[t.ID] = v
	}
	d.mu.Unlock()
	d.record(c.op)
	return nil
}

// Watch polls the tasks and reads the node list every interval until ctx
// ends. Request failures are recorded, not returned.
func (d *Driver) Watch(ctx context.Context, every time.Duration) {
	tk := time.NewTicker(every)
	defer tk.Stop()
	for {
		var wg sync.WaitGroup
		wg.Go(func() { _ = d.Poll(ctx) })
		wg.Go(func() { d.ObserveNodes(ctx) })
		wg.Wait()
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
		}
	}
}

// WaitTerminal polls until every task the driver follows is terminal or
// within has passed, and returns those still open (the checkers name
// them); the error is only the context's.
func (d *Driver) WaitTerminal(ctx context.Context, within, every time.Duration) ([]history.TaskView, error) {
	deadline := time.Now().Add(within)
	for {
		_ = d.Poll(ctx)
		open := d.Open()
		if len(open) == 0 || !time.Now().Before(deadline) {
			return open, nil
		}
		select {
		case <-ctx.Done():
			return open, ctx.Err()
		case <-time.After(every):
		}
	}
}

// Open returns the tasks last seen in a non-terminal state.
func (d *Driver) Open() []history.TaskView {
	var out []history.TaskView
	for _, v := range d.Tasks() {
		if !history.TaskTerminal(v.State) {
			out = append(out, v)
		}
	}
	return out
}

// Tasks returns what the driver last saw of each task, in creation order.
func (d *Driver) Tasks() []history.TaskView {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]history.TaskView, 0, len(d.order))
	for _, id := range d.order {
		out = append(out, d.tasks[id])
	}
	return out
}

// Follow adds tasks created elsewhere (another command, the Octopus UI)
// to those the driver polls and finishes.
func (d *Driver) Follow(ids ...string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, id := range ids {
		if _, ok := d.tasks[id]; !ok {
			d.order = append(d.order, id)
			d.tasks[id] = history.TaskView{ID: id}
		}
	}
}

// Counts returns how many tasks the driver last saw in each state.
func (d *Driver) Counts() map[string]int {
	out := map[string]int{}
	for _, v := range d.Tasks() {
		out[v.State]++
	}
	return out
}

// RunningOn returns the tasks last seen Executing or Cancelling on node.
func (d *Driver) RunningOn(node string) []string {
	var out []string
	for _, v := range d.Tasks() {
		if v.Node == node && (v.State == history.TaskExecuting || v.State == history.TaskCancelling) {
			out = append(out, v.ID)
		}
	}
	return out
}

// Finish reads each task's final state and its raw log (the start and
// finish line of every execution), recording a task-final and a task-log
// op per task, one task after the other.
func (d *Driver) Finish(ctx context.Context) error {
	d.mu.Lock()
	ids := slices.Clone(d.order)
	d.mu.Unlock()
	sem := make(chan struct{}, finishConcurrency)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for _, id := range ids {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := d.finishOne(ctx, id); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		return fmt.Errorf("read %d of %d tasks' final state or log: %w", len(errs), len(ids), errs[0])
	}
	return nil
}

func (d *Driver) finishOne(ctx context.Context, id string) error {
	c := d.do(ctx, history.KindTaskFinal, http.MethodGet, d.o.URL, octopusapi.TaskPath(id), ViaLB, nil)
	c.op.Task = id
	var t task
	if c.op.Outcome == history.OK {
		if err := json.Unmarshal(c.body, &t); err != nil {
			c.op.Outcome, c.op.Error = history.Failed, "not a task: "+err.Error()
		} else {
			c.op.Tasks = []history.TaskView{t.view()}
			d.mu.Lock()
			d.tasks[id] = t.view()
			d.mu.Unlock()
		}
	}
	d.record(c.op)
	l := d.do(ctx, history.KindTaskLog, http.MethodGet, d.o.URL, octopusapi.TaskRawPath(id), ViaLB, nil)
	l.op.Task = id
	if l.op.Outcome == history.OK {
		ex, err := octopusapi.ParseTaskLog(bytes.NewReader(l.body))
		if err != nil {
			l.op.Outcome, l.op.Error = history.Failed, err.Error()
		}
		for _, e := range ex {
			if e.TaskID == id {
				l.op.Executions = append(l.op.Executions, history.Execution{Node: e.Node, Start: e.Start, End: e.End, State: e.State})
			}
		}
	}
	d.record(l.op)
	var errs []error
	if c.op.Outcome != history.OK {
		errs = append(errs, fmt.Errorf("read %s: %s", id, opError(c.op)))
	}
	if l.op.Outcome != history.OK {
		errs = append(errs, fmt.Errorf("read %s's log: %s", id, opError(l.op)))
	}
	return errors.Join(errs...)
}
