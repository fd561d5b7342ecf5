// Package tentacle is a fleet of fake polling Tentacles: each has its own
// client certificate and subscription ID, registers as a machine through
// the cluster's REST API, then polls the endpoints its layout gives it
// over mutual TLS, trusting only the cluster's server thumbprint. Every
// poll and every pickup goes into the history.
//
// Like Halibut, a Tentacle keeps one TLS connection per endpoint open and
// polls over it; through a load balancer (layout via-lb) that connection
// lands on one node, whose requests alone it picks up until the
// connection breaks: the seed's "the Tentacle will not poll all servers
// in a timely manner".
package tentacle

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/octoha/octoha/harness/apiclient"
	"github.com/octoha/octoha/harness/history"
	"github.com/octoha/octoha/internal/selfsigned"
	"github.com/octoha/octoha/octopusapi"
)

// Op kinds in the history.
const (
	// KindPoll is one poll of one endpoint: 200 picked up a request, 204
	// found none.
	KindPoll = "tentacle-poll"
	// KindPickup is a request picked up: Start is when the node created it,
	// End when the poll took it, ID the task's ID.
	KindPickup = "tentacle-pickup"
	// KindTask is a task queued for a Tentacle (ID: the task's ID).
	KindTask = "tentacle-task"
	// KindLost is a queued task that ended without its pickup because the
	// node holding its request died (ID: the task's ID).
	KindLost = "tentacle-task-lost"
)

// DefaultPoll is how often a Tentacle polls each endpoint.
const DefaultPoll = time.Second

// Options configures a fleet.
type Options struct {
	Count int
	// Endpoints are the host:port every Tentacle polls (see
	// cluster.Spec.PollingEndpoints); Layout names them in the history.
	Endpoints []string
	Layout    string
	// Thumbprint is the cluster's server certificate; a poll answered with
	// another certificate fails. "" trusts the first one seen and then
	// insists on it.
	Thumbprint string
	Poll       time.Duration
	// URL and APIKey reach the REST API (the load balancer) to register
	// the machines; the key is never recorded.
	URL, APIKey string
	SpaceID     string
	Recorder    *history.Recorder
	// Prefix names the Tentacles and their subscriptions.
	Prefix string
}

// Tentacle is one registered Tentacle.
type Tentacle struct {
	Name, MachineID, Subscription string
	cert                          selfsigned.Cert
}

// Fleet is the registered Tentacles.
type Fleet struct {
	o         Options
	hc        *http.Client // the REST API's, from apiclient (adds the key)
	Tentacles []*Tentacle
	mu        sync.Mutex
	seen      string // the server thumbprint, once trusted
}

// Register makes each Tentacle's certificate and registers it.
func Register(ctx context.Context, o Options) (*Fleet, error) {
	if o.Count < 1 || len(o.Endpoints) == 0 || o.URL == "" || o.APIKey == "" || o.Recorder == nil {
		return nil, errors.New("tentacles: a count, endpoints, the API's URL and key and a recorder are required")
	}
	if o.Poll <= 0 {
		o.Poll = DefaultPoll
	}
	if o.SpaceID == "" {
		o.SpaceID = octopusapi.DefaultSpaceID
	}
	if o.Prefix == "" {
		o.Prefix = "Tentacle"
	}
	hc, err := apiclient.New(apiclient.Options{APIKey: o.APIKey, Origins: []string{o.URL}, Timeout: 10 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("tentacles: %w", err)
	}
	f := &Fleet{o: o, hc: hc, seen: o.Thumbprint}
	for i := range o.Count {
		name := o.Prefix + strconv.Itoa(i+1)
		cert, err := selfsigned.New(name)
		if err != nil {
			return nil, err
		}
		t := &Tentacle{Name: name, Subscription: fmt.Sprintf("SQ-%s-%d", o.Prefix, i+1), cert: cert}
		in := octopusapi.Machine{Name: name, SpaceId: o.SpaceID, Endpoint: octopusapi.MachineEndpoint{
			CommunicationStyle: octopusapi.CommunicationStyleTentacleActive, Uri: "poll://" + t.Subscription + "/", Thumbprint: octopusapi.Thumbprint(cert.TLS.Certificate[0])}}
		var out octopusapi.Machine
		if err := f.call(ctx, http.MethodPost, o.URL+octopusapi.MachinesPath(o.SpaceID), in, &out); err != nil {
			return nil, fmt.Errorf("register %s: %w", name, err)
		}
		t.MachineID = out.Id
		f.Tentacles = append(f.Tentacles, t)
	}
	return f, nil
}

func (f *Fleet) call(ctx context.Context, method, url string, in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := f.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s %s", method, req.URL.Path, resp.Status, body)
	}
	return json.Unmarshal(body, out)
}

