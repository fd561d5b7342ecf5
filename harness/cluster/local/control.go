package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// ControlSocket is the Unix socket in a run directory through which other
// commands ask the cluster's owner (octoha up) to kill, pause, stop and
// start its nodes and to stop and start its database and share: only the
// owner holds the processes, so only it can restart them. The socket is
// created 0600 in the 0700 run directory.
const ControlSocket = "control.sock"

// Control actions.
const (
	ActionKill       = "kill"
	ActionPause      = "pause"
	ActionResume     = "resume"
	ActionStop       = "stop"
	ActionStart      = "start"
	ActionDBStop     = "db-stop"
	ActionDBStart    = "db-start"
	ActionShareStop  = "share-stop"
	ActionShareStart = "share-start"
)

// ControlActions lists the actions, node actions first.
var ControlActions = []string{ActionKill, ActionPause, ActionResume, ActionStop, ActionStart, ActionDBStop, ActionDBStart, ActionShareStop, ActionShareStart}

// NodeAction reports whether an action needs a node.
func NodeAction(a string) bool {
	switch a {
	case ActionKill, ActionPause, ActionResume, ActionStop, ActionStart:
		return true
	}
	return false
}

type controlRequest struct {
	Action string `json:"action"`
	Node   string `json:"node,omitempty"`
}

type controlAnswer struct {
	Error string `json:"error,omitempty"`
}

// do carries out one action on the cluster.
func (c *Cluster) do(ctx context.Context, req controlRequest) error {
	if NodeAction(req.Action) {
		if _, err := c.node(req.Node); err != nil {
			return err
		}
	}
	switch req.Action {
	case ActionKill:
		return c.KillNode(ctx, req.Node)
	case ActionPause:
		return c.PauseNode(ctx, req.Node)
	case ActionResume:
		return c.ResumeNode(ctx, req.Node)
	case ActionStop:
		return c.StopNode(ctx, req.Node)
	case ActionStart:
		return c.StartNode(ctx, req.Node)
	case ActionDBStop:
		return c.StopDatabase(ctx)
	case ActionDBStart:
		return c.StartDatabase(ctx)
	case ActionShareStop:
		return c.StopShare(ctx)
	case ActionShareStart:
		return c.StartShare(ctx)
	}
	return fmt.Errorf("unknown action %q (want one of %s)", req.Action, strings.Join(ControlActions, ", "))
}

// ServeControl answers control requests on the run directory's socket
// until ctx is done.
func (c *Cluster) ServeControl(ctx context.Context) error {
	path := filepath.Join(c.dir, ControlSocket)
	_ = os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return fmt.Errorf("control socket: %w", err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req controlRequest
		ans := controlAnswer{}
		if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&req); err != nil {
			ans.Error = "bad request: " + err.Error()
		} else if err := c.do(r.Context(), req); err != nil {
			ans.Error = err.Error()
		}
		c.log.Info("control", "action", req.Action, "node", req.Node, "err", ans.Error)
		_ = json.NewEncoder(w).Encode(ans)
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Control asks the owner of the cluster in runDir to carry out an action
// and waits for it (a start returns once the node answers its ping).
func Control(ctx context.Context, runDir, action, node string) error {
	path := filepath.Join(runDir, ControlSocket)
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("no cluster owner answers in %s (is the cluster up? octoha status): %w", runDir, err)
	}
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", path)
		},
	}}
	body, _ := json.Marshal(controlRequest{Action: action, Node: node})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://octoha/control", strings.NewReader(string(body)))
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("ask the cluster's owner to %s: %w", action, err)
	}
	defer resp.Body.Close()
	var ans controlAnswer
	if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil {
		return fmt.Errorf("ask the cluster's owner to %s: %w", action, err)
	}
	if ans.Error != "" {
		return fmt.Errorf("%s %s: %s", action, node, ans.Error)
	}
	return nil
}
