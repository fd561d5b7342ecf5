package store

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

func (f *fixture) task(name string, queued time.Time) Task {
	return Task{SpaceID: f.space, Name: name, Description: "test " + name, Args: `{"DurationMs":10}`, QueueTime: queued}
}

func (f *fixture) cleanupTasks(t *testing.T) {
	t.Cleanup(func() { _, _ = f.db.DeleteTasks(testCtx(t), f.space) })
}

// A task's life through the store: queued, listed, claimed once, finished
// by its node only; cancels of queued and executing tasks.
func testTaskLifecycle(t *testing.T, b backend) {
	f := newFixture(t, b)
	f.cleanupTasks(t)
	ctx := testCtx(t)
	t0 := time.Date(2026, 3, 4, 5, 6, 7, 891011121, time.UTC)
	var ids []string
	for i := 0; i < 3; i++ {
		tk, err := f.db.CreateTask(ctx, f.task("Health", t0.Add(time.Duration(i)*time.Second)))
		if err != nil {
			t.Fatal(err)
		}
		if tk.State != TaskQueued || tk.ServerNode != "" || !tk.QueueTime.Equal(t0.Add(time.Duration(i)*time.Second)) {
			t.Fatalf("created %+v", tk)
		}
		ids = append(ids, tk.ID)
	}
	got, err := f.db.Task(ctx, ids[1])
	if err != nil || got.ID != ids[1] || got.Args != `{"DurationMs":10}` || got.Description != "test Health" || got.SpaceID != f.space {
		t.Fatalf("Task = %+v, %v", got, err)
	}
	if _, err := f.db.Task(ctx, "ServerTasks-999999999"); !isNotFound(err) {
		t.Fatalf("missing task: %v", err)
	}
	if _, err := f.db.Task(ctx, "Tasks-1"); !isNotFound(err) {
		t.Fatalf("malformed ID: %v", err)
	}
	// FIFO: the oldest queued first.
	q, err := f.db.QueuedTasks(ctx, f.space, 2)
	if err != nil || len(q) != 2 || q[0].ID != ids[0] || q[1].ID != ids[1] {
		t.Fatalf("queued = %+v, %v", q, err)
	}
	// Listing: newest first, paged, filtered.
	items, total, err := f.db.ListTasks(ctx, TaskQuery{SpaceID: f.space, Take: 2})
	if err != nil || total != 3 || len(items) != 2 || items[0].ID != ids[2] {
		t.Fatalf("list = %d %+v %v", total, items, err)
	}
	items, total, err = f.db.ListTasks(ctx, TaskQuery{SpaceID: f.space, Skip: 2, Take: 2})
	if err != nil || total != 3 || len(items) != 1 || items[0].ID != ids[0] {
		t.Fatalf("page 2 = %d %+v %v", total, items, err)
	}

	at := t0.Add(time.Minute)
	ok, err := f.db.ClaimTask(ctx, ids[0], "Node1", at)
	if err != nil || !ok {
		t.Fatalf("claim: %v %v", ok, err)
	}
	if ok, err := f.db.ClaimTask(ctx, ids[0], "Node2", at); err != nil || ok {
		t.Fatalf("second claim of a claimed task: %v %v", ok, err)
	}
	items, total, err = f.db.ListTasks(ctx, TaskQuery{SpaceID: f.space, States: []string{TaskExecuting}, Node: "Node1"})
	if err != nil || total != 1 || items[0].ID != ids[0] || !items[0].StartTime.Equal(at) || items[0].ServerNode != "Node1" {
		t.Fatalf("executing on Node1 = %+v %v", items, err)
	}
	if _, total, err := f.db.ListTasks(ctx, TaskQuery{SpaceID: f.space, Name: "Retention"}); err != nil || total != 0 {
		t.Fatalf("by another name: %d %v", total, err)
	}
	if _, total, err := f.db.ListTasks(ctx, TaskQuery{SpaceID: f.space, Name: "Health"}); err != nil || total != 3 {
		t.Fatalf("by name: %d %v", total, err)
	}
	items, _, err = f.db.ListTasks(ctx, TaskQuery{SpaceID: f.space, IDs: []string{ids[2], "bogus"}})
	if err != nil || len(items) != 1 || items[0].ID != ids[2] {
		t.Fatalf("by ID = %+v %v", items, err)
	}
	if items, total, err := f.db.ListTasks(ctx, TaskQuery{IDs: []string{"bogus"}}); err != nil || total != 0 || len(items) != 0 {
		t.Fatalf("by bogus ID = %+v %v", items, err)
	}
	// Only the holder finishes it.
	if ok, err := f.db.FinishTask(ctx, ids[0], "Node2", TaskSuccess, "", at); err != nil || ok {
		t.Fatalf("finish by another node: %v %v", ok, err)
	}

	// Cancel: executing → Cancelling (its node then ends it Canceled);
	// queued → Canceled at once; finished → unchanged.
	c, err := f.db.CancelTask(ctx, ids[0], at)
	if err != nil || c.State != TaskCancelling {
		t.Fatalf("cancel executing = %+v %v", c, err)
	}
	act, err := f.db.ActiveTasks(ctx)
	if err != nil || !hasTask(act, ids[0]) {
		t.Fatalf("active = %+v %v", act, err)
	}
	if ok, err := f.db.FinishTask(ctx, ids[0], "Node1", TaskCanceled, "", at.Add(time.Second)); err != nil || !ok {
		t.Fatalf("finish cancelled: %v %v", ok, err)
	}
	c, err = f.db.CancelTask(ctx, ids[1], at)
	if err != nil || c.State != TaskCanceled || !c.CompletedTime.Equal(at) {
		t.Fatalf("cancel queued = %+v %v", c, err)
	}
	if ok, _ := f.db.ClaimTask(ctx, ids[1], "Node1", at); ok {
		t.Fatal("claimed a cancelled task")
	}
	c, err = f.db.CancelTask(ctx, ids[0], at)
	if err != nil || c.State != TaskCanceled {
		t.Fatalf("cancel finished = %+v %v", c, err)
	}
	st, err := f.db.TaskStates(ctx, ids)
	if err != nil || st[ids[0]].State != TaskCanceled || st[ids[1]].State != TaskCanceled || st[ids[2]].State != TaskQueued {
		t.Fatalf("states = %+v %v", st, err)
	}
	// Failed with a message, as the leader does for a dead node's task.
	if ok, _ := f.db.ClaimTask(ctx, ids[2], "Node3", at); !ok {
		t.Fatal("claim 3")
	}
	if ok, err := f.db.FinishTask(ctx, ids[2], "Node3", TaskFailed, "The server node Node3 went offline", at); err != nil || !ok {
		t.Fatal(err)
	}
	if got, _ := f.db.Task(ctx, ids[2]); got.State != TaskFailed || got.ErrorMessage != "The server node Node3 went offline" {
		t.Fatalf("failed task = %+v", got)
	}
}

