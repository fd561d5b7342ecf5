package docker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/lb"
	"github.com/octoha/octoha/harness/traffic"
	"github.com/octoha/octoha/octopusapi"
)

// needDocker skips the test, saying exactly why, when the engine or the
// images are missing (CI builds them first with `make images`).
func needDocker(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: the docker provider tests start containers")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := Available(ctx); err != nil {
		t.Skipf("docker provider not available here: %v", err)
	}
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// upCluster brings a cluster up and registers Down (and a leftover check)
// as cleanup, so a failing test removes everything too.
func upCluster(t *testing.T, ctx context.Context, spec cluster.Spec, opts Options) *Cluster {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	if opts.RunID == "" {
		opts.RunID = "t" + newRunID()
	}
	t.Cleanup(func() {
		dctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := Cleanup(dctx, opts.RunID); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	c, err := Up(ctx, spec, opts)
	if err != nil {
		t.Fatalf("Up: %v", err)
	}
	return c
}

func pingN(t *testing.T, ctx context.Context, url string, n int) map[string]int {
	t.Helper()
	hc := &http.Client{Timeout: 5 * time.Second}
	seen := map[string]int{}
	for range n {
		code, node, err := cluster.PingStatus(ctx, hc, url)
		if err != nil || code != http.StatusOK {
			t.Fatalf("ping %s: %d %v", url, code, err)
		}
		seen[node]++
	}
	return seen
}

// waitState waits for the load balancer to report node in state want.
func waitState(t *testing.T, ctx context.Context, c *Cluster, node string, want lb.State) time.Duration {
	t.Helper()
	start := time.Now()
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := cluster.WaitLBState(wctx, c, []string{node}, want); err != nil {
		t.Fatal(err)
	}
	return time.Since(start)
}

func getRaw(ctx context.Context, base, apiKey, id string) ([]byte, int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+octopusapi.PackageRawPath(octopusapi.DefaultSpaceID, id), nil)
	if err != nil {
		return nil, 0, "", err
	}
	req.Header.Set(octopusapi.HeaderAPIKey, apiKey)
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return nil, 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return b, resp.StatusCode, resp.Header.Get(octopusapi.HeaderNode), err
}

// TestCluster brings up three nodes with PostgreSQL (or SQL Server) and
// Samba behind HAProxy, then walks every fault the provider offers.
func TestCluster(t *testing.T) {
	needDocker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	spec := cluster.Defaults()
	spec.Name = "dockertest"
	spec.Nodes = 3
	spec.Node.Heartbeat = 500 * time.Millisecond
	spec.Node.UnhealthyAfter = 2 * time.Second
	spec.LB.Interval = 300 * time.Millisecond
	logDir := t.TempDir()
	c := upCluster(t, ctx, spec, Options{LogDir: logDir})
	t.Logf("time to ready: %v (run %s, network %s)", c.ReadyIn().Round(time.Millisecond), c.RunID(), c.NetworkName())

	for _, comp := range c.Components() {
		t.Logf("component %-14s %s @ %s", comp.Part, comp.Description, comp.Location)
	}
	if comps := c.Components(); comps[0].Part != "database" || comps[1].Part != "share" || comps[2].Part != "load balancer" {
		t.Errorf("components out of order: %+v", comps)
	}
	if c.StandIn() {
		if got := c.Components()[0].Description; got != "PostgreSQL 15 (stand-in: SQL Server image not available here)" || c.Spec().DB.Kind != cluster.DBPostgres {
			t.Errorf("stand-in not announced: database component %q, kind %s", got, c.Spec().DB.Kind)
		}
	}
	for _, n := range c.Nodes() {
		if !strings.HasPrefix(n.URL, "http://127.0.0.1:") {
			t.Errorf("node %s URL %s is not on 127.0.0.1", n.Name, n.URL)
		}
	}
	if c.Spec().Storage.Kind != cluster.StorageSMB {
		t.Errorf("storage kind %q, want smb", c.Spec().Storage.Kind)
	}
	if !strings.HasPrefix(c.URL(), "http://127.0.0.1:") {
		t.Errorf("LB URL %s is not on 127.0.0.1", c.URL())
	}
	checkPublishedOnLoopbackOnly(t, ctx, c)

	t.Run("spread", func(t *testing.T) {
		seen := pingN(t, ctx, c.URL(), 30)
		for _, n := range c.Nodes() {
			if seen[n.Name] == 0 {
				t.Errorf("no ping through the LB reached %s: %v", n.Name, seen)
			}
		}
		t.Logf("30 pings through HAProxy: %v", seen)
	})

	t.Run("upload and read back through each node", func(t *testing.T) {
		sum, err := traffic.Upload(ctx, traffic.UploadOptions{URL: c.URL(), APIKey: c.APIKey(), Size: 100 << 10, Count: 2, Seed: 7, Via: "lb"})
		if err != nil {
			t.Fatal(err)
		}
		if err := sum.Err(); err != nil {
			t.Fatal(err)
		}
		for _, p := range sum.Packages {
			want, err := io.ReadAll(p.Spec.Reader())
			if err != nil {
				t.Fatal(err)
			}
			id := octopusapi.PackageResourceID(p.Spec.PackageID, p.Spec.Version)
			for _, n := range c.Nodes() {
				got, code, by, err := getRaw(ctx, n.URL, c.APIKey(), id)
				if err != nil || code != http.StatusOK {
					t.Fatalf("read %s through %s: %d %v", id, n.Name, code, err)
				}
				if by != n.Name {
					t.Errorf("read through %s was served by %q", n.Name, by)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("%s through %s: %d bytes differ from the %d uploaded", id, n.Name, len(got), len(want))
				}
			}
		}
		files, err := c.PackageFiles(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(files) != 2 {
			t.Errorf("share lists %d package files, want 2: %+v", len(files), files)
		}
	})

	t.Run("kill", func(t *testing.T) {
		if err := c.KillNode(ctx, "Node3"); err != nil {
			t.Fatal(err)
		}
		t.Logf("HAProxy reported Node3 DOWN %v after the kill", waitState(t, ctx, c, "Node3", lb.StateDown).Round(time.Millisecond))
		seen := pingN(t, ctx, c.URL(), 20)
		if seen["Node3"] != 0 {
			t.Errorf("killed Node3 answered through the LB: %v", seen)
		}
		start := time.Now()
		if err := c.StartNode(ctx, "Node3"); err != nil {
			t.Fatal(err)
		}
		t.Logf("Node3 answered again %v after start; UP in HAProxy %v later", time.Since(start).Round(time.Millisecond), waitState(t, ctx, c, "Node3", lb.StateUp).Round(time.Millisecond))
	})

	t.Run("pause", func(t *testing.T) {
		if err := c.PauseNode(ctx, "Node2"); err != nil {
			t.Fatal(err)
		}
		t.Logf("HAProxy reported paused Node2 DOWN after %v", waitState(t, ctx, c, "Node2", lb.StateDown).Round(time.Millisecond))
		pingN(t, ctx, c.URL(), 10)
		if err := c.StartNode(ctx, "Node2"); err == nil {
			t.Error("StartNode of a paused node: want an error")
		}
		if err := c.ResumeNode(ctx, "Node2"); err != nil {
			t.Fatal(err)
		}
		waitState(t, ctx, c, "Node2", lb.StateUp)
		// A frozen node can be killed and started again.
		if err := c.PauseNode(ctx, "Node2"); err != nil {
			t.Fatal(err)
		}
		if err := c.KillNode(ctx, "Node2"); err != nil {
			t.Fatalf("kill a paused node: %v", err)
		}
		if err := c.StartNode(ctx, "Node2"); err != nil {
			t.Fatal(err)
		}
		waitState(t, ctx, c, "Node2", lb.StateUp)
	})

	t.Run("partition", func(t *testing.T) {
		n1 := c.Nodes()[0]
		if err := c.PartitionNode(ctx, n1.Name); err != nil {
			t.Fatal(err)
		}
		t.Logf("HAProxy reported partitioned Node1 DOWN after %v", waitState(t, ctx, c, n1.Name, lb.StateDown).Round(time.Millisecond))
		pctx, pcancel := context.WithTimeout(ctx, 3*time.Second)
		code, _, err := cluster.PingStatus(pctx, &http.Client{Timeout: 2 * time.Second}, n1.URL)
		pcancel()
		if err == nil {
			t.Errorf("partitioned Node1 answered directly: %d", code)
		}
		seen := pingN(t, ctx, c.URL(), 10)
		if seen[n1.Name] != 0 {
			t.Errorf("partitioned Node1 answered through the LB: %v", seen)
		}
		if err := c.HealNode(ctx, n1.Name); err != nil {
			t.Fatal(err)
		}
		waitState(t, ctx, c, n1.Name, lb.StateUp)
	})

	t.Run("database outage", func(t *testing.T) {
		if err := c.StopDatabase(ctx); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		for _, n := range c.Nodes() {
			wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
			err := cluster.WaitNodePing(wctx, n.URL, http.StatusServiceUnavailable)
			wcancel()
			if err != nil {
				t.Fatal(err)
			}
		}
		t.Logf("all nodes answered 503 %v after the database stopped", time.Since(start).Round(time.Millisecond))
		start = time.Now()
		if err := c.StartDatabase(ctx); err != nil {
			t.Fatal(err)
		}
		t.Logf("database back in %v", time.Since(start).Round(time.Millisecond))
		rctx, rcancel := context.WithTimeout(ctx, 60*time.Second)
		defer rcancel()
		if err := cluster.WaitReady(rctx, c); err != nil {
			t.Fatal(err)
		}
		t.Logf("cluster ready again %v after the database started", time.Since(start).Round(time.Millisecond))
	})

	t.Run("share outage", func(t *testing.T) {
		if err := c.StopShare(ctx); err != nil {
			t.Fatal(err)
		}
		sum, err := traffic.Upload(ctx, traffic.UploadOptions{URL: c.URL(), APIKey: c.APIKey(), Size: 10 << 10, Count: 1, Seed: 8, StallTimeout: 20 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if sum.OK != 0 {
			t.Errorf("upload succeeded with the share stopped: %+v", sum.Packages[0])
		}
		if err := c.StartShare(ctx); err != nil {
			t.Fatal(err)
		}
		sum, err = traffic.Upload(ctx, traffic.UploadOptions{URL: c.URL(), APIKey: c.APIKey(), Size: 10 << 10, Count: 1, Seed: 9, Retries: 5, Backoff: 200 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if err := sum.Err(); err != nil {
			t.Errorf("upload after the share came back: %v", err)
		}
		files, err := c.PackageFiles(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(files) != 3 {
			t.Errorf("share lists %d package files after the outage, want 3 (2 before, 1 after)", len(files))
		}
	})

	t.Run("drain through the runtime API", func(t *testing.T) {
		ctl, ok := c.Balancer().(lb.Controller)
		if !ok {
			t.Fatal("Balancer is not an lb.Controller")
		}
		if err := ctl.SetServerState(ctx, "Node2", lb.StateMaint); err != nil {
			t.Fatal(err)
		}
		waitState(t, ctx, c, "Node2", lb.StateMaint)
		if seen := pingN(t, ctx, c.URL(), 12); seen["Node2"] != 0 {
			t.Errorf("Node2 in MAINT got traffic: %v", seen)
		}
		if err := ctl.SetServerState(ctx, "Node2", lb.StateUp); err != nil {
			t.Fatal(err)
		}
		waitState(t, ctx, c, "Node2", lb.StateUp)
	})

	t.Run("down leaves nothing", func(t *testing.T) {
		dctx, dcancel := context.WithTimeout(ctx, time.Minute)
		defer dcancel()
		start := time.Now()
		if err := c.Down(dctx); err != nil {
			t.Fatal(err)
		}
		t.Logf("Down took %v", time.Since(start).Round(time.Millisecond))
		assertNothingLeft(t, dctx, c.RunID(), c.NetworkName())
		if err := c.Down(dctx); err != nil {
			t.Errorf("second Down: %v", err)
		}
		entries, err := os.ReadDir(logDir)
		if err != nil || len(entries) != 6 {
			t.Errorf("log directory holds %d files (%v), want 6 (db, share, 3 nodes, lb)", len(entries), err)
		}
	})
}

// assertNothingLeft asks the Docker API directly for anything of the run.
func assertNothingLeft(t *testing.T, ctx context.Context, runID, network string) {
	t.Helper()
	e, err := connect(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.close()
	f := client.Filters{}.Add("label", LabelRun+"="+runID)
	cs, err := e.cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	ns, err := e.cli.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	vs, err := e.cli.VolumeList(ctx, client.VolumeListOptions{Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	if len(cs.Items)+len(ns.Items)+len(vs.Items) != 0 {
		t.Errorf("run %s left %d containers, %d networks, %d volumes", runID, len(cs.Items), len(ns.Items), len(vs.Items))
	}
	if network != "" {
		if _, err := e.cli.NetworkInspect(ctx, network, client.NetworkInspectOptions{}); err == nil {
			t.Errorf("network %s still exists", network)
		}
	}
}

// checkPublishedOnLoopbackOnly inspects every container: each published
// port is bound to 127.0.0.1, never to all interfaces, and no secret is on
// a command line.
func checkPublishedOnLoopbackOnly(t *testing.T, ctx context.Context, c *Cluster) {
	t.Helper()
	cs, err := c.e.cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: runFilter(c.RunID())})
	if err != nil {
		t.Fatal(err)
	}
	if len(cs.Items) != 3+len(c.Nodes()) {
		t.Errorf("run has %d containers, want %d", len(cs.Items), 3+len(c.Nodes()))
	}
	for _, ct := range cs.Items {
		// Secrets travel in the environment, never on a command line.
		if strings.Contains(ct.Command, c.APIKey()) || strings.Contains(ct.Command, c.smbPassword) || strings.Contains(ct.Command, c.dsn) {
			t.Errorf("container %v has a secret on its command line", ct.Names)
		}
		for _, p := range ct.Ports {
			if p.PublicPort != 0 && p.IP.String() != "127.0.0.1" {
				t.Errorf("container %v publishes %d on %s", ct.Names, p.PrivatePort, p.IP)
			}
			// HAProxy's runtime API is at level admin: any local user
			// could drain every server through a published port.
			if p.PublicPort != 0 && p.PrivatePort == StatsPort {
				t.Errorf("container %v publishes HAProxy's runtime API (%d) on %s:%d", ct.Names, p.PrivatePort, p.IP, p.PublicPort)
			}
		}
	}
}

// TestFailedUpRemovesEverything: a node image that exits at once makes Up
// fail; the error carries the container's log, and nothing is left.
func TestFailedUpRemovesEverything(t *testing.T) {
	needDocker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	im := ImagesFromEnv()
	// The HAProxy image exits 64 without a config: a node that dies.
	im.Node = im.HAProxy
	spec := cluster.Defaults()
	spec.Nodes = 1
	runID := "t" + newRunID()
	t.Cleanup(func() { _ = Cleanup(context.Background(), runID) })
	_, err := Up(ctx, spec, Options{Logger: testLogger(t), Images: im, RunID: runID, ReadyTimeout: time.Minute})
	if err == nil {
		t.Fatal("Up with a node image that exits: want an error")
	}
	t.Logf("Up failed as expected: %v", err)
	if !strings.Contains(err.Error(), "no config at") {
		t.Errorf("error does not carry the container's log: %v", err)
	}
	assertNothingLeft(t, ctx, runID, "")
}

// TestCancelledUpRemovesEverything: Ctrl-C during Up (its context
// cancelled once the run has 1, 3 or 5 of its 6 containers) leaves nothing
// behind.
func TestCancelledUpRemovesEverything(t *testing.T) {
	needDocker(t)
	for _, after := range []int{1, 3, 5} {
		t.Run(fmt.Sprintf("after %d containers", after), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			runID := "t" + newRunID()
			t.Cleanup(func() { _ = Cleanup(context.Background(), runID) })
			upCtx, interrupt := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() {
				spec := cluster.Defaults()
				spec.Nodes = 3
				_, err := Up(upCtx, spec, Options{Logger: testLogger(t), RunID: runID})
				done <- err
			}()
			for {
				left, err := Leftovers(ctx, runID)
				if err != nil {
					t.Fatal(err)
				}
				if len(left.Containers) >= after {
					break
				}
				select {
				case err := <-done:
					t.Fatalf("Up returned before %d containers existed: %v", after, err)
				case <-ctx.Done():
					t.Fatalf("no %d containers appeared", after)
				case <-time.After(20 * time.Millisecond):
				}
			}
			interrupt()
			err := <-done
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Up after interrupt: %v, want context.Canceled", err)
			}
			assertNothingLeft(t, ctx, runID, "")
		})
	}
}

// TestCleanupFindsLeftovers: resources of a run that died (made here by
// hand, with the run label) are found and removed by Cleanup.
func TestCleanupFindsLeftovers(t *testing.T) {
	needDocker(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e, err := connect(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.close()
	runID := "t" + newRunID()
	t.Cleanup(func() { _ = Cleanup(context.Background(), runID) })
	labels := map[string]string{LabelRun: runID}
	if _, err := e.cli.NetworkCreate(ctx, "octoha-"+runID, client.NetworkCreateOptions{Driver: "bridge", Labels: labels}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.cli.VolumeCreate(ctx, client.VolumeCreateOptions{Name: "octoha-" + runID, Labels: labels}); err != nil {
		t.Fatal(err)
	}
	left, err := Leftovers(ctx, runID)
	if err != nil {
		t.Fatal(err)
	}
	if len(left.Networks) != 1 || len(left.Volumes) != 1 {
		t.Fatalf("leftovers %s, want one network and one volume", left)
	}
	if err := Cleanup(ctx, runID); err != nil {
		t.Fatal(err)
	}
	assertNothingLeft(t, ctx, runID, "octoha-"+runID)
}

func TestMissingImageSaysMakeImages(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: needs the docker engine")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	e, err := connect(ctx, nil)
	if err != nil {
		t.Skipf("docker engine not reachable: %v", err)
	}
	e.close()
	im := ImagesFromEnv()
	im.Node = "octoha-local/no-such-node:" + newRunID()
	start := time.Now()
	err = CheckImages(ctx, im)
	if !errors.Is(err, ErrImageMissing) || !strings.Contains(err.Error(), "make images") || !strings.Contains(err.Error(), im.Node) {
		t.Errorf("CheckImages with a missing node image: %v", err)
	}
	spec := cluster.Defaults()
	_, err = Up(ctx, spec, Options{Logger: testLogger(t), Images: im})
	if !errors.Is(err, ErrImageMissing) || !strings.Contains(err.Error(), "make images") {
		t.Errorf("Up with a missing node image: %v", err)
	}
	// Only a local inspect: no pull attempt (which would take seconds).
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %v: a pull was attempted?", d)
	}
}

func TestValidRunID(t *testing.T) {
	for id, want := range map[string]bool{"t1a2b": true, "run_1.x-y": true, "": false, "-x": false, "a b": false, "a/b": false, strings.Repeat("a", 33): false} {
		if got := validRunID(id); got != want {
			t.Errorf("validRunID(%q) = %v, want %v", id, got, want)
		}
	}
	_, err := Up(context.Background(), cluster.Defaults(), Options{RunID: "bad id"})
	if err == nil || !strings.Contains(err.Error(), "run ID") {
		t.Errorf("Up with a bad run ID: %v", err)
	}
}

func TestImagesFromEnv(t *testing.T) {
	t.Setenv(EnvImagePrefix, "reg.example/x-")
	t.Setenv(EnvImageSamba, "my/samba:1")
	t.Setenv(EnvImageMSSQL, "")
	im := ImagesFromEnv()
	want := Images{Node: "reg.example/x-node:dev", HAProxy: "reg.example/x-haproxy:2.6", Samba: "my/samba:1", Postgres: "reg.example/x-postgres:15", MSSQL: DefaultMSSQLImage}
	if im != want {
		t.Errorf("ImagesFromEnv = %+v, want %+v", im, want)
	}
	os.Unsetenv(EnvImagePrefix)
	if got := ImagesFromEnv().Node; got != DefaultImagePrefix+"node:dev" {
		t.Errorf("default node image %q", got)
	}
	if got := (Images{Node: "a"}).withDefaults(); got.Node != "a" || got.HAProxy == "" {
		t.Errorf("withDefaults = %+v", got)
	}
}
