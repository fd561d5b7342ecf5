package node

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/octoha/octoha/fakes/store"
	"github.com/octoha/octoha/octopusapi"
)

func (n *Node) routeNodes(w http.ResponseWriter, r *http.Request, seg []string) {
	switch {
	case len(seg) == 0:
		if allow(w, r, http.MethodGet) {
			n.listNodes(w, r, true)
		}
	case len(seg) == 1 && strings.EqualFold(seg[0], "all"):
		if allow(w, r, http.MethodGet) {
			n.listNodes(w, r, false)
		}
	case len(seg) == 1 && strings.EqualFold(seg[0], "summary"):
		if allow(w, r, http.MethodGet) {
			n.nodeSummary(w, r)
		}
	case len(seg) == 1:
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			n.getNode(w, r, seg[0])
		case http.MethodPut:
			if n.may(w, r, nodeChangePermission, "") {
				n.putNode(w, r, seg[0])
			}
		case http.MethodDelete:
			if n.may(w, r, nodeChangePermission, "") {
				n.deleteNode(w, r, seg[0])
			}
		default:
			methodNotAllowed(w, "GET, PUT, DELETE")
		}
	case len(seg) == 2 && strings.EqualFold(seg[1], "details"):
		if allow(w, r, http.MethodGet) {
			n.nodeDetails(w, r, seg[0])
		}
	default:
		n.notFound(w, r)
	}
}

// dbError answers a request that failed on the shared database.
func (n *Node) dbError(w http.ResponseWriter, what string, err error) {
	n.log.Warn("database request failed", "what", what, "err", err)
	writeError(w, http.StatusServiceUnavailable, "The Octopus Server could not reach its database while "+what+".", []string{err.Error()})
}

func (n *Node) listNodes(w http.ResponseWriter, r *http.Request, paged bool) {
	rows, err := n.cfg.DB.Nodes(r.Context())
	if err != nil {
		n.dbError(w, "listing nodes", err)
		return
	}
	v := n.loadClusterView(r.Context())
	now := time.Now()
	q := r.URL.Query()
	var ids map[string]bool
	list, ok := boundedList(w, q, "ids")
	if !ok {
		return
	}
	if len(list) > 0 {
		ids = map[string]bool{}
		for _, id := range list {
			ids[id] = true
		}
	}
	partial := strings.ToLower(q.Get("partialName"))
	items := make([]octopusapi.Node, 0, len(rows))
	for _, row := range rows {
		if ids != nil && !ids[row.ID] {
			continue
		}
		if partial != "" && !strings.Contains(strings.ToLower(row.Name), partial) {
			continue
		}
		items = append(items, n.resource(row, now, &v))
	}
	if !paged {
		writeJSON(w, http.StatusOK, items)
		return
	}
	skip, take := paging(r, 30)
	writeJSON(w, http.StatusOK, octopusapi.NewPage("OctopusServerNode", window(items, skip, take), len(items), skip, take, octopusapi.NodesPath))
}

func (n *Node) nodeSummary(w http.ResponseWriter, r *http.Request) {
	rows, err := n.cfg.DB.Nodes(r.Context())
	if err != nil {
		n.dbError(w, "summarising nodes", err)
		return
	}
	v := n.loadClusterView(r.Context())
	now := time.Now()
	sum := octopusapi.NodeSummary{Nodes: make([]octopusapi.Node, 0, len(rows)), Links: octopusapi.Links{"Self": octopusapi.NodesSummaryPath}}
	for _, row := range rows {
		sum.Nodes = append(sum.Nodes, n.resource(row, now, &v))
	}
	writeJSON(w, http.StatusOK, sum)
}

func (n *Node) getNode(w http.ResponseWriter, r *http.Request, id string) {
	row, err := n.cfg.DB.Node(r.Context(), id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, "The OctopusServerNode "+id+" does not exist.", nil)
	case err != nil:
		n.dbError(w, "reading node "+id, err)
	default:
		v := n.loadClusterView(r.Context())
		writeJSON(w, http.StatusOK, n.resource(row, time.Now(), &v))
	}
}

func (n *Node) nodeDetails(w http.ResponseWriter, r *http.Request, id string) {
	if _, err := n.cfg.DB.Node(r.Context(), id); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			writeError(w, http.StatusNotFound, "The OctopusServerNode "+id+" does not exist.", nil)
			return
		}
		n.dbError(w, "reading node "+id, err)
		return
	}
	// ActiveUploads is an octoha extension (real nodes do not report it):
	// how many uploads this node is receiving right now, so a scenario can
	// fault the node that serves one.
	row, _ := n.cfg.DB.Node(r.Context(), id)
	v := n.loadClusterView(r.Context())
	running, uploads := n.resource(row, time.Now(), &v).RunningTaskCount, 0
	if id == n.cfg.ID {
		uploads = int(n.receiving.Load())
	}
	writeJSON(w, http.StatusOK, map[string]any{"RunningTasks": running, "ActiveUploads": uploads, "Links": octopusapi.Links{"Self": octopusapi.NodePath(id) + "/details"}})
}

// putNode sets IsInMaintenanceMode (drain) and MaxConcurrentTasks on any
// node, through the shared database, as an operator does in Octopus.
func (n *Node) putNode(w http.ResponseWriter, r *http.Request, id string) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		writeError(w, http.StatusBadRequest, "Could not read the request body.", []string{err.Error()})
		return
	}
	var upd octopusapi.NodeUpdate
	if err := json.Unmarshal(body, &upd); err != nil {
		writeError(w, http.StatusBadRequest, "The request body is not a valid OctopusServerNode resource.", []string{err.Error()})
		return
	}
	if upd.Id != "" && upd.Id != id {
		writeError(w, http.StatusBadRequest, "The Id in the body ("+upd.Id+") does not match the URL ("+id+").", nil)
		return
	}
	if upd.MaxConcurrentTasks != nil && (*upd.MaxConcurrentTasks < 0 || *upd.MaxConcurrentTasks > 1000) {
		writeError(w, http.StatusBadRequest, "MaxConcurrentTasks must be between 0 and 1000.", nil)
		return
	}
	row, err := n.cfg.DB.UpdateNode(r.Context(), id, upd.IsInMaintenanceMode, upd.MaxConcurrentTasks)
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, "The OctopusServerNode "+id+" does not exist.", nil)
		return
	case err != nil:
		n.dbError(w, "updating node "+id, err)
		return
	}
	n.log.Info("node updated", "target", id, "maintenance", row.IsInMaintenanceMode, "maxConcurrentTasks", row.MaxConcurrentTasks)
	if id == n.cfg.ID {
		n.refresh(row)
	}
	v := n.loadClusterView(r.Context())
	writeJSON(w, http.StatusOK, n.resource(row, time.Now(), &v))
}

func (n *Node) deleteNode(w http.ResponseWriter, r *http.Request, id string) {
	err := n.cfg.DB.DeleteNode(r.Context(), id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, "The OctopusServerNode "+id+" does not exist.", nil)
	case err != nil:
		n.dbError(w, "deleting node "+id, err)
	default:
		writeJSON(w, http.StatusOK, map[string]any{})
	}
}
