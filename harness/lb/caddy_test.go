package lb

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/octoha/octoha/octopusapi"
)

// TestCaddyConfig: both profiles render what the driver promises, and Caddy
// itself accepts them (when installed).
func TestCaddyConfig(t *testing.T) {
	for _, kind := range []Kind{Caddy, CaddyTimeout} {
		t.Run(string(kind), func(t *testing.T) {
			o := configOptions(t, kind)
			cfg := caddyConfig(o)
			for _, want := range []string{
				"admin unix/" + filepath.Join(o.Dir, "admin", "caddy.sock") + " {",
				"auto_https off",
				":18080 {\n\tbind 127.0.0.110\n",
				"to 127.0.0.11:8080 # Node1\n", "to 127.0.0.12:8080 # Node2\n",
				"lb_policy round_robin",
				"health_uri /api/octopusservernodes/ping",
				"health_interval 500ms",
				"health_status 200",
				"read_header 30s", "idle 600s",
				"dial_timeout 5s", "response_header_timeout 900s",
			} {
				if !strings.Contains(cfg, want) {
					t.Errorf("Caddyfile lacks %q:\n%s", want, cfg)
				}
			}
			// No access log: it would record API keys in headers and queries.
			if strings.Contains(cfg, "\tlog {") || strings.Contains(cfg, "access") {
				t.Errorf("Caddyfile has an access log:\n%s", cfg)
			}
			hasReadBody := strings.Contains(cfg, "read_body 60s")
			if hasReadBody != (kind == CaddyTimeout) {
				t.Errorf("%s: read_body 60s present = %v:\n%s", kind, hasReadBody, cfg)
			}
			got := caddyBackendsFromConfig(cfg)
			if got["127.0.0.11:8080"] != "Node1" || got["127.0.0.12:8080"] != "Node2" || len(got) != 2 {
				t.Errorf("backends read back from the Caddyfile: %v", got)
			}
			bin, err := findBinary("caddy", "")
			if err != nil {
				t.Logf("caddy not installed; Caddyfile checked textually only: %v", err)
				return
			}
			path := filepath.Join(o.Dir, "Caddyfile")
			if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, bin, "adapt", "--config", path, "--adapter", "caddyfile").CombinedOutput()
			if err != nil {
				t.Fatalf("caddy adapt: %v\n%s\n%s", err, out, cfg)
			}
			// read_body is Go's ReadTimeout, in nanoseconds.
			if hasRT := strings.Contains(string(out), `"read_timeout":60000000000`); hasRT != (kind == CaddyTimeout) {
				t.Errorf("%s: adapted read_timeout present = %v:\n%s", kind, hasRT, out)
			}
		})
	}
}

