package store

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"strings"
	"time"
)

// Task states as stored; the same words as Octopus's (octopusapi), kept
// here so the store needs no import.
const (
	TaskQueued     = "Queued"
	TaskExecuting  = "Executing"
	TaskCancelling = "Cancelling"
	TaskSuccess    = "Success"
	TaskFailed     = "Failed"
	TaskCanceled   = "Canceled"
)

// TaskIDPrefix starts every task ID: "ServerTasks-<seq>".
const TaskIDPrefix = "ServerTasks-"

// Task is one server task's row: the shared queue is the set of rows in
// state Queued, oldest QueueTime first.
type Task struct {
	ID          string // ServerTasks-<seq>
	SpaceID     string
	Name        string // the task kind, e.g. Health
	Description string
	Args        string // the task's arguments as JSON, opaque to the store
	State       string
	// ServerNode is the Name of the node that claimed the task, "" while
	// it is queued.
	ServerNode    string
	QueueTime     time.Time
	StartTime     time.Time
	CompletedTime time.Time
	LastUpdated   time.Time
	ErrorMessage  string
}

// TaskQuery filters ListTasks. Empty fields match everything.
type TaskQuery struct {
	SpaceID string
	Name    string // the task kind
	States  []string
	Node    string // ServerNode
	IDs     []string
	Skip    int
	Take    int // 0 = all
}

const taskCols = "seq, space_id, name, description, args, state, server_node, queue_ns, start_ns, completed_ns, updated_ns, error_msg"

// activeStates is the SQL list of the states that hold a node.
const activeStates = "('Executing', 'Cancelling')"

// TaskSeq parses a task ID; ok is false if it is not one.
func TaskSeq(id string) (seq int64, ok bool) {
	rest, found := cutPrefixFold(id, TaskIDPrefix)
	if !found {
		return 0, false
	}
	n, err := strconv.ParseInt(rest, 10, 64)
	if err != nil || n <= 0 || strconv.FormatInt(n, 10) != rest {
		return 0, false
	}
	return n, true
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) < len(prefix) || !strings.EqualFold(s[:len(prefix)], prefix) {
		return "", false
	}
	return s[len(prefix):], true
}

func taskID(seq int64) string { return TaskIDPrefix + strconv.FormatInt(seq, 10) }

// CreateTask queues a task: ID, state and times are assigned here
// (QueueTime is t.QueueTime, or now if zero); the queued row is returned.
func (db *DB) CreateTask(ctx context.Context, t Task) (Task, error) {
	if t.SpaceID == "" || t.Name == "" {
		return Task{}, db.errorf("store: create task: space and name are required")
	}
	if t.QueueTime.IsZero() {
		t.QueueTime = time.Now()
	}
	if t.Args == "" {
		t.Args = "{}"
	}
	ctx, cancel := db.op(ctx)
	defer cancel()
	s := db.d.stmt(db.d.insertTask, t.SpaceID, t.Name, t.Description, t.Args, toNanos(t.QueueTime), toNanos(t.QueueTime))
	var seq int64
	if err := db.sql.QueryRowContext(ctx, s.sql, s.args...).Scan(&seq); err != nil {
		return Task{}, db.errorf("store: create %s task: %w", t.Name, err)
	}
	t.ID, t.State, t.ServerNode = taskID(seq), TaskQueued, ""
	t.QueueTime = fromNanos(toNanos(t.QueueTime))
	t.LastUpdated = t.QueueTime
	t.StartTime, t.CompletedTime, t.ErrorMessage = time.Time{}, time.Time{}, ""
	return t, nil
}

