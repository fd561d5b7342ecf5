package lb

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestHealthDrivenRouting is the core contract per driver: traffic spreads,
// a 418 node is ejected within Interval×Fall + Interval (HAProxy, embedded)
// or keeps its traffic (nginx OSS, the documented finding) until the
// Controller marks it down, a node that comes back rejoins, a killed node's
// traffic moves to the others, and Stop leaves no process behind.
func TestHealthDrivenRouting(t *testing.T) {
	for _, kind := range []Kind{HAProxy, Nginx, Embedded} {
		t.Run(string(kind), func(t *testing.T) {
			requireKind(t, kind)
			nodes := startFakeNodes(t, 3)
			b := startLB(t, testOptions(t, kind, nodes))
			c := newClient(t, b)

			counts := c.spread(60)
			for _, n := range nodes {
				if counts[n.name] < 10 {
					t.Fatalf("round robin over 3 nodes: %v; %s got under 10 of 60", counts, n.name)
				}
			}

			drained := nodes[1]
			if kind == Nginx {
				nginxIgnoresDrain(t, b, c, drained)
			} else {
				ejectsDrainingNode(t, b, c, drained)
			}

			// A killed node: the others carry the traffic.
			dead := nodes[2]
			dead.kill()
			t0 := time.Now()
			last, failures := c.waitAbsent(t0, dead.name, ejectBound())
			t.Logf("killed %s: %s, %d failed requests until ejected", dead.name, lastText(last), failures)
			if kind != Nginx {
				waitState(t, b, dead.name, ejectBound(), StateDown)
			}
			counts = c.spread(20)
			if counts[nodes[0].name] == 0 || counts[nodes[1].name] == 0 || len(counts) != 2 {
				t.Fatalf("after killing %s: %v, want only and both of %s, %s", dead.name, counts, nodes[0].name, nodes[1].name)
			}

			stopAndRestart(t, b, c)
		})
	}
}

// ejectsDrainingNode flips n's ping to 418 and back under HAProxy or the
// embedded proxy.
func ejectsDrainingNode(t *testing.T, b Balancer, c *client, n *fakeNode) {
	t.Helper()
	if b.Kind() == HAProxy {
		// HAProxy starts servers one failure from DOWN; wait for a full
		// health counter so the flip measures fall, not the start-up edge.
		full := fmt.Sprintf("health %d/%d", testRise+testFall-1, testRise+testFall-1)
		deadline := time.Now().Add(testInterval*testFall + slack)
		for s := waitState(t, b, n.name, 0, StateUp); !strings.Contains(s.Detail, full); s = waitState(t, b, n.name, 0, StateUp) {
			if time.Now().After(deadline) {
				t.Fatalf("%s never reached %s: %+v", n.name, full, s)
			}
			time.Sleep(20 * time.Millisecond) // poll interval of a real condition with a deadline
		}
	}
	n.ping.Store(http.StatusTeapot)
	t0 := time.Now()
	last, failures := c.waitAbsent(t0, n.name, ejectBound())
	// Fall consecutive failures take at least (Fall-1)×Interval; half that
	// leaves room for timer slop and still fails an eject on the first 418.
	if minimum := (testFall - 1) * testInterval / 2; last < minimum {
		t.Errorf("%s ejected %v after the 418, faster than Fall=%d checks allow (≥ %v)", n.name, last, testFall, minimum)
	}
	if failures > 0 {
		t.Errorf("%d requests failed while %s drained (418 must not cost clients anything)", failures, n.name)
	}
	s := waitState(t, b, n.name, ejectBound(), StateDown)
	// HAProxy clears the check code while a check runs ("L7STS/0" between
	// checks is seen under load); the next completed check names the 418.
	for deadline := time.Now().Add(4 * testInterval); !strings.Contains(s.Check, "418") && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond) // poll interval of a real condition with a deadline
		s = waitState(t, b, n.name, ejectBound(), StateDown)
	}
	if !strings.Contains(s.Check, "418") {
		t.Errorf("%s state %+v: check should name the 418", n.name, s)
	}
	t.Logf("418 on %s: %s (bound %v); state %+v", n.name, lastText(last), ejectBound(), s)

	n.ping.Store(http.StatusOK)
	t1 := time.Now()
	back := c.waitPresent(t1, n.name, rejoinBound())
	waitState(t, b, n.name, rejoinBound(), StateUp)
	t.Logf("200 on %s again: first request %v after the flip (bound %v)", n.name, back.Round(time.Millisecond), rejoinBound())
}