// TestCaddyHealthRouting: round robin, a 418 node ejected by the active
// check and readmitted on 200 (States follows both), a killed node's
// traffic moving, ReadStates from another process agreeing, and Stop
// leaving nothing behind.
func TestCaddyHealthRouting(t *testing.T) {
	requireKind(t, Caddy)
	nodes := startFakeNodes(t, 3)
	o := testOptions(t, Caddy, nodes)
	b := startLB(t, o)
	c := newClient(t, b)
	counts := c.spread(60)
	for _, n := range nodes {
		if counts[n.name] < 10 {
			t.Fatalf("round robin over 3 nodes: %v; %s got under 10 of 60", counts, n.name)
		}
	}
	for _, s := range waitStates(t, b) {
		if s.State != StateUp || !strings.Contains(s.Detail, "passive fails") {
			t.Fatalf("at start: %+v, want UP with the admin API's counts", s)
		}
	}

	n := nodes[1]
	n.ping.Store(http.StatusTeapot)
	t0 := time.Now()
	last, failures := c.waitAbsent(t0, n.name, ejectBound())
	s := waitState(t, b, n.name, ejectBound(), StateDown)
	if !strings.Contains(s.Check, "418") {
		t.Errorf("%s state %+v: check should name the 418", n.name, s)
	}
	if failures > 0 {
		t.Errorf("%d requests failed while %s drained", failures, n.name)
	}
	t.Logf("418 on %s: %s (bound %v); state %+v", n.name, lastText(last), ejectBound(), s)
	names := []string{nodes[0].name, nodes[1].name, nodes[2].name}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	read, err := ReadStates(ctx, Caddy, o.Dir, names)
	if err != nil {
		t.Fatal(err)
	}
	if read[1].State != StateDown || read[0].State != StateUp || read[2].State != StateUp {
		t.Errorf("ReadStates from the log: %+v, want %s DOWN, the others UP", read, n.name)
	}

	n.ping.Store(http.StatusOK)
	back := c.waitPresent(time.Now(), n.name, rejoinBound())
	waitState(t, b, n.name, rejoinBound(), StateUp)
	t.Logf("200 on %s again: first request %v after the flip", n.name, back.Round(time.Millisecond))

	dead := nodes[2]
	dead.kill()
	last, failures = c.waitAbsent(time.Now(), dead.name, ejectBound())
	waitState(t, b, dead.name, ejectBound(), StateDown)
	t.Logf("killed %s: %s, %d failed requests until ejected", dead.name, lastText(last), failures)

	stopAndRestart(t, b, c)
	if _, err := os.Stat(caddySocketPath(o.Dir)); err != nil {
		t.Errorf("admin socket after restart: %v", err)
	}
	if st, err := os.Stat(caddyAdminDir(o.Dir)); err != nil {
		t.Error(err)
	} else if st.Mode().Perm() != 0o700 {
		t.Errorf("admin socket's directory has mode %v, want 0700", st.Mode().Perm())
	}
	if err := b.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(caddySocketPath(o.Dir)); !os.IsNotExist(err) {
		t.Errorf("admin socket left after Stop: %v", err)
	}
	// Caddy's autosave and data stay in Dir, not in the user's home.
	if _, err := os.Stat(filepath.Join(o.Dir, "config", "caddy", "autosave.json")); err != nil {
		t.Errorf("autosave not under Dir: %v", err)
	}
}

