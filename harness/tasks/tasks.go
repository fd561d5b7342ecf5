// Package tasks drives an Octopus cluster's server task queue the way an
// operator or a build server does: it creates tasks through the load
// balancer at a rate, cancels some, follows them until they are terminal,
// reads each one's final state and raw log, changes a node's task cap, and
// meanwhile reads the node list through every node (rank, task cap,
// running tasks). Every request is one history.Op of a task kind (see
// harness/history), so the task checkers (harness/checker) judge the run
// from the history alone.
//
// It is its own package rather than part of harness/traffic because it
// is a stateful client of one queue (it remembers what it created and what
// it last saw of each task), where traffic is stateless load. It talks to
// nodes only over their HTTP API, so it drives real clusters too.
package tasks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/octoha/octoha/harness/apiclient"
	"github.com/octoha/octoha/harness/history"
	"github.com/octoha/octoha/internal/redact"
	"github.com/octoha/octoha/octopusapi"
)

// Defaults of Options.
const (
	DefaultTimeout = 5 * time.Second
	// DefaultBatch is how many tasks one poll asks for by id.
	DefaultBatch = 50
	// ViaLB is what ops through the load balancer are recorded as.
	ViaLB = "lb"
)

// Template is the task the driver creates: POST /api/tasks with this
// Name, Description and Arguments (as Octopus takes a system task; on a
// real cluster, a task the operator accepted to queue).
type Template struct {
	Name        string         `yaml:"name" json:"name"`
	Description string         `yaml:"description,omitempty" json:"description,omitempty"`
	Arguments   map[string]any `yaml:"arguments,omitempty" json:"arguments,omitempty"`
}

// FakeTemplate is a fake node's system task that runs for d.
func FakeTemplate(d time.Duration) Template {
	return Template{Name: octopusapi.TaskKindHealth, Description: "octoha task", Arguments: map[string]any{"DurationMs": d.Milliseconds()}}
}

// Node is one node the driver reads the node list through.
type Node struct {
	Name, URL string
}

// Options configures New.
type Options struct {
	// URL is the load balancer's base URL: tasks are created, cancelled
	// and read through it.
	URL    string
	APIKey string
	// SpaceID is the space tasks are created in (default Spaces-1).
	SpaceID string
	// Nodes are read directly for the node list (rank, cap, running).
	Nodes []Node
	// Recorder receives every op (nil: none recorded).
	Recorder *history.Recorder
	// Timeout bounds each request (default DefaultTimeout).
	Timeout time.Duration
	// Client is the base HTTP client (default: a loopback client).
	Client *http.Client
	Logger *slog.Logger
}

// Driver creates and follows tasks. It is safe for concurrent use.
type Driver struct {
	o      Options
	client *http.Client
	nonce  string
	seq    atomic.Uint64

	mu      sync.Mutex
	order   []string
	tasks   map[string]history.TaskView
	nodes   map[string]history.NodeView // last node list, by name
	nodeIDs map[string]string           // name → ID
}

// New checks the options and returns a driver.
func New(o Options) (*Driver, error) {
	if o.URL == "" {
		return nil, errors.New("tasks: the load balancer's URL is required")
	}
	o.URL = strings.TrimRight(o.URL, "/")
	if o.SpaceID == "" {
		o.SpaceID = octopusapi.DefaultSpaceID
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	origins := []string{o.URL}
	for i, n := range o.Nodes {
		if n.Name == "" || n.URL == "" {
			return nil, fmt.Errorf("tasks: node %d needs a name and a URL", i+1)
		}
		o.Nodes[i].URL = strings.TrimRight(n.URL, "/")
		origins = append(origins, n.URL)
	}
	base := o.Client
	if base == nil {
		base = &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 16}}
	}
	c, err := apiclient.New(apiclient.Options{APIKey: o.APIKey, Origins: origins, Base: base, Timeout: o.Timeout})
	if err != nil {
		return nil, fmt.Errorf("tasks: %w", err)
	}
	return &Driver{o: o, client: c, nonce: fmt.Sprintf("%06x", rand.Uint32()&0xffffff),
		tasks: map[string]history.TaskView{}, nodes: map[string]history.NodeView{}, nodeIDs: map[string]string{}}, nil
}

// call is one request's outcome.
type call struct {
	op   history.Op
	body []byte
}

// do sends one request and fills op's HTTP fields (the caller records it).
func (d *Driver) do(ctx context.Context, kind, method, base, path, via string, body any) call {
	op := history.Op{ID: fmt.Sprintf("tasks-%s-%d", d.nonce, d.seq.Add(1)), Client: "tasks", Kind: kind, Via: via, URL: path}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			op.Start, op.End, op.Outcome, op.Error = time.Now(), time.Now(), history.Failed, err.Error()
			return call{op: op}
		}
		rd = bytes.NewReader(b)
		op.Bytes = int64(len(b))
	}
	op.Start = time.Now()
	req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
	if err != nil {
		op.End, op.Outcome, op.Error = time.Now(), history.Failed, redact.Error(err, nil).Error()
		return call{op: op}
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "octoha (tasks)")
	req.Header.Set(octopusapi.HeaderOp, op.ID)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := d.client.Do(req)
	if err != nil && method == http.MethodGet && ctx.Err() != nil {
		// A read the harness itself gave up on (the scenario stopping
		// its watch): nothing the cluster did, so nothing to record.
		op.End, op.Outcome, op.Error = time.Now(), "", redact.Error(err, nil).Error()
		return call{op: op}
	}
	if err != nil {
		op.End = time.Now()
		// Nothing came back: a create or cancel may have taken effect.
		op.Outcome, op.Error = history.Unknown, redact.Error(err, nil).Error()
		if method == http.MethodGet {
			op.Outcome = history.Failed
		}
		return call{op: op}
	}
	defer resp.Body.Close()
	b, rerr := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	op.End = time.Now()
	op.Status, op.Node = resp.StatusCode, resp.Header.Get(octopusapi.HeaderNode)
	switch {
	case rerr != nil:
		op.Outcome, op.Error = history.Unknown, rerr.Error()
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		op.Outcome = history.OK
	default:
		op.Outcome, op.Error = history.Failed, octopusapi.ErrorText(b)
	}
	return call{op: op, body: b}
}

