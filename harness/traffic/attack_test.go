package traffic

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/octoha/octoha/harness/history"
	"github.com/octoha/octoha/octopusapi"
)

// pingNode answers ping with a fixed code and its name, and remembers the
// op IDs it saw.
type pingNode struct {
	name string
	code atomic.Int32
	mu   sync.Mutex
	ops  map[string]bool
	srv  *httptest.Server
}

func newPingNode(t *testing.T, name string) *pingNode {
	n := &pingNode{name: name, ops: map[string]bool{}}
	n.code.Store(200)
	n.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != octopusapi.PingPath {
			http.NotFound(w, r)
			return
		}
		n.mu.Lock()
		n.ops[r.Header.Get(octopusapi.HeaderOp)] = true
		n.mu.Unlock()
		w.Header().Set(octopusapi.HeaderNode, name)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(int(n.code.Load()))
		_, _ = io.WriteString(w, `{"Id":"`+name+`","Name":"`+name+`"}`)
	}))
	t.Cleanup(n.srv.Close)
	return n
}

// roundRobin is a tiny load balancer in front of backends.
func roundRobin(t *testing.T, backends ...string) string {
	var next atomic.Uint64
	targets := make([]*url.URL, len(backends))
	for i, b := range backends {
		u, err := url.Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		targets[i] = u
	}
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(targets[(next.Add(1)-1)%uint64(len(targets))])
		pr.Out.Host = pr.In.Host
	}}
	srv := httptest.NewServer(rp)
	t.Cleanup(srv.Close)
	return srv.URL
}

func decodeResults(t *testing.T, b []byte) []vegeta.Result {
	t.Helper()
	var rs []vegeta.Result
	dec := vegeta.NewDecoder(bytes.NewReader(b))
	for {
		var r vegeta.Result
		if err := dec.Decode(&r); err == io.EOF {
			return rs
		} else if err != nil {
			t.Fatalf("decode results with vegeta's decoder: %v", err)
		}
		rs = append(rs, r)
	}
}

