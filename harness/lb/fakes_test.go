package lb

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/octoha/octoha/internal/proc"
	"github.com/octoha/octoha/internal/syncbuf"
	"github.com/octoha/octoha/octopusapi"
)

// Test topology: backends on 127.0.0.111-.113 and the load balancer on
// 127.0.0.110, all on free ports, so nothing collides with the cluster's
// 127.0.0.1x addresses or with other packages' tests.
const (
	testLBHost    = "127.0.0.110"
	testInterval  = 250 * time.Millisecond
	testFall      = 2
	testRise      = 2
	requestPacing = 5 * time.Millisecond
)

// slack absorbs scheduling delays on a loaded 2-core CI machine while
// keeping the bounds far below "never" (nginx) or HAProxy's defaults (4-6 s).
const slack = 1500 * time.Millisecond

// ejectBound is the longest a 418 or dead node may keep getting new
// requests: Interval×Fall plus one Interval (check phase), plus slack.
func ejectBound() time.Duration { return testInterval*testFall + testInterval + slack }

// rejoinBound is the same for coming back (Rise passes).
func rejoinBound() time.Duration { return testInterval*testRise + testInterval + slack }

// fakeNode is a stand-in Octopus node: ping answers a settable status,
// every response names the node, POST bodies are counted and discarded.
type fakeNode struct {
	name string
	addr string
	ping atomic.Int32
	srv  *http.Server
	hits atomic.Int64

	mu     sync.Mutex
	bodies []bodyRead // one per request, once its body was read to the end or failed
}

// bodyRead is what the node got of one request's body.
type bodyRead struct {
	bytes int64
	err   error // nil when the body arrived whole
}

func startFakeNode(t testing.TB, name, ip string) *fakeNode {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatalf("listen for fake node %s on %s: %v", name, ip, err)
	}
	n := &fakeNode{name: name, addr: ln.Addr().String()}
	n.ping.Store(http.StatusOK)
	n.srv = &http.Server{Handler: http.HandlerFunc(n.serve), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = n.srv.Serve(ln) }()
	t.Cleanup(n.kill)
	return n
}

func (n *fakeNode) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set(octopusapi.HeaderNode, n.name)
	if r.URL.Path == octopusapi.PingPath {
		w.WriteHeader(int(n.ping.Load()))
		return
	}
	n.hits.Add(1)
	got, err := io.Copy(io.Discard, r.Body)
	n.mu.Lock()
	n.bodies = append(n.bodies, bodyRead{bytes: got, err: err})
	n.mu.Unlock()
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("X-Body-Bytes", strconv.FormatInt(got, 10))
	fmt.Fprintf(w, "%s got %d bytes\n", n.name, got)
}

// waitBodies waits until the node has finished reading the bodies of more
// than `after` requests (a proxy may answer its client before the node's
// handler sees the cut), and returns those after the first `after`.
func (n *fakeNode) waitBodies(t testing.TB, after int, bound time.Duration) []bodyRead {
	t.Helper()
	deadline := time.Now().Add(bound)
	for {
		n.mu.Lock()
		got := append([]bodyRead(nil), n.bodies...)
		n.mu.Unlock()
		if len(got) > after {
			return got[after:]
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no request body finished within %v (%d before)", n.name, bound, after)
		}
		time.Sleep(20 * time.Millisecond) // poll interval of a real condition with a deadline
	}
}

func (n *fakeNode) bodyCount() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.bodies)
}

// kill closes the listener and every connection: connections are refused.
func (n *fakeNode) kill() { _ = n.srv.Close() }

func (n *fakeNode) backend() Backend { return Backend{Name: n.name, Addr: n.addr} }

func startFakeNodes(t testing.TB, count int) []*fakeNode {
	nodes := make([]*fakeNode, count)
	for i := range nodes {
		nodes[i] = startFakeNode(t, fmt.Sprintf("Node%d", i+1), fmt.Sprintf("127.0.0.%d", 111+i))
	}
	return nodes
}

func backends(nodes []*fakeNode) []Backend {
	var bs []Backend
	for _, n := range nodes {
		bs = append(bs, n.backend())
	}
	return bs
}

// testOptions is the common setup: short checks, a free port on
// testLBHost, a short Dir (the HAProxy socket path must fit 107 bytes).
func testOptions(t testing.TB, kind Kind, nodes []*fakeNode) Options {
	return Options{
		Kind:     kind,
		Listen:   testLBHost + ":0",
		Backends: backends(nodes),
		Dir:      shortTempDir(t),
		Interval: testInterval,
		Fall:     testFall,
		Rise:     testRise,
	}
}