// Queue queues a Health task for Tentacle t through the REST API and
// records it; bound is how long the task waits for the pickup.
func (f *Fleet) Queue(ctx context.Context, t *Tentacle, bound time.Duration) (string, error) {
	op := history.Op{Kind: KindTask, Client: t.Name, Via: "lb", Start: time.Now(), URL: f.o.URL + octopusapi.TasksPath, Outcome: history.Failed}
	var task octopusapi.Task
	err := f.call(ctx, http.MethodPost, op.URL, octopusapi.TaskCreate{Name: octopusapi.TaskKindHealth, Description: "octoha: work for " + t.Name,
		SpaceId: f.o.SpaceID, Arguments: octopusapi.TaskArguments{TentacleId: t.MachineID, DurationMs: bound.Milliseconds()}}, &task)
	op.End = time.Now()
	if err == nil {
		op.Outcome, op.Status, op.ID = history.OK, http.StatusCreated, task.Id
	} else {
		op.Error = err.Error()
	}
	f.o.Recorder.Op(op)
	return task.Id, err
}

// Run polls every endpoint from every Tentacle until ctx is done.
func (f *Fleet) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, t := range f.Tentacles {
		for _, ep := range f.o.Endpoints {
			wg.Add(1)
			go func() {
				defer wg.Done()
				f.pollLoop(ctx, t, ep)
			}()
		}
	}
	wg.Wait()
}

func (f *Fleet) pollLoop(ctx context.Context, t *Tentacle, endpoint string) {
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{
			Certificates:          []tls.Certificate{t.cert.TLS},
			InsecureSkipVerify:    true, //nolint:gosec // trust is by thumbprint, as a Tentacle's
			VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error { return f.trust(raw) },
			MinVersion:            tls.VersionTLS12,
		},
		MaxIdleConnsPerHost: 1, // one long-lived connection per endpoint, as Halibut keeps
		IdleConnTimeout:     time.Minute,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	tick := time.NewTicker(f.o.Poll)
	defer tick.Stop()
	for n := 1; ; n++ {
		f.poll(ctx, client, t, endpoint, n)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (f *Fleet) trust(raw [][]byte) error {
	if len(raw) == 0 {
		return errors.New("the server presented no certificate")
	}
	thumb := octopusapi.Thumbprint(raw[0])
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.seen == "" {
		f.seen = thumb
	}
	if thumb != f.seen {
		return fmt.Errorf("the server presented certificate %s, not the cluster's %s", thumb, f.seen)
	}
	return nil
}

func (f *Fleet) poll(ctx context.Context, client *http.Client, t *Tentacle, endpoint string, n int) {
	url := "https://" + endpoint + octopusapi.PollPath(t.Subscription)
	op := history.Op{Kind: KindPoll, Client: t.Name, Via: f.o.Layout + " " + endpoint, URL: url, Start: time.Now(), Outcome: history.Failed,
		ID: t.Name + "@" + endpoint + "-" + strconv.Itoa(n)}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	var pr octopusapi.PollRequest
	if err == nil {
		var resp *http.Response
		if resp, err = client.Do(req); err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			op.Status, op.Node = resp.StatusCode, resp.Header.Get(octopusapi.HeaderNode)
			switch resp.StatusCode {
			case http.StatusNoContent:
				op.Outcome = history.OK
			case http.StatusOK:
				if err = json.Unmarshal(body, &pr); err == nil {
					op.Outcome = history.OK
				}
			default:
				err = fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(body))
			}
		}
	}
	op.End = time.Now()
	if err != nil {
		if ctx.Err() != nil {
			return // the fleet is stopping: not a failed poll
		}
		op.Error = err.Error()
	}
	f.o.Recorder.Op(op)
	if pr.TaskId == "" {
		return
	}
	created, perr := time.Parse(time.RFC3339Nano, pr.Created)
	if perr != nil {
		created = op.Start
	}
	f.o.Recorder.Op(history.Op{Kind: KindPickup, ID: pr.TaskId, Client: t.Name, Via: op.Via, Node: pr.Node, Start: created, End: op.End,
		Outcome: history.OK, Status: http.StatusOK, Note: "request " + pr.RequestId})
}