func waitStates(t *testing.T, b Balancer) []ServerState {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	states, err := b.States(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return states
}

// TestCaddyReadBody measures what Caddy 2.6 does with a steady upload
// that outlasts `timeouts read_body`: it does not answer 408. The request
// context ends, the node gets a truncated body, and Caddy writes no error:
// Go's server then sends 200 OK with an empty body and Connection: close.
// The same upload passes the tuned profile whole.
//
// The cut is proven at the node (it got less than the whole body), so the
// verdict does not depend on whether the client reads Caddy's answer before
// its own writes meet the closed connection (broken pipe / reset): a client
// still sending when a proxy gives up may legitimately see either.
func TestCaddyReadBody(t *testing.T) {
	requireKind(t, CaddyTimeout)
	nodes := []*fakeNode{startFakeNode(t, "Node1", "127.0.220.11")}
	const size = 64 << 10 * 150 // about 3 s at slowBody's pace
	const path = "/api/Spaces-1/packages/raw"

	o := testOptions(t, Caddy, nodes)
	o.Listen = "127.0.220.10:0"
	tuned := startLB(t, o)
	before := nodes[0].bodyCount()
	u := postSlow(t, tuned, path, size)
	if u.resp == nil || u.resp.StatusCode != http.StatusOK || u.resp.Header.Get(octopusapi.HeaderNode) != "Node1" || !strings.Contains(u.body, "got 9830400 bytes") {
		t.Fatalf("a slow upload through tuned Caddy: %s (write: %v)", u, u.writeErr)
	}
	if got := nodes[0].waitBodies(t, before, 10*time.Second); len(got) != 1 || got[0].err != nil || got[0].bytes != size {
		t.Errorf("the node read %+v through tuned Caddy, want one whole body of %d bytes", got, size)
	}
	t.Logf("tuned caddy: %s after %s", u, u.took.Round(time.Millisecond))

	o = testOptions(t, CaddyTimeout, nodes)
	o.Listen = "127.0.220.10:0"
	o.RequestTimeout = time.Second
	limited := startLB(t, o)
	before = nodes[0].bodyCount()
	u = postSlow(t, limited, path, size)
	t.Logf("caddy read_body 1s: %s after %s (write: %v)", u, u.took.Round(time.Millisecond), u.writeErr)

	// The cut, whatever the client saw: the node's one request ended
	// before the whole body came.
	got := nodes[0].waitBodies(t, before, 10*time.Second)
	if len(got) != 1 {
		t.Fatalf("the node read %d request bodies, want the 1 cut short: %+v", len(got), got)
	}
	if got[0].err == nil || got[0].bytes >= size {
		t.Fatalf("the node read %d of %d bytes (err %v): the limit did not cut the upload", got[0].bytes, size, got[0].err)
	}
	// Go's ReadTimeout cannot fire before 1 s of reading; the whole body
	// takes at least 3 s to send, and the node's short read above already
	// shows the cut came first. The upper bound only catches an answer
	// held back long after the cut (slack for a loaded CI machine).
	if u.took < 900*time.Millisecond || u.took > 6*time.Second {
		t.Errorf("answered after %s; the limit is 1s", u.took)
	}
	if u.resp == nil {
		// Caddy closed the connection with the client's unread data
		// pending and the reset reached the client before the answer
		// could be read: legitimate for a client still sending.
		if !connectionCut(u.readErr) {
			t.Fatalf("reading Caddy's answer failed with %v; want an answer or the connection closed or reset", u.readErr)
		}
		t.Logf("no answer readable (%v): the cut is proven by the node's short read", u.readErr)
		return
	}
	if u.resp.Header.Get(octopusapi.HeaderNode) != "" || strings.Contains(u.body, "got") {
		t.Fatalf("the node's answer came through: the limit did not bite: %s", u)
	}
	// What Caddy 2.6.2 answers; a later Caddy that answers an error status
	// instead fails here, so the README's finding gets revisited.
	if u.resp.StatusCode != http.StatusOK || u.body != "" {
		t.Errorf("Caddy answered %s; 2.6.2 was measured answering 200 with an empty body", u)
	}
}

// slowUpload is what a client sending a slow body saw.
type slowUpload struct {
	resp     *http.Response // nil if no answer could be read
	body     string
	readErr  error         // reading the answer (status line, headers or body)
	writeErr error         // sending the request, informative only
	took     time.Duration // from the first byte sent to the answer or the failed read
}

func (u slowUpload) String() string {
	if u.resp == nil {
		return fmt.Sprintf("no answer (%v)", u.readErr)
	}
	return fmt.Sprintf("%s node %q body %q close %v (body read: %v)",
		u.resp.Status, u.resp.Header.Get(octopusapi.HeaderNode), u.body, u.resp.Close, u.readErr)
}

// postSlow sends a POST of size bytes at slowBody's pace on its own
// connection and reads the answer while still sending, as a client that
// watches its socket does. net/http's Transport would hide the outcome:
// when a proxy answers and closes mid-body, RoundTrip returns whichever of
// the answer and the write error (broken pipe, reset) it sees first.
func postSlow(t *testing.T, b Balancer, path string, size int) slowUpload {
	t.Helper()
	host := strings.TrimPrefix(b.URL(), "http://")
	conn, err := net.DialTimeout("tcp", host, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", host, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(60 * time.Second)) // bounds a hung proxy
	start := time.Now()
	wrote := make(chan error, 1)
	go func() {
		_, err := fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", path, host, size)
		if err == nil {
			_, err = io.Copy(conn, &slowBody{left: size})
		}
		wrote <- err
	}()
	var u slowUpload
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		u.readErr = err
	} else {
		u.resp = resp
		msg, err := io.ReadAll(resp.Body)
		u.body, u.readErr = string(msg), err
		resp.Body.Close()
	}
	u.took = time.Since(start)
	conn.Close() // stops a writer still sending
	u.writeErr = <-wrote
	return u
}

// connectionCut reports whether err is the peer closing or resetting the
// connection (not, say, a timeout or a malformed answer).
func connectionCut(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
