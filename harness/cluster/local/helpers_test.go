package local_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/cluster/local"
	"github.com/octoha/octoha/harness/lb"
	"github.com/octoha/octoha/internal/proc"
	"github.com/octoha/octoha/internal/testbin"
	"github.com/octoha/octoha/octopusapi"
	"github.com/octoha/octoha/services/postgres"
	"github.com/octoha/octoha/services/samba"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testbin.Cleanup()
	os.Exit(code)
}

// needLocal skips when the real components a local cluster test needs are
// missing, and returns the octoha binary that runs the nodes.
func needLocal(tb testing.TB, lbKind lb.Kind, db, storage string) string {
	tb.Helper()
	if testing.Short() {
		tb.Skip("-short: skipping a test that runs a whole local cluster of processes")
	}
	if err := lb.Available(lbKind); err != nil {
		tb.Skipf("%s is not installed (make deps installs it): %v", lbKind, err)
	}
	if db == cluster.DBPostgres {
		if _, err := postgres.Available(); err != nil {
			tb.Skipf("PostgreSQL is not installed (make deps installs it): %v", err)
		}
	}
	if storage == cluster.StorageSMB {
		if _, err := samba.Available(); err != nil {
			tb.Skipf("Samba is not usable here (make deps installs it; smbd needs root): %v", err)
		}
	}
	bin, err := testbin.Octoha()
	if err != nil {
		tb.Fatalf("build octoha: %v", err)
	}
	return bin
}

// testSpec is a 3-node spec on a loopback network of its own.
func testSpec(network string, lbKind lb.Kind, db, storage string) cluster.Spec {
	s := cluster.Defaults()
	s.Name = "test-" + strings.ReplaceAll(network, ".", "-")
	s.Network = network
	s.LB.Kind = string(lbKind)
	s.DB.Kind = db
	s.Storage.Kind = storage
	return s
}

// tbWriter sends a child's or the provider's log lines to the test log.
type tbWriter struct {
	tb testing.TB
	mu sync.Mutex
}

func (w *tbWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.tb.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func testLogger(tb testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(&tbWriter{tb: tb}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// upCluster brings a cluster up in a fresh run directory, with no embedded
// fallbacks (the test is about the real components), and registers its
// teardown. It returns the cluster and how long Up took.
func upCluster(tb testing.TB, bin string, spec cluster.Spec) (*local.Cluster, time.Duration) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	start := time.Now()
	c, err := local.Up(ctx, spec, local.Options{
		RunDir: filepath.Join(tb.TempDir(), "run"), Binary: bin, Logger: testLogger(tb),
		NoFallback: true, ReadyTimeout: 60 * time.Second,
	})
	took := time.Since(start)
	if err != nil {
		tb.Fatalf("local.Up: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if err := c.Down(ctx); err != nil {
			tb.Errorf("cleanup: Down: %v", err)
		}
	})
	return c, took
}

// setMaintenance drains (true) or undrains a node through the API of any
// node or the load balancer, as an operator would.
func setMaintenance(ctx context.Context, baseURL, key, nodeID string, on bool) error {
	body, err := json.Marshal(octopusapi.NodeUpdate{Id: nodeID, IsInMaintenanceMode: &on})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, baseURL+octopusapi.NodePath(nodeID), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set(octopusapi.HeaderAPIKey, key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("PUT %s: %w", octopusapi.NodePath(nodeID), err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("PUT %s: %s: %s", octopusapi.NodePath(nodeID), resp.Status, b)
	}
	var n octopusapi.Node
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("PUT %s: decode answer: %w", octopusapi.NodePath(nodeID), err)
	}
	if n.IsInMaintenanceMode != on {
		return fmt.Errorf("PUT %s: answer says IsInMaintenanceMode=%v", octopusapi.NodePath(nodeID), n.IsInMaintenanceMode)
	}
	return nil
}

// waitUntil polls cond every 10ms until it holds or timeout passes; cond
// returns a description of what it last saw, for the failure message.
func waitUntil(tb testing.TB, timeout time.Duration, what string, cond func() (bool, string)) time.Time {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, last := cond()
		if ok {
			return time.Now()
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s: not within %v (last: %s)", what, timeout, last)
		}
		time.Sleep(10 * time.Millisecond) // polling a real condition under a deadline
	}
}

// directPing waits until a node's own ping answers want and returns when
// it was first seen.
func directPing(tb testing.TB, url string, want int, timeout time.Duration) time.Time {
	tb.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	return waitUntil(tb, timeout, fmt.Sprintf("%s ping answers %d", url, want), func() (bool, string) {
		code, _, err := cluster.PingStatus(context.Background(), client, url)
		if err != nil {
			return false, err.Error()
		}
		return code == want, strconv.Itoa(code)
	})
}

