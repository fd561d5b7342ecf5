package local_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/cluster/local"
	"github.com/octoha/octoha/harness/history"
	"github.com/octoha/octoha/harness/lb"
	"github.com/octoha/octoha/harness/traffic"
)

// TestHAProxySQLiteLocalDir: three nodes behind HAProxy on SQLite and a
// local directory, through a drain, an undrain, a SIGKILL and Down.
func TestHAProxySQLiteLocalDir(t *testing.T) {
	bin := needLocal(t, lb.HAProxy, cluster.DBSQLite, cluster.StorageLocal)
	exerciseCluster(t, bin, testSpec("127.0.20", lb.HAProxy, cluster.DBSQLite, cluster.StorageLocal))
}

// TestHAProxyPostgresSamba: the same on a real PostgreSQL and a Samba share.
func TestHAProxyPostgresSamba(t *testing.T) {
	bin := needLocal(t, lb.HAProxy, cluster.DBPostgres, cluster.StorageSMB)
	c := exerciseCluster(t, bin, testSpec("127.0.21", lb.HAProxy, cluster.DBPostgres, cluster.StorageSMB))
	if err := cluster.CanAll(c, cluster.CapDBOutage, cluster.CapShareOutage); err != nil {
		t.Errorf("cluster fell back to embedded parts: %v", err)
	}
}