func hasTask(ts []Task, id string) bool {
	for _, t := range ts {
		if t.ID == id {
			return true
		}
	}
	return false
}

// Several nodes claim from one queue at once, as fast as they can: every
// task is claimed exactly once (the conditional update is the lock).
func testTaskClaimExclusive(t *testing.T, b backend) {
	f := newFixture(t, b)
	f.cleanupTasks(t)
	ctx := testCtx(t)
	const tasks, nodes = 60, 6
	for i := 0; i < tasks; i++ {
		if _, err := f.db.CreateTask(ctx, f.task("AdHocScript", time.Time{})); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	claims := map[string][]string{}
	var wg sync.WaitGroup
	errs := make(chan error, nodes)
	for n := 0; n < nodes; n++ {
		db := openT(t, f.dsn) // each node its own pool, as separate processes
		name := fmt.Sprintf("Node%d", n+1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				q, err := db.QueuedTasks(ctx, f.space, 5)
				if err != nil {
					errs <- err
					return
				}
				if len(q) == 0 {
					return
				}
				for _, tk := range q {
					ok, err := db.ClaimTask(ctx, tk.ID, name, time.Now())
					if err != nil {
						errs <- err
						return
					}
					if ok {
						mu.Lock()
						claims[tk.ID] = append(claims[tk.ID], name)
						mu.Unlock()
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(claims) != tasks {
		t.Fatalf("%d of %d tasks claimed", len(claims), tasks)
	}
	for id, by := range claims {
		if len(by) != 1 {
			t.Errorf("%s claimed by %v", id, by)
		}
	}
	items, _, err := f.db.ListTasks(ctx, TaskQuery{SpaceID: f.space})
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		if it.State != TaskExecuting || it.ServerNode != claims[it.ID][0] {
			t.Errorf("%s: %s on %q, claimed by %v", it.ID, it.State, it.ServerNode, claims[it.ID])
		}
	}
}

// The broken claim: two nodes that read the queue before either writes
// both "claim" every task (what the unsafe node mode reproduces).
func testTaskForceClaim(t *testing.T, b backend) {
	f := newFixture(t, b)
	f.cleanupTasks(t)
	ctx := testCtx(t)
	tk, err := f.db.CreateTask(ctx, f.task("Health", time.Time{}))
	if err != nil {
		t.Fatal(err)
	}
	q1, _ := f.db.QueuedTasks(ctx, f.space, 10)
	q2, _ := f.db.QueuedTasks(ctx, f.space, 10)
	if len(q1) != 1 || len(q2) != 1 {
		t.Fatalf("queued %d %d", len(q1), len(q2))
	}
	if err := f.db.ForceClaimTask(ctx, tk.ID, "Node1", time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := f.db.ForceClaimTask(ctx, tk.ID, "Node2", time.Now()); err != nil {
		t.Fatal(err)
	}
	got, _ := f.db.Task(ctx, tk.ID)
	if got.ServerNode != "Node2" || got.State != TaskExecuting {
		t.Fatalf("after two forced claims: %+v", got)
	}
}

// The leader lease: one holder at a time, renewals keep it, expiry or
// release hands it over with a new term.
func testLease(t *testing.T, b backend) {
	f := newFixture(t, b)
	ctx := testCtx(t)
	name := f.prefix + "leader"
	now := time.Now().UTC()
	ttl := 3 * time.Second
	// Several contenders at the same instant: exactly one wins.
	var wg sync.WaitGroup
	var mu sync.Mutex
	var winners []string
	for i := 0; i < 5; i++ {
		db := openT(t, f.dsn)
		id := fmt.Sprintf("n%d", i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, ok, err := db.AcquireLease(ctx, name, id, "Node-"+id, now, ttl)
			if err != nil {
				t.Error(err)
			}
			if ok {
				mu.Lock()
				winners = append(winners, id)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(winners) != 1 {
		t.Fatalf("winners %v", winners)
	}
	w := winners[0]
	other := "n9"
	l, err := f.db.Lease(ctx, name)
	if err != nil || l.NodeID != w || l.Term != 1 || !l.HeldAt(now) || l.HeldAt(now.Add(ttl)) {
		t.Fatalf("lease = %+v %v", l, err)
	}
	// Renewal by the holder keeps the term; another node is refused.
	l, ok, err := f.db.AcquireLease(ctx, name, w, "Node-"+w, now.Add(time.Second), ttl)
	if err != nil || !ok || l.Term != 1 || !l.Expires.Equal(now.Add(time.Second+ttl)) {
		t.Fatalf("renew = %+v %v %v", l, ok, err)
	}
	if _, ok, _ := f.db.AcquireLease(ctx, name, other, "Node-9", now.Add(2*time.Second), ttl); ok {
		t.Fatal("took a held lease")
	}
	// Expired: another node takes it, with a new term.
	l, ok, err = f.db.AcquireLease(ctx, name, other, "Node-9", now.Add(time.Second+ttl), ttl)
	if err != nil || !ok || l.NodeID != other || l.NodeName != "Node-9" || l.Term != 2 {
		t.Fatalf("takeover = %+v %v %v", l, ok, err)
	}
	// The old holder, back from a pause, cannot renew.
	if _, ok, _ := f.db.AcquireLease(ctx, name, w, "Node-"+w, now.Add(time.Second+ttl+time.Millisecond), ttl); ok {
		t.Fatal("the old leader renewed a lease it had lost")
	}
	// Released: free at once.
	if err := f.db.ReleaseLease(ctx, name, other); err != nil {
		t.Fatal(err)
	}
	l, ok, err = f.db.AcquireLease(ctx, name, w, "Node-"+w, now.Add(time.Second+ttl+2*time.Millisecond), ttl)
	if err != nil || !ok || l.Term != 3 {
		t.Fatalf("after release = %+v %v %v", l, ok, err)
	}
	if l, err := f.db.Lease(ctx, f.prefix+"never"); err != nil || l.NodeID != "" || l.HeldAt(now) {
		t.Fatalf("untaken lease = %+v %v", l, err)
	}
}

func isNotFound(err error) bool { return errors.Is(err, ErrNotFound) }