// Lost records queued tasks that ended without a pickup because their
// node died (their error says so), so the checker excuses them; it reads
// each task through the REST API.
func (f *Fleet) Lost(ctx context.Context, taskIDs []string) (int, error) {
	lost := 0
	for _, id := range taskIDs {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.o.URL+octopusapi.TaskPath(id), nil)
		if err != nil {
			return lost, err
		}
		resp, err := f.hc.Do(req)
		if err != nil {
			return lost, fmt.Errorf("read task %s: %w", id, err)
		}
		var task octopusapi.Task
		err = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&task)
		resp.Body.Close()
		if err != nil {
			return lost, fmt.Errorf("read task %s: %w", id, err)
		}
		if task.State == octopusapi.TaskFailed {
			lost++
			now := time.Now()
			f.o.Recorder.Op(history.Op{Kind: KindLost, ID: id, Node: task.ServerNode, Start: now, End: now, Outcome: history.OK, Note: task.ErrorMessage})
		}
	}
	return lost, nil
}

// Unfinished returns the tasks among ids that have not ended yet.
func (f *Fleet) Unfinished(ctx context.Context, ids []string) ([]string, error) {
	var out []string
	for _, id := range ids {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.o.URL+octopusapi.TaskPath(id), nil)
		if err != nil {
			return nil, err
		}
		resp, err := f.hc.Do(req)
		if err != nil {
			return nil, fmt.Errorf("read task %s: %w", id, err)
		}
		var task octopusapi.Task
		err = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&task)
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("read task %s: %w", id, err)
		}
		if !octopusapi.TaskTerminal(task.State) {
			out = append(out, id+" "+task.State)
		}
	}
	return out, nil
}

// WorkOptions paces the work Work queues.
type WorkOptions struct {
	// Rounds of one task per Tentacle, each round lasting Every; within a
	// round every task is queued at its own seeded random instant, so the
	// nodes' task polls claim them in turn rather than one node taking a
	// whole burst.
	Rounds int
	Every  time.Duration
	// Wait is each task's bound on waiting for its pickup.
	Wait time.Duration
	Seed int64
	// BeforeRound, when set, runs before each round (faults, say).
	BeforeRound func(round int) error
}

// Work queues the rounds of work and returns the tasks' IDs.
func (f *Fleet) Work(ctx context.Context, o WorkOptions) ([]string, error) {
	rng := rand.New(rand.NewPCG(uint64(o.Seed), 0x7e47ac1e))
	var ids []string
	for round := range o.Rounds {
		start := time.Now()
		if o.BeforeRound != nil {
			if err := o.BeforeRound(round); err != nil {
				return ids, err
			}
		}
		offsets := make([]time.Duration, len(f.Tentacles))
		for i := range offsets {
			offsets[i] = time.Duration(rng.Int64N(int64(o.Every)))
		}
		order := rng.Perm(len(f.Tentacles))
		slices.Sort(offsets)
		for i, ti := range order {
			if err := sleepUntil(ctx, start.Add(offsets[i])); err != nil {
				return ids, err
			}
			id, err := f.Queue(ctx, f.Tentacles[ti], o.Wait)
			if err != nil {
				return ids, err
			}
			ids = append(ids, id)
		}
		if err := sleepUntil(ctx, start.Add(o.Every)); err != nil {
			return ids, err
		}
	}
	return ids, nil
}

func sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}