// lbState waits until the load balancer reports the node in want.
func lbState(tb testing.TB, c cluster.Cluster, name string, want lb.State, timeout time.Duration) (time.Time, lb.ServerState) {
	tb.Helper()
	var got lb.ServerState
	at := waitUntil(tb, timeout, fmt.Sprintf("load balancer reports %s %s", name, want), func() (bool, string) {
		states, err := c.LBStates(context.Background())
		if err != nil {
			return false, err.Error()
		}
		for _, s := range states {
			if s.Name == name {
				got = s
				return s.State == want && !strings.HasPrefix(s.Check, "INI"), fmt.Sprintf("%+v", s)
			}
		}
		return false, fmt.Sprintf("%s not in %+v", name, states)
	})
	return at, got
}

// probe is one request the prober sent through the load balancer.
type probe struct {
	start time.Time
	code  int
	node  string
	err   error
}

// prober sends GET ping through the load balancer every few milliseconds
// (one request at a time, keep-alive) and records who served each, until
// stopped or maxRun passes.
type prober struct {
	mu     sync.Mutex
	recs   []probe
	cancel context.CancelFunc
	done   chan struct{}
}

func startProber(tb testing.TB, url string, every, maxRun time.Duration) *prober {
	ctx, cancel := context.WithTimeout(context.Background(), maxRun)
	p := &prober{cancel: cancel, done: make(chan struct{})}
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 2}}
	go func() {
		defer close(p.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			start := time.Now()
			code, node, err := cluster.PingStatus(ctx, client, url)
			if ctx.Err() != nil {
				return
			}
			p.mu.Lock()
			p.recs = append(p.recs, probe{start: start, code: code, node: node, err: err})
			p.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	tb.Cleanup(p.stop)
	return p
}

func (p *prober) stop() {
	p.cancel()
	<-p.done
}

// since returns the probes sent at or after t.
func (p *prober) since(t time.Time) []probe {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []probe
	for _, r := range p.recs {
		if !r.start.Before(t) {
			out = append(out, r)
		}
	}
	return out
}

// waitProbes waits until at least n probes were sent after t.
func (p *prober) waitProbes(tb testing.TB, t time.Time, n int) []probe {
	tb.Helper()
	var got []probe
	waitUntil(tb, 30*time.Second, fmt.Sprintf("%d probes after %s", n, t.Format(time.StampMilli)), func() (bool, string) {
		got = p.since(t)
		return len(got) >= n, strconv.Itoa(len(got))
	})
	return got
}

// lastServedBy is the send time of the last probe the node served.
func (p *prober) lastServedBy(node string) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := len(p.recs) - 1; i >= 0; i-- {
		if p.recs[i].node == node {
			return p.recs[i].start
		}
	}
	return time.Time{}
}

// firstServedBy is the send time of the first probe after t that the node
// served.
func (p *prober) firstServedBy(node string, t time.Time) (time.Time, bool) {
	for _, r := range p.since(t) {
		if r.node == node {
			return r.start, true
		}
	}
	return time.Time{}, false
}

// spread sends n pings through url and counts the serving nodes.
func spread(tb testing.TB, url string, n int) map[string]int {
	tb.Helper()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil}}
	counts := map[string]int{}
	for range n {
		code, node, err := cluster.PingStatus(context.Background(), client, url)
		if err != nil || code != http.StatusOK {
			tb.Fatalf("ping through %s: %d %v", url, code, err)
		}
		counts[node]++
	}
	return counts
}

// groupMembers lists the live processes whose process group is one of
// pgids: children a cluster process forked (PostgreSQL backends, smbd
// workers) are in their leader's group.
func groupMembers(pgids []int) []string {
	want := map[int]bool{}
	for _, g := range pgids {
		want[g] = true
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return []string{"cannot read /proc: " + err.Error()}
	}
	var out []string
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 3 || f[0] == "Z" || f[0] == "X" {
			continue
		}
		if g, _ := strconv.Atoi(f[2]); want[g] {
			out = append(out, fmt.Sprintf("pid %d (%s, group %d)", pid, s[:i+1], g))
		}
	}
	return out
}

// assertAllGone checks that no process of a run is left: none of the
// PIDs, and nothing in their process groups.
func assertAllGone(tb testing.TB, pids []int) {
	tb.Helper()
	var alive []int
	for _, pid := range pids {
		if proc.Alive(pid) {
			alive = append(alive, pid)
		}
	}
	if len(alive) > 0 {
		tb.Errorf("processes of the run still alive: %v (of %v)", alive, pids)
	}
	if left := groupMembers(pids); len(left) > 0 {
		tb.Errorf("processes left in the run's process groups: %v", left)
	}
}

// assertGone checks that a path no longer exists.
func assertGone(tb testing.TB, path string) {
	tb.Helper()
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		tb.Errorf("%s still exists after Down (stat: %v)", path, err)
	}
}