func shortTempDir(t testing.TB) string {
	t.Helper()
	d, err := os.MkdirTemp("", "octoha-lb-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(d) })
	return d
}

// requireKind skips binary-backed kinds when their binary is missing or
// when only unit tests were asked for.
func requireKind(t *testing.T, k Kind) {
	t.Helper()
	if k == Embedded {
		return
	}
	if testing.Short() {
		t.Skipf("-short: skipping %s integration test (starts a real %s process)", k, k)
	}
	if err := Available(k); err != nil {
		t.Skipf("%s not installed, so its driver cannot be tested here: %v", k, err)
	}
}

// startLB builds and starts a balancer; it is stopped, and its log shown
// on failure, at cleanup.
func startLB(t testing.TB, o Options) Balancer {
	t.Helper()
	logs := &syncbuf.Buffer{}
	o.Log = logs
	b, err := New(o)
	if err != nil {
		t.Fatalf("New(%s): %v", o.Kind, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := b.Stop(ctx); err != nil {
			t.Errorf("stop %s: %v", o.Kind, err)
		}
		if t.Failed() {
			t.Logf("%s log:\n%s", o.Kind, lastLines(logs.String(), 60))
		}
	})
	if err := b.Start(ctx); err != nil {
		t.Fatalf("start %s: %v", o.Kind, err)
	}
	t.Logf("started %s at %s", b.Describe(), b.URL())
	return b
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// client talks to the load balancer.
type client struct {
	t    *testing.T
	base string
	hc   *http.Client
}

func newClient(t *testing.T, b Balancer) *client {
	tr := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 4}
	t.Cleanup(tr.CloseIdleConnections)
	return &client{t: t, base: b.URL(), hc: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
}

// reply is one response as the test sees it.
type reply struct {
	status int
	node   string // X-Octoha-Node
	cookie string // SRV cookie set by the load balancer, if any
	body   string
	err    error
}

func (c *client) do(method, path string, body io.Reader, cookie string) reply {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return reply{err: err}
	}
	if cookie != "" {
		req.AddCookie(&http.Cookie{Name: CookieName, Value: cookie})
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return reply{err: err}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	r := reply{status: resp.StatusCode, node: resp.Header.Get(octopusapi.HeaderNode), body: string(b)}
	for _, ck := range resp.Cookies() {
		if ck.Name == CookieName {
			r.cookie = ck.Value
		}
	}
	return r
}

func (c *client) get(cookie string) reply { return c.do(http.MethodGet, "/api", nil, cookie) }

// spread sends n GETs and counts responses per node ("" = no node header,
// e.g. an LB error page).
func (c *client) spread(n int) map[string]int {
	counts := map[string]int{}
	for range n {
		r := c.get("")
		if r.err != nil {
			c.t.Fatalf("GET through LB: %v", r.err)
		}
		counts[r.node]++
	}
	return counts
}

// observation is what sequential traffic saw in a window.
type observation struct {
	total    int
	byNode   map[string]int
	errors   int // transport errors and non-2xx
	lastSeen map[string]time.Duration
}

// observe sends paced GETs for d and records, per node, how many replies
// and the time (since start) of the last one.
func (c *client) observe(start time.Time, d time.Duration) observation {
	ob := observation{byNode: map[string]int{}, lastSeen: map[string]time.Duration{}}
	end := time.Now().Add(d)
	tick := time.NewTicker(requestPacing)
	defer tick.Stop()
	for time.Now().Before(end) {
		r := c.get("")
		ob.total++
		if r.err != nil || r.status/100 != 2 {
			ob.errors++
		} else {
			ob.byNode[r.node]++
			ob.lastSeen[r.node] = time.Since(start)
		}
		<-tick.C
	}
	return ob
}

// waitAbsent sends paced GETs until node has been absent from at least
// minRequests consecutive successful replies spanning at least
// 2×testInterval, or fails after bound. It returns the time since start of
// the last reply from node (0 if none) and the number of non-2xx replies.
func (c *client) waitAbsent(start time.Time, node string, bound time.Duration) (last time.Duration, failures int) {
	c.t.Helper()
	const minRequests = 30
	var run int
	var runStart time.Time
	tick := time.NewTicker(requestPacing)
	defer tick.Stop()
	for {
		now := time.Now()
		if now.Sub(start) > bound+2*testInterval+time.Second {
			c.t.Fatalf("%s still received requests %v after the change (bound %v; last at %v)", node, now.Sub(start).Round(time.Millisecond), bound, last)
		}
		r := c.get("")
		switch {
		case r.err != nil || r.status/100 != 2:
			failures++
			run = 0
		case r.node == node:
			last = time.Since(start)
			run = 0
		default:
			if run == 0 {
				runStart = time.Now()
			}
			run++
			if run >= minRequests && time.Since(runStart) >= 2*testInterval {
				if last > bound {
					c.t.Fatalf("%s got its last request %v after the change; bound %v", node, last.Round(time.Millisecond), bound)
				}
				return last, failures
			}
		}
		<-tick.C
	}
}

// waitPresent sends paced GETs until node answers one, or fails after bound.
func (c *client) waitPresent(start time.Time, node string, bound time.Duration) time.Duration {
	c.t.Helper()
	tick := time.NewTicker(requestPacing)
	defer tick.Stop()
	for time.Since(start) <= bound {
		if r := c.get(""); r.err == nil && r.node == node {
			return time.Since(start)
		}
		<-tick.C
	}
	c.t.Fatalf("%s received no request within %v of coming back", node, bound)
	return 0
}

// waitState polls States until name is in one of want, or fails after bound.
func waitState(t *testing.T, b Balancer, name string, bound time.Duration, want ...State) ServerState {
	t.Helper()
	deadline := time.Now().Add(bound)
	var last ServerState
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		states, err := b.States(ctx)
		cancel()
		if err != nil {
			t.Fatalf("States: %v", err)
		}
		for _, s := range states {
			if s.Name != name {
				continue
			}
			last = s
			for _, w := range want {
				if s.State == w {
					return s
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: state %+v, want one of %v within %v", name, last, want, bound)
		}
		time.Sleep(20 * time.Millisecond) // poll interval of a real condition with a deadline
	}
}

// groupAlive reports whether any process is left in process group pgid.
func groupAlive(pgid int) bool {
	if proc.Alive(pgid) {
		return true
	}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		f := strings.Fields(s[i+1:])
		// state ppid pgrp
		if len(f) >= 3 && f[2] == strconv.Itoa(pgid) && f[0] != "Z" {
			return true
		}
	}
	return false
}