// Task returns one task; the error wraps ErrNotFound if there is none.
func (db *DB) Task(ctx context.Context, id string) (Task, error) {
	seq, ok := TaskSeq(id)
	if !ok {
		return Task{}, db.errorf("store: task %q: %w", id, ErrNotFound)
	}
	ctx, cancel := db.op(ctx)
	defer cancel()
	s := db.d.stmt("SELECT "+taskCols+" FROM octoha_task WHERE seq = ?", seq)
	t, err := scanTask(db.sql.QueryRowContext(ctx, s.sql, s.args...))
	if errors.Is(err, sql.ErrNoRows) {
		return Task{}, db.errorf("store: task %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Task{}, db.errorf("store: task %s: %w", id, err)
	}
	return t, nil
}

// ListTasks returns one page of the tasks matching q, newest first (as
// Octopus lists them), and the number of all matches. IDs that are not
// task IDs match nothing.
func (db *DB) ListTasks(ctx context.Context, q TaskQuery) (items []Task, total int, err error) {
	count, list, none := db.d.listTasksStmts(q)
	if none {
		return nil, 0, nil
	}
	ctx, cancel := db.op(ctx)
	defer cancel()
	if err := db.sql.QueryRowContext(ctx, count.sql, count.args...).Scan(&total); err != nil {
		return nil, 0, db.errorf("store: count tasks: %w", err)
	}
	items, err = db.queryTasks(ctx, list)
	if err != nil {
		return nil, 0, db.errorf("store: list tasks: %w", err)
	}
	return items, total, nil
}

// listTasksStmts builds ListTasks's queries; none is true when the query
// can match nothing (every ID given is malformed).
func (d *dialect) listTasksStmts(q TaskQuery) (count, list stmt, none bool) {
	var where []string
	var args []any
	if q.SpaceID != "" {
		where = append(where, "space_id = ?")
		args = append(args, q.SpaceID)
	}
	if q.Name != "" {
		where = append(where, "name = ?")
		args = append(args, q.Name)
	}
	if len(q.States) > 0 {
		where = append(where, "state IN ("+placeholders(len(q.States))+")")
		for _, s := range q.States {
			args = append(args, s)
		}
	}
	if q.Node != "" {
		where = append(where, "server_node = ?")
		args = append(args, q.Node)
	}
	if len(q.IDs) > 0 {
		var seqs []any
		for _, id := range q.IDs {
			if seq, ok := TaskSeq(id); ok {
				seqs = append(seqs, seq)
			}
		}
		if len(seqs) == 0 {
			return stmt{}, stmt{}, true
		}
		where = append(where, "seq IN ("+placeholders(len(seqs))+")")
		args = append(args, seqs...)
	}
	cond := ""
	if len(where) > 0 {
		cond = " WHERE " + strings.Join(where, " AND ")
	}
	count = d.stmt("SELECT COUNT(*) FROM octoha_task"+cond, args...)
	pageSQL, pageArgs := d.page(clampPage(q.Skip), clampPage(q.Take))
	list = d.stmt("SELECT "+taskCols+" FROM octoha_task"+cond+" ORDER BY queue_ns DESC, seq DESC "+pageSQL,
		append(append([]any{}, args...), pageArgs...)...)
	return count, list, false
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// QueuedTasks returns up to limit queued tasks, first in first out (by
// QueueTime, then ID), of one space or, with spaceID "", of all.
func (db *DB) QueuedTasks(ctx context.Context, spaceID string, limit int) ([]Task, error) {
	if limit <= 0 {
		return nil, nil
	}
	ctx, cancel := db.op(ctx)
	defer cancel()
	tasks, err := db.queryTasks(ctx, db.d.queuedTasksStmt(spaceID, limit))
	if err != nil {
		return nil, db.errorf("store: queued tasks: %w", err)
	}
	return tasks, nil
}

func (d *dialect) queuedTasksStmt(spaceID string, limit int) stmt {
	cond, args := "state = 'Queued'", []any{}
	if spaceID != "" {
		cond += " AND space_id = ?"
		args = append(args, spaceID)
	}
	pageSQL, pageArgs := d.page(0, clampPage(limit))
	return d.stmt("SELECT "+taskCols+" FROM octoha_task WHERE "+cond+" ORDER BY queue_ns, seq "+pageSQL, append(args, pageArgs...)...)
}

// ClaimTask makes node the one running a queued task, atomically: the
// update only matches while the task is still Queued, so of several nodes
// claiming one task exactly one gets true, whatever the engine (on
// PostgreSQL and SQL Server the losers wait for the winner's row lock and
// then find the state changed; SQLite serialises writers).
func (db *DB) ClaimTask(ctx context.Context, id, node string, at time.Time) (bool, error) {
	seq, ok := TaskSeq(id)
	if !ok {
		return false, db.errorf("store: claim task %q: %w", id, ErrNotFound)
	}
	return db.execOne(ctx, "claim task "+id, db.d.claimTaskStmt(seq, node, at, true))
}

// ForceClaimTask sets node as the one running a task whatever its state:
// the claim without the lock that OctopusDeploy/Issues#8356 shipped, for
// the fake node's deliberately broken mode only. Two nodes that both read
// the task as Queued both "claim" it and both run it.
func (db *DB) ForceClaimTask(ctx context.Context, id, node string, at time.Time) error {
	seq, ok := TaskSeq(id)
	if !ok {
		return db.errorf("store: force-claim task %q: %w", id, ErrNotFound)
	}
	_, err := db.execOne(ctx, "force-claim task "+id, db.d.claimTaskStmt(seq, node, at, false))
	return err
}

func (d *dialect) claimTaskStmt(seq int64, node string, at time.Time, conditional bool) stmt {
	q := "UPDATE octoha_task SET state = 'Executing', server_node = ?, start_ns = ?, updated_ns = ? WHERE seq = ?"
	if conditional {
		q += " AND state = 'Queued'"
	}
	return d.stmt(q, node, toNanos(at), toNanos(at), seq)
}

// FinishTask ends a task that node holds (Executing or Cancelling with
// node as ServerNode) in state, with an error message for Failed. ok is
// false when the task was no longer node's to end: cancelled while queued,
// already failed by the leader, or claimed by another node.
func (db *DB) FinishTask(ctx context.Context, id, node, state, errMsg string, at time.Time) (bool, error) {
	seq, ok := TaskSeq(id)
	if !ok {
		return false, db.errorf("store: finish task %q: %w", id, ErrNotFound)
	}
	return db.execOne(ctx, "finish task "+id+" as "+state, db.d.finishTaskStmt(seq, node, state, errMsg, at))
}

func (d *dialect) finishTaskStmt(seq int64, node, state, errMsg string, at time.Time) stmt {
	return d.stmt("UPDATE octoha_task SET state = ?, error_msg = ?, completed_ns = ?, updated_ns = ? WHERE seq = ? AND server_node = ? AND state IN "+activeStates,
		state, errMsg, toNanos(at), toNanos(at), seq, node)
}

// CancelTask asks for a task to stop: a queued task becomes Canceled at
// once, an executing one Cancelling (its node ends it Canceled when it next
// looks). Any other state is left as it is. It returns the task after the
// change; the error wraps ErrNotFound if there is no such task.
func (db *DB) CancelTask(ctx context.Context, id string, at time.Time) (Task, error) {
	seq, ok := TaskSeq(id)
	if !ok {
		return Task{}, db.errorf("store: cancel task %q: %w", id, ErrNotFound)
	}
	for _, s := range db.d.cancelTaskStmts(seq, at) {
		done, err := db.execOne(ctx, "cancel task "+id, s)
		if err != nil {
			return Task{}, err
		}
		if done {
			break
		}
	}
	return db.Task(ctx, id)
}

func (d *dialect) cancelTaskStmts(seq int64, at time.Time) []stmt {
	ns := toNanos(at)
	return []stmt{
		d.stmt("UPDATE octoha_task SET state = 'Canceled', completed_ns = ?, updated_ns = ? WHERE seq = ? AND state = 'Queued'", ns, ns, seq),
		d.stmt("UPDATE octoha_task SET state = 'Cancelling', updated_ns = ? WHERE seq = ? AND state = 'Executing'", ns, seq),
	}
}

// ActiveTasks returns every task a node holds (Executing or Cancelling).
func (db *DB) ActiveTasks(ctx context.Context) ([]Task, error) {
	ctx, cancel := db.op(ctx)
	defer cancel()
	tasks, err := db.queryTasks(ctx, db.d.stmt("SELECT "+taskCols+" FROM octoha_task WHERE state IN "+activeStates+" ORDER BY seq"))
	if err != nil {
		return nil, db.errorf("store: active tasks: %w", err)
	}
	return tasks, nil
}

// TaskStates returns the state and ServerNode of each of the given tasks
// that exists, by ID.
func (db *DB) TaskStates(ctx context.Context, ids []string) (map[string]Task, error) {
	var seqs []any
	for _, id := range ids {
		if seq, ok := TaskSeq(id); ok {
			seqs = append(seqs, seq)
		}
	}
	out := map[string]Task{}
	if len(seqs) == 0 {
		return out, nil
	}
	ctx, cancel := db.op(ctx)
	defer cancel()
	tasks, err := db.queryTasks(ctx, db.d.stmt("SELECT "+taskCols+" FROM octoha_task WHERE seq IN ("+placeholders(len(seqs))+")", seqs...))
	if err != nil {
		return nil, db.errorf("store: task states: %w", err)
	}
	for _, t := range tasks {
		out[t.ID] = t
	}
	return out, nil
}

// DeleteTasks removes every task of a space, and returns how many.
func (db *DB) DeleteTasks(ctx context.Context, spaceID string) (int64, error) {
	ctx, cancel := db.op(ctx)
	defer cancel()
	s := db.d.stmt("DELETE FROM octoha_task WHERE space_id = ?", spaceID)
	res, err := db.sql.ExecContext(ctx, s.sql, s.args...)
	if err != nil {
		return 0, db.errorf("store: delete tasks of %s: %w", spaceID, err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// execOne runs an update and reports whether it changed a row.
func (db *DB) execOne(ctx context.Context, what string, s stmt) (bool, error) {
	ctx, cancel := db.op(ctx)
	defer cancel()
	res, err := db.sql.ExecContext(ctx, s.sql, s.args...)
	if err != nil {
		return false, db.errorf("store: %s: %w", what, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, db.errorf("store: %s: rows affected: %w", what, err)
	}
	return n > 0, nil
}

func (db *DB) queryTasks(ctx context.Context, s stmt) ([]Task, error) {
	rows, err := db.sql.QueryContext(ctx, s.sql, s.args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Task
	for rows.Next() {
		t, err := scanTask(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

func scanTask(r scanner) (Task, error) {
	var t Task
	var seq, queued, started, completed, updated int64
	if err := r.Scan(&seq, &t.SpaceID, &t.Name, &t.Description, &t.Args, &t.State, &t.ServerNode,
		&queued, &started, &completed, &updated, &t.ErrorMessage); err != nil {
		return Task{}, err
	}
	t.ID = taskID(seq)
	t.QueueTime, t.StartTime, t.CompletedTime, t.LastUpdated = fromNanos(queued), fromNanos(started), fromNanos(completed), fromNanos(updated)
	return t, nil
}
