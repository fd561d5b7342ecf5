package scenario

import (
	"context"
	"net/http"
	"time"

	"github.com/octoha/octoha/harness/checker"
	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/history"
	"github.com/octoha/octoha/harness/nemesis"
)

// stopDatabase stops the shared database and waits until no node answers
// 200 (exactly 503 when exact) and the load balancer answers 503.
func stopDatabase(ctx context.Context, r Run, exact bool) (*nemesis.Injection, error) {
	outage, err := r.Inject(ctx, nemesis.DatabaseOutage, "")
	if err != nil {
		return nil, err
	}
	return outage, NodesGoUnhealthy(ctx, r, outage.Start(), exact, "db-down")
}

// NodesGoUnhealthy waits until no node answers 200 (exactly 503 when
// exact) and the load balancer answers 503, recording figures
// <prefix>-to-all-nodes-unhealthy and <prefix>-to-lb-503 from start.
func NodesGoUnhealthy(ctx context.Context, r Run, start time.Time, exact bool, prefix string) error {
	c, spec := r.Cluster(), r.Spec()
	unhealthy := spec.Node.UnhealthyAfter + 2*spec.Node.Heartbeat + 2*time.Second
	for _, n := range c.Nodes() {
		cond := PingIsNot(ctx, n.URL, http.StatusOK)
		if exact {
			cond = PingIs(ctx, n.URL, http.StatusServiceUnavailable)
		}
		if err := Eventually(ctx, n.Name+" without its database", unhealthy, 50*time.Millisecond, cond); err != nil {
			return err
		}
	}
	r.Figure(prefix+"-to-all-nodes-unhealthy", time.Since(start).Seconds(), "s")
	if err := Eventually(ctx, "the load balancer answers 503 with every node out", LBBound(spec, spec.LB.Fall), 20*time.Millisecond, PingIs(ctx, c.URL(), http.StatusServiceUnavailable)); err != nil {
		return err
	}
	r.Figure(prefix+"-to-lb-503", time.Since(start).Seconds(), "s")
	return nil
}

// startDatabase ends a database outage and waits until the load balancer
// and every node serve again, by themselves.
func startDatabase(ctx context.Context, r Run, outage *nemesis.Injection) error {
	if err := outage.Recover(ctx); err != nil {
		return err
	}
	_, err := ClusterServesAgain(ctx, r, time.Now(), 30*time.Second, "db-up-to-cluster-serving")
	return err
}

// ClusterServesAgain waits (within, from since) until the load balancer
// and every node answer 200 again, by themselves, and records the time
// since `since` as figure; it returns that time.
func ClusterServesAgain(ctx context.Context, r Run, since time.Time, within time.Duration, figure string) (time.Duration, error) {
	c := r.Cluster()
	left := func() time.Duration { return max(within-time.Since(since), 100*time.Millisecond) }
	if err := Eventually(ctx, "the load balancer serves again", left(), 50*time.Millisecond, PingIs(ctx, c.URL(), http.StatusOK)); err != nil {
		return 0, err
	}
	for _, n := range c.Nodes() {
		if err := Eventually(ctx, n.Name+" serves again after the database returned", left(), 50*time.Millisecond, PingIs(ctx, n.URL, http.StatusOK)); err != nil {
			return 0, err
		}
	}
	took := time.Since(since)
	r.Figure(figure, took.Seconds(), "s")
	return took, nil
}

// DatabaseOutage: the shared database goes away mid-load and comes back.
func DatabaseOutage() Scenario {
	return Scenario{
		Title: "Database outage",
		Claim: "Without the database every node reports unhealthy; when it returns they recover by themselves and no acknowledged upload is lost.",
		Needs: []cluster.Capability{cluster.CapDBOutage},
		Shape: Shape{Nodes: 3},
		Load:  []Load{{Target: "ping", Rate: 30, MinOps: 10}, {Target: "nodes", Rate: 20}},
		Uploads: &Uploads{Count: 6, Concurrency: 2, MaxSize: 256 << 20, Retries: 8, Backoff: 500 * time.Millisecond,
			Must: "uploads retried through the outage must succeed"},
		// The outage stays on while clients retry.
		Faults:    []FaultPlan{{Fault: nemesis.KindDBOutage, After: AfterUploadAcked, Hold: 2 * time.Second}},
		Checks:    checks("history", "min-ops:ping", "durability", "no-leftovers", "error-window", "upload-path"),
		Certifies: []string{ReqDatabaseOutage},
		Timeout:   6 * time.Minute,
	}
}

// uploadsAcrossDBFault is the choreography of a database fault under
// load: ping and node-list load, uploads that retry, the fault once the
// first upload is acknowledged, then every upload must succeed and the
// checks run (extra adds to the checker options).
func uploadsAcrossDBFault(ctx context.Context, r Run, fault func(ctx context.Context) error, extra checker.Options) error {
	if err := r.Attack("ping", 30); err != nil {
		return err
	}
	if err := r.Attack("nodes", 20); err != nil {
		return err
	}
	if err := r.WaitOps(ctx, "ping", 15); err != nil {
		return err
	}
	o := r.UploadOptions(6, 2, min(r.UploadSize(), 256<<20))
	o.Retries, o.Backoff = 8, 500*time.Millisecond
	uploads := r.UploadInBackground(o)
	if err := r.WaitOps(ctx, history.KindUpload, 1); err != nil {
		return err
	}
	if err := fault(ctx); err != nil {
		return err
	}
	if _, err := AwaitUploads(ctx, uploads, 5*time.Minute, "uploads retried through the outage must succeed"); err != nil {
		return err
	}
	r.StopLoad()
	opts := extra
	opts.MinOps = []checker.MinOpsRule{{Kind: "ping", N: 10}}
	opts.ErrorWindow = checker.ErrorWindowOptions{Grace: 5 * time.Second, IgnoreStatus: []int{http.StatusConflict}}
	rep, err := r.Check(ctx, opts)
	if err != nil {
		return err
	}
	ew, _ := rep.Result("error-window")
	r.Figure("client-failures-during-outage", ew.Value("failures"), "ops")
	return nil
}

// ShareOutage: the shared file share goes away in the middle of uploads.
func ShareOutage() Scenario {
	return Scenario{
		Title: "Share outage",
		Claim: "While the share is away uploads fail with a 5xx and no package is recorded without its file; once it returns uploads are stored again.",
		Needs: []cluster.Capability{cluster.CapShareOutage},
		Shape: Shape{Nodes: 3},
		Load:  []Load{{Target: "ping", Rate: 30, MinOps: 10}},
		Uploads: &Uploads{Count: 4, Concurrency: 2, MaxSize: 512 << 20, Retries: 8, Backoff: 500 * time.Millisecond,
			Must: "uploads retried after the share returned must succeed"},
		Faults: []FaultPlan{{Fault: nemesis.KindShare, After: AfterUploadActive, Hold: 4 * time.Second,
			Expect: []Expectation{freshUploadSucceeds, uploadsMet5xx, noPartialFiles}}},
		Checks:  checks("history", "min-ops:ping", "durability", "no-leftovers", "error-window", "upload-path"),
		Timeout: 6 * time.Minute,
	}
}