// exerciseCluster is the scenario on one spec:
//   - the load balancer answers its ping and spreads requests over all nodes;
//   - a node drained through another node's API is reported out by HAProxy,
//     and no new request reaches it within interval × fall + one interval
//     of its ping turning 418;
//   - undrained, it is back in within rise × interval + one interval;
//   - a SIGKILLed node is reported DOWN and traffic carries on elsewhere;
//   - Down leaves no process of the run and no run directory.
func exerciseCluster(t *testing.T, bin string, spec cluster.Spec) *local.Cluster {
	c, took := upCluster(t, bin, spec)
	t.Logf("%s + %s + %s: ready in %v", spec.LB.Kind, spec.DB.Kind, spec.Storage.Kind, took.Round(time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	nodes := c.Nodes()
	if len(nodes) != 3 {
		t.Fatalf("want 3 nodes, got %+v", nodes)
	}
	n1, n2, n3 := nodes[0], nodes[1], nodes[2]
	names := []string{n1.Name, n2.Name, n3.Name}
	inter := spec.LB.Interval
	ejectBound := time.Duration(spec.LB.Fall)*inter + inter
	rejoinBound := time.Duration(spec.LB.Rise)*inter + inter
	// Every PID the cluster ever reported, so Down can be checked against
	// all of them (a killed node's PID included).
	var pids []int
	notePIDs := func() {
		for _, p := range c.PIDs() {
			if !slices.Contains(pids, p) {
				pids = append(pids, p)
			}
		}
	}
	notePIDs()
	wantPIDs := len(nodes) + 1 // nodes and the load balancer
	if spec.DB.Kind == cluster.DBPostgres {
		wantPIDs++
	}
	if spec.Storage.Kind == cluster.StorageSMB {
		wantPIDs++
	}
	if len(pids) != wantPIDs {
		t.Fatalf("PIDs() = %v: want %d (every node, the load balancer, any database and share server)", pids, wantPIDs)
	}

	// The load balancer serves, and spreads over all three nodes.
	code, _, err := cluster.PingStatus(ctx, http.DefaultClient, c.URL())
	if err != nil || code != http.StatusOK {
		t.Fatalf("LB ping: %d %v", code, err)
	}
	const n = 60
	counts := spread(t, c.URL(), n)
	t.Logf("spread of %d pings through the LB: %v", n, counts)
	for _, name := range names {
		// Round robin gives each node n/3; half of that still proves the
		// node is in rotation without depending on HAProxy's exact order.
		if counts[name] < n/6 {
			t.Errorf("node %s served %d of %d requests; want at least %d (spread %v)", name, counts[name], n, n/6, counts)
		}
	}
	if len(counts) != 3 {
		t.Errorf("requests served by %v; want exactly the three nodes", counts)
	}

	p := startProber(t, c.URL(), 5*time.Millisecond, 90*time.Second)

	// Drain node 2 through node 1's API.
	t0 := time.Now()
	if err := setMaintenance(ctx, n1.URL, c.APIKey(), n2.ID, true); err != nil {
		t.Fatalf("drain %s through %s: %v", n2.Name, n1.Name, err)
	}
	// The node learns of the drain from the shared database at its next
	// heartbeat; HAProxy's clock starts when the node's ping says 418.
	t418 := directPing(t, n2.URL, http.StatusTeapot, 2*spec.Node.Heartbeat+5*time.Second)
	tDown, st := lbState(t, c, n2.Name, lb.StateDown, ejectBound+10*time.Second)
	if st.Check != "L7STS/418" {
		t.Errorf("HAProxy's last check of the drained node: %q, want L7STS/418", st.Check)
	}
	after := p.waitProbes(t, tDown, 40)
	for _, r := range after {
		if r.node == n2.Name {
			t.Errorf("a request sent at %s, after HAProxy reported %s DOWN (%s), reached it", r.start.Format(time.StampMicro), n2.Name, tDown.Format(time.StampMicro))
		}
		if r.code != http.StatusOK {
			t.Errorf("request during the drain failed: %d %v (node %q)", r.code, r.err, r.node)
		}
	}
	last := p.lastServedBy(n2.Name)
	eject := max(last.Sub(t418), 0)
	t.Logf("drain %s: PUT→ping 418 %v; 418→HAProxy DOWN %v; 418→last request it served %v (bound interval×fall+interval = %v)",
		n2.Name, t418.Sub(t0).Round(time.Millisecond), tDown.Sub(t418).Round(time.Millisecond), eject.Round(time.Millisecond), ejectBound)
	if eject > ejectBound {
		t.Errorf("the drained node got new requests for %v after its ping turned 418; want at most %v", eject, ejectBound)
	}
	if tDown.Sub(t418) > ejectBound {
		t.Errorf("HAProxy took %v to report the drained node DOWN; want at most %v", tDown.Sub(t418), ejectBound)
	}

	// Undrain it through the load balancer: back in rotation.
	t0 = time.Now()
	if err := setMaintenance(ctx, c.URL(), c.APIKey(), n2.ID, false); err != nil {
		t.Fatalf("undrain %s through the LB: %v", n2.Name, err)
	}
	t200 := directPing(t, n2.URL, http.StatusOK, 2*spec.Node.Heartbeat+5*time.Second)
	tUp, _ := lbState(t, c, n2.Name, lb.StateUp, rejoinBound+10*time.Second)
	var first time.Time
	waitUntil(t, rejoinBound+10*time.Second, n2.Name+" serves requests through the LB again", func() (bool, string) {
		var ok bool
		first, ok = p.firstServedBy(n2.Name, t200)
		return ok, "not yet"
	})
	rejoin := first.Sub(t200)
	t.Logf("undrain %s: PUT→ping 200 %v; 200→HAProxy UP %v; 200→first request it served %v (bound rise×interval+interval = %v)",
		n2.Name, t200.Sub(t0).Round(time.Millisecond), tUp.Sub(t200).Round(time.Millisecond), rejoin.Round(time.Millisecond), rejoinBound)
	if rejoin > rejoinBound {
		t.Errorf("the undrained node took %v to get requests again; want at most %v", rejoin, rejoinBound)
	}

	// SIGKILL node 3: HAProxy reports it DOWN, the others carry the load.
	nc, ok := cluster.Cluster(c).(cluster.NodeController)
	if !ok {
		t.Fatal("the local cluster is not a NodeController")
	}
	tKill := time.Now()
	if err := nc.KillNode(ctx, n3.Name); err != nil {
		t.Fatalf("kill %s: %v", n3.Name, err)
	}
	tKilled := time.Now()
	tDown, st = lbState(t, c, n3.Name, lb.StateDown, ejectBound+10*time.Second)
	failed := 0
	for _, r := range p.since(tKill) {
		if !r.start.After(tDown) && r.code != http.StatusOK {
			failed++
		}
	}
	t.Logf("kill %s: SIGKILL took %v; kill→HAProxy DOWN %v (check %s); %d requests failed in between",
		n3.Name, tKilled.Sub(tKill).Round(time.Millisecond), tDown.Sub(tKilled).Round(time.Millisecond), st.Check, failed)
	if tDown.Sub(tKilled) > ejectBound {
		t.Errorf("HAProxy took %v to report the killed node DOWN; want at most %v", tDown.Sub(tKilled), ejectBound)
	}
	after = p.waitProbes(t, tDown, 40)
	served := map[string]int{}
	for _, r := range after {
		served[r.node]++
		if r.code != http.StatusOK {
			t.Errorf("request after the kill was detected failed: %d %v", r.code, r.err)
		}
	}
	t.Logf("after the kill: %d requests served by %v", len(after), served)
	if served[n3.Name] > 0 || served[n1.Name] == 0 || served[n2.Name] == 0 {
		t.Errorf("after the kill, requests were served by %v; want %s and %s only", served, n1.Name, n2.Name)
	}
	for _, comp := range c.Components() {
		if comp.Part == "node "+n3.Name && comp.PID != 0 {
			t.Errorf("Components() still reports the killed node's PID %d", comp.PID)
		}
	}
	if live := len(c.PIDs()); live != len(pids)-1 {
		t.Errorf("PIDs() after the kill: %v; want one fewer than %v", c.PIDs(), pids)
	}
	p.stop()

	// Down: nothing of the run is left.
	notePIDs()
	// The process-group scan must see the running processes, or its
	// "nothing left" below would prove nothing.
	if before := groupMembers(pids); len(before) < len(c.PIDs()) {
		t.Fatalf("process-group scan found %v for the %d running PIDs %v", before, len(c.PIDs()), c.PIDs())
	}
	start := time.Now()
	dctx, dcancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer dcancel()
	if err := c.Down(dctx); err != nil {
		t.Fatalf("Down: %v", err)
	}
	t.Logf("Down took %v; checking PIDs %v", time.Since(start).Round(time.Millisecond), pids)
	assertAllGone(t, pids)
	assertGone(t, c.RunDir())
	if err := c.Down(dctx); err != nil {
		t.Errorf("a second Down: %v", err)
	}
	return c
}

// TestUpRefusesLiveRunDir: a second Up on the run directory of a live
// cluster refuses, saying how to stop the first, and leaves it running.
func TestUpRefusesLiveRunDir(t *testing.T) {
	bin := needLocal(t, lb.HAProxy, cluster.DBSQLite, cluster.StorageLocal)
	spec := testSpec("127.0.20", lb.HAProxy, cluster.DBSQLite, cluster.StorageLocal)
	spec.Nodes = 1
	c, _ := upCluster(t, bin, spec)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The same addresses too: the run directory is what is checked first,
	// so the message is about it, not about a taken address.
	_, err := local.Up(ctx, spec, local.Options{RunDir: c.RunDir(), Binary: bin, Logger: testLogger(t)})
	if err == nil {
		t.Fatal("a second Up on a live run directory succeeded")
	}
	want := fmt.Sprintf("a cluster is already running in this run directory: %s", c.RunDir())
	if !errors.Is(err, local.ErrRunning) || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "octoha down --run-dir "+c.RunDir()) {
		t.Errorf("second Up: %v\nwant ErrRunning saying %q and how to stop it", err, want)
	}
	if err := cluster.WaitReady(ctx, c); err != nil {
		t.Errorf("the first cluster no longer serves after the refused Up: %v", err)
	}
}

// TestNginxDefaultsBodyLimit: nginx as commonly deployed refuses a 5 MB
// upload with 413 (client_max_body_size 1m); HAProxy and the tuned nginx
// profile, in front of the same nodes, pass it.
func TestNginxDefaultsBodyLimit(t *testing.T) {
	bin := needLocal(t, lb.NginxDefaults, cluster.DBSQLite, cluster.StorageLocal)
	if err := lb.Available(lb.HAProxy); err != nil {
		t.Skipf("HAProxy is not installed (make deps installs it): %v", err)
	}
	spec := testSpec("127.0.22", lb.NginxDefaults, cluster.DBSQLite, cluster.StorageLocal)
	c, took := upCluster(t, bin, spec)
	t.Logf("nginx-defaults cluster ready in %v", took.Round(time.Millisecond))
	if k := c.Spec().LB.Kind; k != string(lb.NginxDefaults) {
		t.Fatalf("cluster runs %s, not nginx-defaults", k)
	}
	backends := make([]lb.Backend, 0, 3)
	for i, n := range c.Nodes() {
		backends = append(backends, lb.Backend{Name: n.Name, Addr: c.Spec().NodeAddr(i)})
	}
	const size = 5 << 20
	upload := func(url string, seed int64) traffic.PackageResult {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		s, err := traffic.Upload(ctx, traffic.UploadOptions{URL: url, APIKey: c.APIKey(), Size: size, Count: 1, Seed: seed, StallTimeout: 20 * time.Second})
		if err != nil {
			t.Fatalf("upload through %s: %v", url, err)
		}
		return s.Packages[0]
	}

	got := upload(c.URL(), 1)
	t.Logf("5 MiB through nginx-defaults: %s, status %d, %s", got.Outcome, got.Status, got.Error)
	if got.Outcome != history.Failed || got.Status != http.StatusRequestEntityTooLarge {
		t.Errorf("5 MiB through nginx-defaults: outcome %s status %d (%s); want failed with 413", got.Outcome, got.Status, got.Error)
	}

	for i, kind := range []lb.Kind{lb.HAProxy, lb.Nginx} {
		bal, err := lb.New(lb.Options{Kind: kind, Listen: fmt.Sprintf("127.0.22.%d:%d", 20+i, spec.Port), Dir: filepath.Join(t.TempDir(), string(kind)), Backends: backends})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := bal.Start(ctx); err != nil {
			cancel()
			t.Fatalf("start %s: %v", kind, err)
		}
		cancel()
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := bal.Stop(ctx); err != nil {
				t.Errorf("stop %s: %v", kind, err)
			}
		})
		directPing(t, bal.URL(), http.StatusOK, 10*time.Second)
		got := upload(bal.URL(), int64(2+i))
		t.Logf("5 MiB through %s: %s, status %d, node %s", kind, got.Outcome, got.Status, got.Node)
		if got.Outcome != history.OK || got.Status != http.StatusCreated {
			t.Errorf("5 MiB through %s: outcome %s status %d (%s); want ok with 201", kind, got.Outcome, got.Status, got.Error)
		}
	}
}