func (d *Driver) record(op history.Op) history.Op {
	// No outcome: a read abandoned by the harness's own cancel (see do).
	if d.o.Recorder == nil || op.Outcome == "" {
		return op
	}
	return d.o.Recorder.Op(op)
}

// task is the subset of a ServerTask resource the driver reads, as
// Octopus (and go-octopusdeploy's tasks.Task) spells it.
type task struct {
	ID            string `json:"Id"`
	Name          string
	State         string
	ServerNode    string
	QueueTime     *time.Time
	StartTime     *time.Time
	CompletedTime *time.Time
	ErrorMessage  string
}

func (t task) view() history.TaskView {
	return history.TaskView{ID: t.ID, Name: t.Name, State: t.State, Node: t.ServerNode,
		QueueTime: t.QueueTime, StartTime: t.StartTime, CompletedTime: t.CompletedTime, Error: t.ErrorMessage}
}

// Create queues one task through the load balancer and returns its ID.
func (d *Driver) Create(ctx context.Context, t Template) (string, error) {
	body := map[string]any{"Name": t.Name, "SpaceId": d.o.SpaceID, "Arguments": t.Arguments}
	if t.Description != "" {
		body["Description"] = t.Description
	}
	if t.Arguments == nil {
		body["Arguments"] = map[string]any{}
	}
	c := d.do(ctx, history.KindTaskCreate, http.MethodPost, d.o.URL, octopusapi.SpaceTasksPath(d.o.SpaceID), ViaLB, body)
	var got task
	if c.op.Outcome == history.OK {
		if err := json.Unmarshal(c.body, &got); err != nil || got.ID == "" {
			c.op.Outcome, c.op.Error = history.Unknown, "the created task's ID is not in the response"
		} else {
			c.op.Task = got.ID
			c.op.Tasks = []history.TaskView{got.view()}
		}
	}
	d.record(c.op)
	if c.op.Outcome != history.OK {
		return "", fmt.Errorf("create a %s task: %s", t.Name, opError(c.op))
	}
	d.mu.Lock()
	d.order = append(d.order, got.ID)
	d.tasks[got.ID] = got.view()
	d.mu.Unlock()
	return got.ID, nil
}

func opError(op history.Op) string {
	if op.Status != 0 {
		return fmt.Sprintf("%d %s", op.Status, op.Error)
	}
	return op.Error
}

// CreateMany queues n tasks at rate per second (0: as fast as they are
// answered). A failed create is recorded and counted, not fatal: the
// returned error is the context's, or a summary when none was created.
func (d *Driver) CreateMany(ctx context.Context, n int, rate float64, t Template) ([]string, error) {
	var ids []string
	var tick <-chan time.Time
	if rate > 0 {
		tk := time.NewTicker(time.Duration(float64(time.Second) / rate))
		defer tk.Stop()
		tick = tk.C
	}
	failed := 0
	var last error
	for i := range n {
		if i > 0 && tick != nil {
			select {
			case <-ctx.Done():
				return ids, ctx.Err()
			case <-tick:
			}
		}
		id, err := d.Create(ctx, t)
		if err != nil {
			if ctx.Err() != nil {
				return ids, ctx.Err()
			}
			failed++
			last = err
			d.o.Logger.Debug("create failed", "err", err)
			continue
		}
		ids = append(ids, id)
	}
	if len(ids) == 0 && n > 0 {
		return nil, fmt.Errorf("none of %d tasks was created: %w", n, last)
	}
	if failed > 0 {
		d.o.Logger.Info("some creates failed", "failed", failed, "of", n)
	}
	return ids, nil
}

// Cancel asks for a task to be cancelled (through the load balancer; the
// node running it must learn of it).
func (d *Driver) Cancel(ctx context.Context, id string) error {
	c := d.do(ctx, history.KindTaskCancel, http.MethodPost, d.o.URL, octopusapi.TaskCancelPath(id), ViaLB, struct{}{})
	c.op.Task = id
	var got task
	if c.op.Outcome == history.OK && json.Unmarshal(c.body, &got) == nil && got.ID != "" {
		c.op.Tasks = []history.TaskView{got.view()}
	}
	d.record(c.op)
	if c.op.Outcome != history.OK {
		return fmt.Errorf("cancel %s: %s", id, opError(c.op))
	}
	return nil
}