// nginxIgnoresDrain shows nginx OSS keeps sending traffic to a 418 node,
// and that the Controller (down + reload) is what takes it out.
func nginxIgnoresDrain(t *testing.T, b Balancer, c *client, n *fakeNode) {
	t.Helper()
	n.ping.Store(http.StatusTeapot)
	t0 := time.Now()
	ob := c.observe(t0, ejectBound())
	share := float64(ob.byNode[n.name]) / float64(ob.total)
	t.Logf("nginx with %s at 418 for %v: %v of %d requests (finding: 418 not honoured)", n.name, ejectBound(), ob.byNode, ob.total)
	if ob.total < 30 || share < 0.2 {
		t.Fatalf("%s got %d of %d requests (%.0f%%) while at 418; nginx OSS was expected to keep sending it about a third", n.name, ob.byNode[n.name], ob.total, 100*share)
	}
	if last := ob.lastSeen[n.name]; last < ejectBound()-time.Second {
		t.Fatalf("%s's last request was %v after the flip; nginx OSS should not have ejected it", n.name, last)
	}
	states, err := b.States(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range states {
		if s.State != StateUnknown || !strings.Contains(s.Detail, "passive checks only") {
			t.Errorf("nginx state %+v: want UNKNOWN with the passive-checks finding", s)
		}
	}

	ctl, ok := b.(Controller)
	if !ok {
		t.Fatal("nginx driver does not implement Controller")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := ctl.SetServerState(ctx, n.name, StateDown); err != nil {
		t.Fatal(err)
	}
	// Keep-alive connections to the old workers still run the old config
	// until they close; a new connection is served by a new worker.
	c.hc.CloseIdleConnections()
	t1 := time.Now()
	last, failures := c.waitAbsent(t1, n.name, 0)
	if failures > 0 {
		t.Errorf("%d requests failed across the reload", failures)
	}
	t.Logf("SetServerState(%s, DOWN): %s", n.name, lastText(last))
	s := waitState(t, b, n.name, 0, StateDown)
	if s.Check != "config" {
		t.Errorf("state after SetServerState DOWN: %+v", s)
	}
	if err := ctl.SetServerState(ctx, n.name, StateDrain); err == nil {
		t.Error("nginx accepted DRAIN, which OSS cannot do")
	}

	n.ping.Store(http.StatusOK)
	if err := ctl.SetServerState(ctx, n.name, StateUp); err != nil {
		t.Fatal(err)
	}
	c.hc.CloseIdleConnections()
	c.waitPresent(time.Now(), n.name, slack)
}

// stopAndRestart checks Stop leaves no process and Start works again.
func stopAndRestart(t *testing.T, b Balancer, c *client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pid := b.PID()
	if (pid == 0) != (b.Kind() == Embedded) {
		t.Fatalf("PID() = %d while running", pid)
	}
	if err := b.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if pid != 0 && groupAlive(pid) {
		t.Fatalf("process group %d still has processes after Stop", pid)
	}
	if b.PID() != 0 {
		t.Fatalf("PID() = %d after Stop", b.PID())
	}
	if _, err := b.States(ctx); err == nil {
		t.Error("States succeeded on a stopped balancer")
	}
	c.hc.CloseIdleConnections()
	if r := c.get(""); r.err == nil {
		t.Fatalf("request after Stop got %d from %s", r.status, r.node)
	}
	if err := b.Stop(ctx); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if err := b.Start(ctx); err != nil {
		t.Fatalf("Start after Stop: %v", err)
	}
	if r := c.get(""); r.err != nil || r.status != http.StatusOK {
		t.Fatalf("request after restart: %+v", r)
	}
	if err := b.Start(ctx); err == nil {
		t.Error("Start on a running balancer succeeded")
	}
}

// TestDrainNOLB: with DrainNOLB a 418 node takes no new sessions but keeps
// its sticky ones (HAProxy `error-status L7OKC` and the embedded proxy),
// while another failure status still takes it DOWN and moves them.
func TestDrainNOLB(t *testing.T) {
	for _, kind := range []Kind{HAProxy, Embedded} {
		t.Run(string(kind), func(t *testing.T) {
			requireKind(t, kind)
			nodes := startFakeNodes(t, 3)
			o := testOptions(t, kind, nodes)
			o.Sticky, o.Drain = true, DrainNOLB
			b := startLB(t, o)
			c := newClient(t, b)
			n := nodes[0]

			var pinned reply
			for range 10 {
				if pinned = c.get(""); pinned.node == n.name {
					break
				}
			}
			if pinned.node != n.name || pinned.cookie != n.name {
				t.Fatalf("no sticky cookie for %s in 10 requests; last %+v", n.name, pinned)
			}
			for range 5 {
				if r := c.get(n.name); r.node != n.name || r.cookie != "" {
					t.Fatalf("cookie %s=%s: served by %q, re-cookied %q", CookieName, n.name, r.node, r.cookie)
				}
			}

			n.ping.Store(http.StatusTeapot)
			s := waitState(t, b, n.name, testInterval+slack, StateNOLB)
			if s.Check != "L7OKC/418" {
				t.Errorf("NOLB check = %q, want L7OKC/418", s.Check)
			}
			for range 12 {
				if r := c.get(""); r.err != nil || r.status != http.StatusOK || r.node == n.name {
					t.Fatalf("new session while %s is NOLB: %+v", n.name, r)
				}
			}
			for range 6 {
				if r := c.get(n.name); r.err != nil || r.status != http.StatusOK || r.node != n.name {
					t.Fatalf("sticky session while %s is NOLB went elsewhere: %+v", n.name, r)
				}
			}

			n.ping.Store(http.StatusInternalServerError)
			waitState(t, b, n.name, ejectBound(), StateDown)
			r := c.get(n.name)
			if r.err != nil || r.node == n.name || r.node == "" || r.cookie != r.node {
				t.Fatalf("sticky request after %s went DOWN: %+v; want another node and a new cookie", n.name, r)
			}
		})
	}
}

// TestController: an operator drain (sticky kept), maintenance (nothing,
// and 503 when every server is out) and ready again, through HAProxy's runtime API and the embedded proxy.
func TestController(t *testing.T) {
	for _, kind := range []Kind{HAProxy, Embedded} {
		t.Run(string(kind), func(t *testing.T) {
			requireKind(t, kind)
			nodes := startFakeNodes(t, 2)
			o := testOptions(t, kind, nodes)
			o.Sticky = true
			b := startLB(t, o)
			c := newClient(t, b)
			ctl := b.(Controller)
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			n := nodes[1]

			if err := ctl.SetServerState(ctx, n.name, StateDrain); err != nil {
				t.Fatal(err)
			}
			waitState(t, b, n.name, 0, StateDrain)
			for range 6 {
				if r := c.get(""); r.node != nodes[0].name {
					t.Fatalf("new session went to drained %s: %+v", n.name, r)
				}
			}
			if r := c.get(n.name); r.node != n.name {
				t.Fatalf("sticky session left drained %s: %+v", n.name, r)
			}

			if err := ctl.SetServerState(ctx, n.name, StateMaint); err != nil {
				t.Fatal(err)
			}
			waitState(t, b, n.name, 0, StateMaint)
			if r := c.get(n.name); r.node != nodes[0].name {
				t.Fatalf("sticky session still on %s in maintenance: %+v", n.name, r)
			}

			// Nothing left to serve: the balancer answers 503 itself.
			if err := ctl.SetServerState(ctx, nodes[0].name, StateMaint); err != nil {
				t.Fatal(err)
			}
			if r := c.get(""); r.err != nil || r.status != http.StatusServiceUnavailable || r.node != "" {
				t.Fatalf("with every server in maintenance: %+v, want the balancer's own 503", r)
			}
			for _, m := range nodes {
				if err := ctl.SetServerState(ctx, m.name, StateUp); err != nil {
					t.Fatal(err)
				}
				waitState(t, b, m.name, 0, StateUp)
			}
			if counts := c.spread(10); counts[n.name] == 0 {
				t.Fatalf("%s got no traffic after ready: %v", n.name, counts)
			}

			if err := ctl.SetServerState(ctx, "NoSuchNode", StateDrain); err == nil {
				t.Error("SetServerState on an unknown server succeeded")
			}
			if err := ctl.SetServerState(ctx, n.name, StateNOLB); err == nil {
				t.Error("SetServerState NOLB succeeded; only checks set NOLB")
			}
		})
	}
}

// TestBodyLimit: a 5 MB upload passes HAProxy, tuned nginx, tuned Caddy
// and the embedded proxy whole, and gets 413 from nginx with its defaults.
func TestBodyLimit(t *testing.T) {
	const size = 5 << 20
	for _, kind := range []Kind{HAProxy, Nginx, NginxDefaults, Caddy, Embedded} {
		t.Run(string(kind), func(t *testing.T) {
			requireKind(t, kind)
			nodes := startFakeNodes(t, 2)
			b := startLB(t, testOptions(t, kind, nodes))
			c := newClient(t, b)
			r := c.do(http.MethodPost, "/api/Spaces-1/packages/raw", bytes.NewReader(make([]byte, size)), "")
			if kind == NginxDefaults {
				if r.err != nil || r.status != http.StatusRequestEntityTooLarge {
					t.Fatalf("5 MB through nginx defaults: %+v; want 413 (client_max_body_size 1m)", r)
				}
				return
			}
			if r.err != nil || r.status != http.StatusOK || r.node == "" {
				t.Fatalf("5 MB through %s: %+v", kind, r)
			}
			if want := r.node + " got " + strconv.Itoa(size) + " bytes"; strings.TrimSpace(r.body) != want {
				t.Fatalf("node reply %q, want %q", r.body, want)
			}
		})
	}
}

func lastText(last time.Duration) string {
	if last == 0 {
		return "no request reached it after the change"
	}
	return "last request " + last.Round(time.Millisecond).String() + " after the change"
}

// TestStartErrors: a taken port is reported with the load balancer's own
// words, and the failed Start leaves nothing running.
func TestStartErrors(t *testing.T) {
	for _, kind := range []Kind{HAProxy, Nginx, Caddy, Embedded} {
		t.Run(string(kind), func(t *testing.T) {
			requireKind(t, kind)
			nodes := startFakeNodes(t, 1)
			taken, err := net.Listen("tcp", testLBHost+":0")
			if err != nil {
				t.Fatal(err)
			}
			defer taken.Close()
			o := testOptions(t, kind, nodes)
			o.Listen = taken.Addr().String()
			b, err := New(o)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			err = b.Start(ctx)
			if err == nil {
				_ = b.Stop(ctx)
				t.Fatal("Start on a taken port succeeded")
			}
			if !strings.Contains(strings.ToLower(err.Error()), "bind") && !strings.Contains(err.Error(), "address already in use") {
				t.Errorf("error does not say the port is taken: %v", err)
			}
			if b.PID() != 0 {
				t.Errorf("PID() = %d after a failed Start", b.PID())
			}
			t.Logf("%s: %v", kind, err)
		})
	}
}
