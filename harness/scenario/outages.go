package scenario

import (
	"context"
	"errors"
	"fmt"
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
	return outage, nodesGoUnhealthy(ctx, r, outage.Start(), exact, "db-down")
}

// nodesGoUnhealthy waits until no node answers 200 (exactly 503 when
// exact) and the load balancer answers 503, recording figures
// <prefix>-to-all-nodes-unhealthy and <prefix>-to-lb-503 from start.
func nodesGoUnhealthy(ctx context.Context, r Run, start time.Time, exact bool, prefix string) error {
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
	_, err := clusterServesAgain(ctx, r, time.Now(), 30*time.Second, "db-up-to-cluster-serving")
	return err
}

// clusterServesAgain waits (within, from since) until the load balancer
// and every node answer 200 again, by themselves, and records the time
// since `since` as figure; it returns that time.
func clusterServesAgain(ctx context.Context, r Run, since time.Time, within time.Duration, figure string) (time.Duration, error) {
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
		Title:     "Database outage",
		Claim:     "Without the database every node reports unhealthy; when it returns they recover by themselves and no acknowledged upload is lost.",
		Needs:     []cluster.Capability{cluster.CapDBOutage},
		Shape:     Shape{Nodes: 3},
		Load:      []Load{{Target: "ping", Rate: 30}, {Target: "nodes", Rate: 20}},
		Uploads:   &Uploads{Count: 6, Concurrency: 2, MaxSize: 256 << 20},
		Faults:    []FaultPlan{{Fault: nemesis.KindDBOutage}},
		Checks:    checks("history", "min-ops:ping", "durability", "no-leftovers", "error-window", "upload-path"),
		Certifies: []string{ReqDatabaseOutage},
		Timeout:   6 * time.Minute,
		Steps:     dbOutageSteps,
	}
}

func dbOutageSteps(ctx context.Context, r Run) error {
	return uploadsAcrossDBFault(ctx, r, func(ctx context.Context) error {
		r.Step("stopping the database mid-load")
		outage, err := stopDatabase(ctx, r, false)
		if err != nil {
			return err
		}
		if err := Sleep(ctx, 2*time.Second); err != nil { // keep the outage on while clients retry
			return err
		}
		r.Step("starting the database again")
		return startDatabase(ctx, r, outage)
	}, checker.Options{})
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
		Title:   "Share outage",
		Claim:   "While the share is away uploads fail with a 5xx and no package is recorded without its file; once it returns uploads are stored again.",
		Needs:   []cluster.Capability{cluster.CapShareOutage},
		Shape:   Shape{Nodes: 3},
		Load:    []Load{{Target: "ping", Rate: 30}},
		Uploads: &Uploads{Count: 4, Concurrency: 2, MaxSize: 512 << 20},
		Faults:  []FaultPlan{{Fault: nemesis.KindShare}},
		Checks:  checks("history", "min-ops:ping", "durability", "no-leftovers", "error-window", "upload-path"),
		Timeout: 6 * time.Minute,
		Steps:   shareOutageSteps,
	}
}

func shareOutageSteps(ctx context.Context, r Run) error {
	if err := r.Attack("ping", 30); err != nil {
		return err
	}
	if err := r.WaitOps(ctx, "ping", 15); err != nil {
		return err
	}
	o := r.UploadOptions(4, 2, min(r.UploadSize(), 512<<20))
	o.Retries, o.Backoff = 8, 500*time.Millisecond
	uploads := r.UploadInBackground(o)
	if _, err := r.NodeWithActiveUpload(ctx, 30*time.Second); err != nil {
		return err
	}
	r.Step("stopping the share in the middle of uploads")
	outage, err := r.Inject(ctx, nemesis.ShareOutage, "")
	if err != nil {
		return err
	}
	if err := Sleep(ctx, 4*time.Second); err != nil {
		return err
	}
	r.Step("starting the share again")
	if err := outage.Recover(ctx); err != nil {
		return err
	}
	if _, err := AwaitUploads(ctx, uploads, 5*time.Minute, "uploads retried after the share returned must succeed"); err != nil {
		return err
	}
	r.Step("uploading again after the share is back")
	more := r.UploadOptions(1, 1, 32<<20)
	more.Seed = r.Seed() + 1
	after, err := r.Upload(ctx, more)
	if err != nil {
		return err
	}
	if err := after.Err(); err != nil {
		return fmt.Errorf("a fresh upload after the outage must succeed: %w", err)
	}
	r.StopLoad()
	r.Step("uploads that met the outage failed with a 5xx")
	f := outage.Fault()
	h, err := r.History()
	if err != nil {
		return err
	}
	saw5xx := 0
	var errs []error
	for _, op := range h.OpsOfKind(history.KindUpload) {
		if op.Start.After(f.Start.Add(200*time.Millisecond)) && op.Start.Before(f.End) && op.Node != "" && op.Status < 500 {
			errs = append(errs, fmt.Errorf("upload attempt %d started while the share was away but got %d", op.Seq, op.Status))
		}
		if op.Status >= 500 && op.End.After(f.Start) {
			saw5xx++
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if saw5xx == 0 {
		return errors.New("no upload attempt met the outage: the scenario did not test what it claims")
	}
	r.Figure("upload-5xx-during-outage", float64(saw5xx), "ops")
	r.Step("no temporary file survives (the nodes sweep what the outage left)")
	if err := r.NoTempFiles(ctx); err != nil {
		return err
	}
	_, err = r.Check(ctx, checker.Options{
		MinOps:      []checker.MinOpsRule{{Kind: "ping", N: 10}},
		ErrorWindow: checker.ErrorWindowOptions{Grace: 5 * time.Second, IgnoreStatus: []int{http.StatusConflict}},
	})
	return err
}
