package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/octoha/octoha/fakes/store"
	"github.com/octoha/octoha/octopusapi"
)

// Polling Tentacles. A task with a TentacleId holds a request for that
// Tentacle on the node running it, and only on that node: a poll of any
// other node finds nothing. That is why the seed says polling Tentacles
// must poll every node. The polling port speaks HTTP over mutual TLS
// (not Halibut's protocol): GET /poll/<subscription> with the Tentacle's
// client certificate, answered 200 with an octopusapi.PollRequest or 204.

// tentacleState is the requests this node holds for Tentacles.
type tentacleState struct {
	mu      sync.Mutex
	pending map[string][]*pendingRequest // by subscription ID
	seq     int64
}

type pendingRequest struct {
	id      string
	taskID  string
	created time.Time
	picked  chan struct{} // closed when a poll takes it
}

// holdForTentacle creates the request a Tentacle task waits for. It
// returns a channel closed at pickup (nil for other tasks), a failure
// message when the task cannot wait (unknown machine), and a cleanup.
func (n *Node) holdForTentacle(ctx context.Context, e *execution) (<-chan struct{}, string, func()) {
	id := e.args.TentacleId
	if id == "" {
		return nil, "", func() {}
	}
	seq, ok := octopusapi.IDNumber(id, "Machines")
	var m store.Machine
	err := fmt.Errorf("TentacleId %q is not Machines-N", id)
	if ok {
		m, err = n.cfg.DB.Machine(ctx, seq)
	}
	if err != nil {
		return nil, "The task's Tentacle cannot be found: " + err.Error(), func() {}
	}
	ts := &n.tentacles
	ts.mu.Lock()
	ts.seq++
	p := &pendingRequest{id: fmt.Sprintf("%s-%d", n.cfg.Name, ts.seq), taskID: e.task.ID, created: time.Now(), picked: make(chan struct{})}
	if ts.pending == nil {
		ts.pending = map[string][]*pendingRequest{}
	}
	ts.pending[m.Subscription] = append(ts.pending[m.Subscription], p)
	ts.mu.Unlock()
	e.log.add(p.created, fmt.Sprintf("Waiting for Tentacle %s (poll://%s/) to poll node %s for request %s", id, m.Subscription, n.cfg.Name, p.id))
	n.flushLog(ctx, e.log)
	return p.picked, "", func() {
		ts.mu.Lock()
		defer ts.mu.Unlock()
		q := ts.pending[m.Subscription]
		for i, x := range q {
			if x == p {
				ts.pending[m.Subscription] = append(q[:i:i], q[i+1:]...)
				break
			}
		}
		if len(ts.pending[m.Subscription]) == 0 {
			delete(ts.pending, m.Subscription)
		}
	}
}

// take removes and returns the oldest request held for a subscription.
func (ts *tentacleState) take(sub string) *pendingRequest {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	q := ts.pending[sub]
	if len(q) == 0 {
		return nil
	}
	p := q[0]
	ts.pending[sub] = q[1:]
	close(p.picked)
	return p
}

// pollHandler serves the polling port.
func (n *Node) pollHandler(w http.ResponseWriter, r *http.Request) {
	w.Header().Set(octopusapi.HeaderNode, n.cfg.Name)
	sub, ok := strings.CutPrefix(r.URL.Path, "/poll/")
	if !ok || sub == "" || r.Method != http.MethodGet {
		writeError(w, http.StatusNotFound, "Polling Tentacles GET /poll/<subscription ID>.", nil)
		return
	}
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		writeError(w, http.StatusUnauthorized, "A polling Tentacle must present its certificate.", nil)
		return
	}
	m, err := n.cfg.DB.MachineBySubscription(r.Context(), sub)
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusForbidden, "No machine is registered with subscription "+sub+".", nil)
		return
	case err != nil:
		n.dbError(w, "reading the polling Tentacle's registration", err)
		return
	}
	if thumb := octopusapi.Thumbprint(r.TLS.PeerCertificates[0].Raw); !strings.EqualFold(thumb, m.Thumbprint) {
		n.log.Warn("polling Tentacle presented an unexpected certificate", "subscription", sub, "thumbprint", thumb)
		writeError(w, http.StatusForbidden, "The certificate does not match the machine registered with subscription "+sub+".", nil)
		return
	}
	p := n.tentacles.take(sub)
	if p == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	n.log.Info("Tentacle picked up a request", "subscription", sub, "request", p.id, "task", p.taskID, "waitedMs", time.Since(p.created).Milliseconds())
	writeJSON(w, http.StatusOK, octopusapi.PollRequest{RequestId: p.id, TaskId: p.taskID, Node: n.cfg.Name, Created: p.created.UTC().Format(time.RFC3339Nano)})
}

