package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/octoha/octoha/fakes/store"
	"github.com/octoha/octoha/octopusapi"
)

// routeTasks serves /api/tasks/... and /api/{space}/tasks/... (space "" for
// the global form): the shared server-task queue.
func (n *Node) routeTasks(w http.ResponseWriter, r *http.Request, space string, seg []string) {
	switch {
	case len(seg) == 0:
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			if n.may(w, r, octopusapi.PermissionTaskView, space) {
				n.listTasks(w, r, space)
			}
		case http.MethodPost:
			if n.may(w, r, octopusapi.PermissionTaskCreate, space) {
				n.createTask(w, r, space)
			}
		default:
			methodNotAllowed(w, "GET, POST")
		}
	case len(seg) == 1:
		if allow(w, r, http.MethodGet) && n.may(w, r, octopusapi.PermissionTaskView, space) {
			n.getTask(w, r, seg[0])
		}
	case len(seg) == 2 && strings.EqualFold(seg[1], "raw"):
		if allow(w, r, http.MethodGet) && n.may(w, r, octopusapi.PermissionTaskView, space) {
			n.rawTaskLog(w, r, seg[0])
		}
	case len(seg) == 2 && strings.EqualFold(seg[1], "details"):
		if allow(w, r, http.MethodGet) && n.may(w, r, octopusapi.PermissionTaskView, space) {
			n.taskDetails(w, r, seg[0])
		}
	case len(seg) == 2 && strings.EqualFold(seg[1], "cancel"):
		if allow(w, r, http.MethodPost) && n.may(w, r, octopusapi.PermissionTaskCancel, space) {
			n.cancelTask(w, r, seg[0])
		}
	default:
		n.notFound(w, r)
	}
}

func taskNotFound(w http.ResponseWriter, id string) {
	writeError(w, http.StatusNotFound, "The ServerTask "+id+" does not exist.", nil)
}

func (n *Node) createTask(w http.ResponseWriter, r *http.Request, space string) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		writeError(w, http.StatusBadRequest, "Could not read the request body.", []string{err.Error()})
		return
	}
	var req octopusapi.TaskCreate
	if err := json.Unmarshal(body, &req); err != nil {
		writeError(w, http.StatusBadRequest, "There was a problem with your request.", []string{"The body is not a valid ServerTask resource: " + err.Error()})
		return
	}
	if req.SpaceId == "" {
		req.SpaceId = space
	}
	if req.SpaceId == "" {
		req.SpaceId = octopusapi.DefaultSpaceID
	}
	var problems []string
	if !octopusapi.ValidTaskKind(req.Name) {
		problems = append(problems, fmt.Sprintf("Unknown task name %q. This node runs: %s.", req.Name, strings.Join(octopusapi.TaskKinds, ", ")))
	}
	if space != "" && req.SpaceId != space {
		problems = append(problems, "The SpaceId in the body ("+req.SpaceId+") does not match the URL ("+space+").")
	} else if canonicalSpace(req.SpaceId) != octopusapi.DefaultSpaceID {
		problems = append(problems, "The space "+req.SpaceId+" does not exist.")
	}
	// Compared in milliseconds: converting first would overflow for the
	// largest int64s and let them through.
	if d := req.Arguments.DurationMs; d < 0 || d > octopusapi.MaxTaskDuration.Milliseconds() {
		problems = append(problems, fmt.Sprintf("Arguments.DurationMs must be between 0 and %d.", octopusapi.MaxTaskDuration.Milliseconds()))
	}
	if len(problems) > 0 {
		writeError(w, http.StatusBadRequest, "There was a problem with your request.", problems)
		return
	}
	args, _ := json.Marshal(req.Arguments)
	t, err := n.cfg.DB.CreateTask(r.Context(), store.Task{
		SpaceID: octopusapi.DefaultSpaceID, Name: req.Name, Description: req.Description, Args: string(args),
		QueueTime: time.Now().UTC(),
	})
	if err != nil {
		n.dbError(w, "queueing a task", err)
		return
	}
	n.log.Info("task queued", "task", t.ID, "name", t.Name, "durationMs", req.Arguments.DurationMs)
	writeJSON(w, http.StatusCreated, taskResource(t, time.Now()))
}

func (n *Node) listTasks(w http.ResponseWriter, r *http.Request, space string) {
	q := r.URL.Query()
	skip, take := paging(r, 30)
	tq := store.TaskQuery{SpaceID: space, Name: q.Get("name"), Node: q.Get("node"), Skip: skip, Take: take}
	var ok bool
	if tq.IDs, ok = boundedList(w, q, "ids"); !ok {
		return
	}
	if tq.States, ok = boundedList(w, q, "states"); !ok {
		return
	}
	for i, s := range tq.States {
		c := canonicalState(s)
		if c == "" {
			writeError(w, http.StatusBadRequest, "There was a problem with your request.",
				[]string{fmt.Sprintf("Unknown task state %q in states. The states are: %s.", s, strings.Join(octopusapi.TaskStates, ", "))})
			return
		}
		tq.States[i] = c
	}
	switch {
	case strings.EqualFold(q.Get("running"), "true"):
		tq.States = []string{octopusapi.TaskExecuting, octopusapi.TaskCancelling}
	case strings.EqualFold(q.Get("active"), "true"):
		tq.States = []string{octopusapi.TaskQueued, octopusapi.TaskExecuting, octopusapi.TaskCancelling}
	}
	items, total, err := n.cfg.DB.ListTasks(r.Context(), tq)
	if err != nil {
		n.dbError(w, "listing tasks", err)
		return
	}
	now := time.Now()
	res := make([]octopusapi.Task, len(items))
	for i, t := range items {
		res[i] = taskResource(t, now)
	}
	self := octopusapi.TasksPath
	if space != "" {
		self = octopusapi.SpaceTasksPath(space)
	}
	writeJSON(w, http.StatusOK, octopusapi.NewPage("ServerTask", res, total, skip, take, self))
}