func TestAttackSpreadOverTwoNodes(t *testing.T) {
	n1, n2 := newPingNode(t, "Node1"), newPingNode(t, "Node2")
	lb := roundRobin(t, n1.srv.URL, n2.srv.URL)
	var hbuf, rbuf bytes.Buffer
	rec := history.NewRecorder(&hbuf)
	spread := Spread{}
	const rate, dur = 50, 2 * time.Second
	start := time.Now()
	m, err := Attack(t.Context(), AttackOptions{
		URL: lb, Target: TargetPing, Rate: vegeta.Rate{Freq: rate, Per: time.Second}, Duration: dur,
		Recorder: rec, Results: &rbuf, Observe: spread.Add, Via: "lb",
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("attack: %d requests in %s, rate %.1f/s, success %.2f, p99 %s", m.Requests, time.Since(start), m.Rate, m.Success, m.Latencies.P99)
	want := uint64(rate * dur / time.Second)
	if m.Requests < want*9/10 || m.Requests > want+1 {
		t.Fatalf("requests = %d, want about %d", m.Requests, want)
	}
	if m.Success != 1 {
		t.Fatalf("success = %.2f, errors %v", m.Success, m.Errors)
	}
	rec.Close()
	h, err := history.Decode(&hbuf)
	if err != nil {
		t.Fatal(err)
	}
	rs := decodeResults(t, rbuf.Bytes())
	if uint64(len(h.Ops)) != m.Requests || uint64(len(rs)) != m.Requests {
		t.Fatalf("ops = %d, results = %d, metrics = %d", len(h.Ops), len(rs), m.Requests)
	}
	// Results and history agree, and both agree with what the nodes saw.
	fromResults := NodeSpread(rs)
	fromOps := SpreadOps(h.Ops)
	for _, n := range []string{"Node1", "Node2"} {
		if fromResults[n] != fromOps[n] || fromResults[n] != spread[n] {
			t.Errorf("%s: results %d, ops %d, observed %d", n, fromResults[n], fromOps[n], spread[n])
		}
		if share := float64(spread[n]) / float64(m.Requests); share < 0.4 || share > 0.6 {
			t.Errorf("%s served %.0f%% through a round-robin LB", n, share*100)
		}
	}
	if spread.Total() != int(m.Requests) {
		t.Errorf("spread total %d", spread.Total())
	}
	seen := map[string]bool{}
	for _, o := range h.Ops {
		if o.Kind != history.KindPing || o.Outcome != history.OK || o.Status != 200 || o.Via != "lb" || o.End.Before(o.Start) {
			t.Fatalf("op: %+v", o)
		}
		if seen[o.ID] {
			t.Fatalf("op ID %s repeats", o.ID)
		}
		seen[o.ID] = true
		node := n1
		if o.Node == "Node2" {
			node = n2
		}
		node.mu.Lock()
		ok := node.ops[o.ID]
		node.mu.Unlock()
		if !ok {
			t.Fatalf("op %s (%s) was not seen by %s", o.ID, o.Node, node.name)
		}
	}
	t.Logf("spread:\n%s", spread)
}

func TestAttackStopsOnCancel(t *testing.T) {
	n := newPingNode(t, "Node1")
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	m, err := Attack(ctx, AttackOptions{URL: n.srv.URL, Target: TargetPing, Rate: vegeta.Rate{Freq: 100, Per: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Fatalf("attack without duration ran %s after cancel", el)
	}
	if m.Requests < 10 || m.Requests > 60 {
		t.Fatalf("requests = %d in ~300ms at 100/s", m.Requests)
	}
}

func TestAttackFailures(t *testing.T) {
	n := newPingNode(t, "Node1")
	n.code.Store(418) // draining
	var hbuf bytes.Buffer
	rec := history.NewRecorder(&hbuf)
	m, err := Attack(t.Context(), AttackOptions{URL: n.srv.URL, Target: TargetPing, Rate: vegeta.Rate{Freq: 50, Per: time.Second}, Duration: 200 * time.Millisecond, Recorder: rec})
	if err != nil {
		t.Fatal(err)
	}
	if m.StatusCodes["418"] == 0 || m.Success != 0 {
		t.Fatalf("metrics: %+v", m.StatusCodes)
	}
	// A closed port: transport errors are failed reads, with no node.
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	if _, err := Attack(t.Context(), AttackOptions{URL: deadURL, Target: TargetNodes, Rate: vegeta.Rate{Freq: 50, Per: time.Second}, Duration: 200 * time.Millisecond, Recorder: rec, Timeout: time.Second}); err != nil {
		t.Fatal(err)
	}
	rec.Close()
	h, err := history.Decode(&hbuf)
	if err != nil {
		t.Fatal(err)
	}
	var drained, refused int
	for _, o := range h.Ops {
		if o.Outcome != history.Failed || o.Error == "" {
			t.Fatalf("op: %+v", o)
		}
		switch {
		case o.Kind == history.KindPing && o.Status == 418 && o.Node == "Node1":
			drained++
		case o.Kind == history.KindNodes && o.Status == 0 && o.Node == "":
			refused++
		default:
			t.Fatalf("unexpected op: %+v", o)
		}
	}
	if drained == 0 || refused == 0 {
		t.Fatalf("418 ops %d, refused ops %d", drained, refused)
	}
}

func TestAttackOptionsValidate(t *testing.T) {
	ok := AttackOptions{URL: "http://127.0.0.1:1", Target: TargetPackages, Rate: vegeta.Rate{Freq: 1, Per: time.Second}}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(*AttackOptions){
		"no url":        func(o *AttackOptions) { o.URL = "" },
		"target":        func(o *AttackOptions) { o.Target = "tasks" },
		"space":         func(o *AttackOptions) { o.SpaceID = "nope" },
		"zero per":      func(o *AttackOptions) { o.Rate.Per = 0 },
		"unlimited":     func(o *AttackOptions) { o.Rate = vegeta.Rate{} },
		"negative dur":  func(o *AttackOptions) { o.Duration = -time.Second },
		"negative rate": func(o *AttackOptions) { o.Rate.Freq = -1 },
	} {
		o := ok
		mut(&o)
		if err := o.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestParseRate(t *testing.T) {
	for in, want := range map[string]vegeta.Rate{
		"200/s": {Freq: 200, Per: time.Second}, "200/1s": {Freq: 200, Per: time.Second},
		"50/100ms": {Freq: 50, Per: 100 * time.Millisecond}, "1000/m": {Freq: 1000, Per: time.Minute},
		"7": {Freq: 7, Per: time.Second}, "0": {}, "infinity": {},
	} {
		got, err := ParseRate(in)
		if err != nil || got != want {
			t.Errorf("ParseRate(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "x/s", "-5/s", "5/0s", "5/x", "5/-1s"} {
		if _, err := ParseRate(in); err == nil {
			t.Errorf("ParseRate(%q) accepted", in)
		}
	}
}

// A real Octopus node sends no X-Octoha-Node header; its ping body names
// it, and that is enough to attribute a ping.
func TestNodeOfFallsBackToThePingBody(t *testing.T) {
	withHeader := &vegeta.Result{URL: "http://lb" + octopusapi.PingPath, Headers: http.Header{octopusapi.HeaderNode: {"Node1"}}, Body: []byte(`{"Name":"Other"}`)}
	if got := NodeOf(withHeader); got != "Node1" {
		t.Fatalf("header: %q", got)
	}
	fromBody := &vegeta.Result{URL: "http://lb" + octopusapi.PingPath, Headers: http.Header{}, Body: []byte(`{"Id":"OctopusServerNodes-2","Name":"OCTO-B"}`)}
	if got := NodeOf(fromBody); got != "OCTO-B" {
		t.Fatalf("ping body: %q", got)
	}
	notPing := &vegeta.Result{URL: "http://lb" + octopusapi.NodesPath, Headers: http.Header{}, Body: []byte(`{"Name":"OCTO-B"}`)}
	if got := NodeOf(notPing); got != "" {
		t.Fatalf("a non-ping body attributed to %q", got)
	}
}