// servePolling serves the polling port over mutual TLS (any client
// certificate; the handler checks it against the registration) until ctx
// is done.
func (n *Node) servePolling(ctx context.Context, ln net.Listener) {
	srv := &http.Server{
		Handler:           http.HandlerFunc(n.pollHandler),
		ReadHeaderTimeout: n.cfg.ReadHeaderTimeout,
		IdleTimeout:       n.cfg.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(n.log.Handler(), slog.LevelDebug),
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{*n.cfg.PollingCert}, ClientAuth: tls.RequireAnyClientCert, MinVersion: tls.VersionTLS12},
	}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	n.log.Info("polling port serving", "listen", ln.Addr().String())
	if err := srv.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
		n.log.Error("polling port stopped", "err", err)
	}
}

// routeMachines handles /api/{space}/machines: registering a polling
// Tentacle, and reading one back.
func (n *Node) routeMachines(w http.ResponseWriter, r *http.Request, space string, seg []string) {
	switch {
	case len(seg) == 0:
		if !allow(w, r, http.MethodPost) || !n.may(w, r, octopusapi.PermissionMachineCreate, space) {
			return
		}
		var in octopusapi.Machine
		if !decodeBody(w, r, &in) {
			return
		}
		sub, ok := octopusapi.SubscriptionOf(in.Endpoint.Uri)
		if in.Endpoint.CommunicationStyle != octopusapi.CommunicationStyleTentacleActive || !ok || in.Endpoint.Thumbprint == "" {
			writeError(w, http.StatusBadRequest, "Only polling Tentacles are supported: Endpoint.CommunicationStyle TentacleActive, Uri poll://<subscription>/ and the Tentacle's Thumbprint.", nil)
			return
		}
		m, err := n.cfg.DB.CreateMachine(r.Context(), store.Machine{Name: in.Name, Subscription: sub, Thumbprint: strings.ToUpper(in.Endpoint.Thumbprint), SpaceID: space})
		switch {
		case errors.Is(err, store.ErrExists):
			writeError(w, http.StatusBadRequest, "A machine with subscription "+sub+" is already registered.", nil)
			return
		case err != nil:
			n.dbError(w, "registering a machine", err)
			return
		}
		n.log.Info("polling Tentacle registered", "machine", machineID(m.Seq), "subscription", sub)
		writeJSON(w, http.StatusCreated, machineResource(m))
	case len(seg) == 1:
		if !allow(w, r, http.MethodGet) || !n.may(w, r, octopusapi.PermissionMachineView, space) {
			return
		}
		seq, ok := octopusapi.IDNumber(seg[0], "Machines")
		if !ok {
			writeError(w, http.StatusNotFound, "The machine "+seg[0]+" does not exist.", nil)
			return
		}
		m, err := n.cfg.DB.Machine(r.Context(), seq)
		switch {
		case errors.Is(err, store.ErrNotFound):
			writeError(w, http.StatusNotFound, "The machine "+seg[0]+" does not exist.", nil)
		case err != nil:
			n.dbError(w, "reading a machine", err)
		default:
			writeJSON(w, http.StatusOK, machineResource(m))
		}
	default:
		n.notFound(w, r)
	}
}

func machineID(seq int64) string { return "Machines-" + strconv.FormatInt(seq, 10) }

func machineResource(m store.Machine) octopusapi.Machine {
	return octopusapi.Machine{Id: machineID(m.Seq), Name: m.Name, SpaceId: m.SpaceID, Endpoint: octopusapi.MachineEndpoint{
		CommunicationStyle: octopusapi.CommunicationStyleTentacleActive, Uri: "poll://" + m.Subscription + "/", Thumbprint: m.Thumbprint}}
}