// canonicalState returns the state named s in any case, or "".
func canonicalState(s string) string {
	for _, st := range octopusapi.TaskStates {
		if strings.EqualFold(s, st) {
			return st
		}
	}
	return ""
}

func (n *Node) readTask(w http.ResponseWriter, r *http.Request, id string) (store.Task, bool) {
	t, err := n.cfg.DB.Task(r.Context(), id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		taskNotFound(w, id)
		return store.Task{}, false
	case err != nil:
		n.dbError(w, "reading task "+id, err)
		return store.Task{}, false
	}
	return t, true
}

func (n *Node) getTask(w http.ResponseWriter, r *http.Request, id string) {
	if t, ok := n.readTask(w, r, id); ok {
		writeJSON(w, http.StatusOK, taskResource(t, time.Now()))
	}
}

func (n *Node) taskDetails(w http.ResponseWriter, r *http.Request, id string) {
	t, ok := n.readTask(w, r, id)
	if !ok {
		return
	}
	log, err := readTaskLog(r.Context(), n.cfg.TaskLogs, t.ID)
	if err != nil {
		n.log.Warn("cannot read a task log", "task", t.ID, "err", err)
	}
	res := taskResource(t, time.Now())
	pct := 0
	if res.IsCompleted {
		pct = 100
	}
	writeJSON(w, http.StatusOK, octopusapi.TaskDetails{
		Task: res, ActivityLogs: []any{}, PhysicalLogSize: int64(len(log)),
		Progress: octopusapi.TaskProgress{ProgressPercentage: pct},
		Links:    octopusapi.Links{"Self": octopusapi.TaskDetailsPath(t.ID)},
	})
}

// rawTaskLog serves the task's log: every writer's file in the TaskLogs
// store, concatenated in the order they were begun.
func (n *Node) rawTaskLog(w http.ResponseWriter, r *http.Request, id string) {
	t, ok := n.readTask(w, r, id)
	if !ok {
		return
	}
	log, err := readTaskLog(r.Context(), n.cfg.TaskLogs, t.ID)
	if err != nil {
		n.log.Warn("cannot read a task log", "task", t.ID, "err", err)
		writeError(w, http.StatusServiceUnavailable, "The Octopus Server could not read the task log of "+t.ID+" from its TaskLogs store.", []string{err.Error()})
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(log)
	}
}

// cancelTask cancels through the shared database, whichever node runs the
// task: a queued task is Canceled at once, an executing one becomes
// Cancelling and its node ends it within one poll.
func (n *Node) cancelTask(w http.ResponseWriter, r *http.Request, id string) {
	before, ok := n.readTask(w, r, id)
	if !ok {
		return
	}
	now := time.Now().UTC()
	t, err := n.cfg.DB.CancelTask(r.Context(), before.ID, now)
	if err != nil {
		n.dbError(w, "cancelling task "+id, err)
		return
	}
	n.log.Info("task cancel requested", "task", t.ID, "from", before.State, "to", t.State, "serverNode", t.ServerNode)
	if before.State == store.TaskQueued && t.State == store.TaskCanceled {
		l := newTaskLog(n.cfg.TaskLogs, t.ID, n.cfg.Name, now)
		l.add(now, fmt.Sprintf("Task %s canceled while queued, by a request to node %s", t.ID, n.cfg.Name))
		n.flushLog(r.Context(), l)
	}
	writeJSON(w, http.StatusOK, taskResource(t, time.Now()))
}

// taskResource renders a task row as Octopus does.
func taskResource(t store.Task, now time.Time) octopusapi.Task {
	res := octopusapi.Task{
		Id: t.ID, SpaceId: t.SpaceID, Name: t.Name, Description: t.Description,
		State: t.State, ServerNode: t.ServerNode, ErrorMessage: t.ErrorMessage,
		IsCompleted:                octopusapi.TaskTerminal(t.State),
		FinishedSuccessfully:       t.State == octopusapi.TaskSuccess,
		HasBeenPickedUpByProcessor: !t.StartTime.IsZero(),
		HasWarningsOrErrors:        t.State == octopusapi.TaskFailed,
		Links: octopusapi.Links{
			"Self":    octopusapi.TaskPath(t.ID),
			"Web":     "/app#/" + t.SpaceID + "/tasks/" + t.ID,
			"Raw":     octopusapi.TaskRawPath(t.ID),
			"Details": octopusapi.TaskDetailsPath(t.ID),
		},
	}
	_ = json.Unmarshal([]byte(t.Args), &res.Arguments)
	ptr := func(tm time.Time) *time.Time {
		if tm.IsZero() {
			return nil
		}
		return &tm
	}
	res.QueueTime, res.StartTime, res.CompletedTime, res.LastUpdatedTime = ptr(t.QueueTime), ptr(t.StartTime), ptr(t.CompletedTime), ptr(t.LastUpdated)
	if !res.IsCompleted {
		res.Links["Cancel"] = octopusapi.TaskCancelPath(t.ID)
	}
	if !t.StartTime.IsZero() {
		end := now
		if !t.CompletedTime.IsZero() {
			end = t.CompletedTime
		}
		res.Duration = octopusapi.HumanDuration(end.Sub(t.StartTime))
	}
	if !t.CompletedTime.IsZero() {
		res.Completed = t.CompletedTime.Format("Monday, 02 January 2006 15:04:05 -07:00")
	}
	return res
}
