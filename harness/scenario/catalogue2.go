package scenario

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/octoha/octoha/harness/checker"
	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/history"
	"github.com/octoha/octoha/harness/lb"
	"github.com/octoha/octoha/harness/nemesis"
	"github.com/octoha/octoha/harness/payload"
	"github.com/octoha/octoha/harness/traffic"
)

func withTimeout(d time.Duration) func(*traffic.AttackOptions) {
	return func(o *traffic.AttackOptions) { o.Timeout = d }
}

// Capacity is the seed's sizing argument made measurable: the same total
// task capacity as 2 large nodes or 4 small ones; losing one node costs
// 1/N of it. Each task holds one of its node's MaxConcurrentTasks slots
// for capacityTaskTime, so a node's capacity is cap/taskTime tasks/s.
func Capacity(nodes, taskCap int) Scenario {
	size := "large"
	if nodes > 2 {
		size = "small"
	}
	return Scenario{
		Title:        fmt.Sprintf("Capacity — %d %s nodes", nodes, size),
		Claim:        fmt.Sprintf("%d nodes with a task cap of %d each deliver their planned task throughput, and losing one costs about 1/%d of it.", nodes, taskCap, nodes),
		Needs:        []cluster.Capability{cluster.CapKill, cluster.CapSimulated},
		Shape:        Shape{Nodes: nodes, DB: cluster.DBSQLite, Storage: cluster.StorageLocal, MaxConcurrentTasks: taskCap},
		Load:         []Load{{Target: traffic.TargetWork}},
		Faults:       []FaultPlan{{Fault: nemesis.KindKill, Target: "the last node"}},
		Checks:       checks("history", "min-ops:work", "error-window"),
		Timeout:      3 * time.Minute,
		Providers:    []string{Local},
		ProviderNote: "the measurement needs the host's CPU to itself and task slots the docker provider does not shape",
		Steps:        func(ctx context.Context, r Run) error { return capacitySteps(ctx, r, nodes, taskCap) },
	}
}

const (
	capacityTaskTime = 200 * time.Millisecond
	capacityMeasure  = 5 * time.Second
)

func capacitySteps(ctx context.Context, r Run, nodes, taskCap int) error {
	c, spec := r.Cluster(), r.Spec()
	capacity := float64(nodes*taskCap) / capacityTaskTime.Seconds()
	r.Figure("planned-capacity", capacity, "tasks/s")
	r.Step("offering 1.5× the cluster's capacity (%.0f tasks/s) through the load balancer", capacity)
	rate := int(1.5 * capacity)
	if err := r.Attack(traffic.TargetWork, rate, func(o *traffic.AttackOptions) {
		o.WorkDuration, o.WorkWait, o.Timeout = capacityTaskTime, 250*time.Millisecond, 3*time.Second
		o.Workers, o.MaxWorkers = 64, 2000
		o.Rate = vegeta.Rate{Freq: rate, Per: time.Second}
	}); err != nil {
		return err
	}
	if err := r.WaitOps(ctx, history.KindWork, rate); err != nil { // about a second of steady load
		return err
	}
	beforeFrom := time.Now()
	if err := Sleep(ctx, capacityMeasure); err != nil {
		return err
	}
	beforeTo := time.Now()
	victim := c.Nodes()[nodes-1].Name
	r.Step("SIGKILL %s", victim)
	kill, err := r.Inject(ctx, nemesis.Kill, victim)
	if err != nil {
		return err
	}
	if err := r.WaitLB(ctx, victim, "DOWN", LBBound(spec, spec.LB.Fall)); err != nil {
		return err
	}
	if err := Sleep(ctx, time.Second); err != nil { // let the survivors' slots settle
		return err
	}
	afterFrom := time.Now()
	if err := Sleep(ctx, capacityMeasure); err != nil {
		return err
	}
	afterTo := time.Now()
	r.StopLoad()
	if err := kill.Recover(ctx); err != nil {
		return err
	}
	h, err := r.History()
	if err != nil {
		return err
	}
	before := completedPerSecond(h, beforeFrom, beforeTo)
	after := completedPerSecond(h, afterFrom, afterTo)
	drop := 1 - after/before
	want := 1 / float64(nodes)
	r.Figure("throughput-before", before, "tasks/s")
	r.Figure("throughput-after", after, "tasks/s")
	r.Figure("capacity-drop", 100*drop, "%")
	r.Figure("expected-drop", 100*want, "%")
	r.Note("%d nodes × cap %d: %.0f tasks/s before, %.0f after losing one: −%.0f%% (expected −%.0f%%)", nodes, taskCap, before, after, 100*drop, 100*want)
	if math.Abs(before-capacity) > 0.15*capacity {
		return fmt.Errorf("the cluster delivered %.0f tasks/s before the fault, want its planned capacity %.0f ±15%%", before, capacity)
	}
	if math.Abs(drop-want) > 0.1 {
		return fmt.Errorf("losing 1 of %d nodes should cost about %.0f%% of throughput; measured %.0f%%", nodes, 100*want, 100*drop)
	}
	// The load is 1.5× capacity on purpose: tasks that find no free slot
	// get the node's 503, which is not a fault of the cluster.
	_, err = r.Check(ctx, checker.Options{
		MinOps:      []checker.MinOpsRule{{Kind: history.KindWork, N: rate}},
		ErrorWindow: checker.ErrorWindowOptions{IgnoreStatus: []int{503}},
	})
	return err
}

// completedPerSecond counts acknowledged tasks that ended in [from, to).
func completedPerSecond(h *history.History, from, to time.Time) float64 {
	n := 0
	for _, op := range h.Ops {
		if op.Kind == history.KindWork && op.Outcome == history.OK && !op.End.Before(from) && op.End.Before(to) {
			n++
		}
	}
	return float64(n) / to.Sub(from).Seconds()
}

// LBLimits: what a certification run must tell an operator about a load
// balancer — does a 1 GB upload pass (body limits, timeouts), and does a
// drained node (ping 418) stop getting new requests? The misconfigured
// rows expect the corresponding checks to fail, naming the problem.
func LBLimits(kind lb.Kind, title string, uploadPasses, honoursDrain bool) Scenario {
	cs := []Check{{Name: "durability"}, {Name: "no-leftovers"}}
	claim := "A large upload passes " + string(kind) + " and a drained node stops getting new requests."
	if uploadPasses {
		cs = append(cs, Check{Name: "upload-path"})
	} else {
		cs = append(cs, Check{Name: "upload-path", ExpectFail: true, Finding: checker.FindingBodyLimit.Name})
		claim = "The harness catches and names " + string(kind) + "'s body limit, which refuses a large upload"
	}
	if honoursDrain {
		cs = append(cs, Check{Name: "convergence"})
	} else {
		cs = append(cs, Check{Name: "convergence", ExpectFail: true})
		if uploadPasses {
			claim = "A large upload passes " + string(kind) + ", and the harness catches that it keeps sending requests to a drained node (no active health check)."
		} else {
			claim += ", and that it keeps sending requests to a drained node."
		}
	}
	return Scenario{
		Title:        title,
		Claim:        claim,
		Needs:        []cluster.Capability{cluster.CapDrain, cluster.CapSimulated},
		Shape:        Shape{Nodes: 2, LB: string(kind), DB: cluster.DBSQLite, Storage: cluster.StorageLocal},
		Load:         []Load{{Target: "ping", Rate: 40}},
		Uploads:      &Uploads{Count: 1, Concurrency: 1},
		Faults:       []FaultPlan{{Fault: nemesis.KindDrain, Target: "Node2"}},
		Checks:       cs,
		Providers:    []string{Local},
		ProviderNote: "it chooses the load balancer, and the docker provider runs HAProxy only",
		Timeout:      4 * time.Minute,
		Steps: func(ctx context.Context, r Run) error {
			if err := lb.Available(kind); err != nil {
				return Skip("%s is not installed here: %v", kind, err)
			}
			return lbLimitsSteps(ctx, r, kind, uploadPasses)
		},
	}
}

func lbLimitsSteps(ctx context.Context, r Run, kind lb.Kind, uploadPasses bool) error {
	spec := r.Spec()
	if spec.LB.Kind != string(kind) {
		return Skip("the cluster came up with the %s load balancer instead of %s", spec.LB.Kind, kind)
	}
	r.Step("uploading one package of %s through %s", payload.FormatSize(r.UploadSize()), kind)
	o := r.UploadOptions(1, 1, r.UploadSize())
	o.Retries = 0
	sum, err := r.Upload(ctx, o)
	if err != nil {
		return err
	}
	if uploadPasses {
		if err := sum.Err(); err != nil {
			return fmt.Errorf("a large upload through %s: %w", kind, err)
		}
	} else if sum.OK != 0 {
		return fmt.Errorf("%s should refuse the upload, but it was stored", kind)
	}
	r.Step("draining Node2 under load: does %s stop sending it new requests?", kind)
	if err := r.Attack("ping", 40); err != nil {
		return err
	}
	if err := r.WaitOps(ctx, "ping", 20); err != nil {
		return err
	}
	if _, err := r.Hold(ctx, nemesis.Drain, "Node2", 2*LBBound(spec, spec.LB.Fall)+spec.Node.Heartbeat); err != nil {
		return err
	}
	r.StopLoad()
	rep, err := r.Check(ctx, checker.Options{
		Convergence: checker.ConvergenceOptions{EjectWithin: spec.Node.Heartbeat + LBBound(spec, spec.LB.Fall)},
		ErrorWindow: checker.ErrorWindowOptions{IgnoreStatus: []int{http.StatusTeapot, http.StatusRequestEntityTooLarge}},
	})
	if err != nil {
		return err
	}
	if !uploadPasses {
		r.Note("%s: %s", kind, checker.FindingBodyLimit.Explanation)
	}
	conv, _ := rep.Result("convergence")
	if conv.Status == checker.Fail {
		r.Note("%s does not honour the drain (418): %s", kind, conv.Summary)
	}
	r.Figure("eject-after-drain", conv.Value("eject-max"), "s")
	return nil
}

// LBCertification asks the LB-limits questions of a real cluster: a
// certification run fails, naming the problem, when the load balancer
// limits uploads or ignores the drain.
func LBCertification() Scenario {
	return Scenario{
		Title:        "LB certification",
		Claim:        "A large upload passes the cluster's load balancer, every node serves it, and a drained node stops getting new requests.",
		Needs:        []cluster.Capability{cluster.CapDrain},
		Providers:    []string{External},
		ProviderNote: "it certifies a real cluster's load balancer; the LB limits scenarios cover the simulated ones",
		Load:         []Load{{Target: "ping", Rate: 20}},
		Uploads:      &Uploads{Count: 1, Concurrency: 1},
		Faults:       []FaultPlan{{Fault: nemesis.KindDrain, Target: "the last node"}},
		Checks:       checks("durability", "upload-path", "convergence"),
		Certifies:    []string{ReqLargeUpload, ReqSamePackages, ReqDrainEjects},
		Topic:        LLB,
		Timeout:      10 * time.Minute,
		Steps:        lbCertSteps,
	}
}

func lbCertSteps(ctx context.Context, r Run) error {
	c, spec := r.Cluster(), r.Spec()
	drained := c.Nodes()[len(c.Nodes())-1].Name
	r.Step("uploading one package of %s through the load balancer", payload.FormatSize(r.UploadSize()))
	o := r.UploadOptions(1, 1, r.UploadSize())
	o.Retries = 0
	sum, err := r.Upload(ctx, o)
	if err != nil {
		return err
	}
	r.Step("draining %s under ping load", drained)
	if err := r.Attack("ping", 20); err != nil {
		return err
	}
	if err := r.WaitOps(ctx, "ping", 20); err != nil {
		return err
	}
	if _, err := r.Hold(ctx, nemesis.Drain, drained, 2*LBBound(spec, spec.LB.Fall)+spec.Node.Heartbeat); err != nil {
		return err
	}
	r.StopLoad()
	if _, err := r.Check(ctx, checker.Options{
		Convergence: checker.ConvergenceOptions{EjectWithin: spec.Node.Heartbeat + LBBound(spec, spec.LB.Fall)},
		ErrorWindow: checker.ErrorWindowOptions{IgnoreStatus: []int{http.StatusTeapot}},
	}); err != nil {
		return err
	}
	if err := sum.Err(); err != nil {
		return fmt.Errorf("a %s upload through the load balancer: %w", payload.FormatSize(r.UploadSize()), err)
	}
	return nil
}

// Stickiness measures whether the load balancer pins a client with a
// session cookie to one node (the seed's workaround for the per-node
// permission cache) and spreads clients without one. It is optional for
// an HA cluster; the certificate reports what it saw.
func Stickiness() Scenario {
	return Scenario{
		Title:        "Session stickiness",
		Claim:        "With cookie stickiness on, a client keeping its session cookie reaches one node every time, and clients without one are spread over every node.",
		Topic:        LSticky,
		Shape:        Shape{Nodes: 3, Sticky: true, DB: cluster.DBSQLite, Storage: cluster.StorageLocal},
		Certifies:    []string{ReqStickiness},
		Providers:    []string{Local, External},
		ProviderNote: "the docker provider's load balancer has no cookie stickiness",
		Timeout:      time.Minute,
		Steps:        stickySteps,
	}
}

// StickyFigure is the share of a cookie-keeping client's requests that
// reached its most frequent node; the certificate reads it.
const StickyFigure = "sticky-share"

func stickySteps(ctx context.Context, r Run) error {
	const n = 30
	if spec := r.Spec(); spec.Provider != cluster.ProviderExternal && !spec.LB.Sticky {
		return Skip("the %s load balancer here offers no cookie stickiness", spec.LB.Kind)
	}
	r.Step("%d pings through the load balancer keeping cookies, and %d without", n, n)
	withJar, err := pingNodes(ctx, r.Cluster().URL(), n, true)
	if err != nil {
		return err
	}
	without, err := pingNodes(ctx, r.Cluster().URL(), n, false)
	if err != nil {
		return err
	}
	top := 0
	for _, c := range withJar {
		top = max(top, c)
	}
	share := float64(top) / n
	r.Figure(StickyFigure, 100*share, "%")
	r.Figure("nodes-reached-with-cookie", float64(len(withJar)), "nodes")
	r.Figure("nodes-reached-without-cookie", float64(len(without)), "nodes")
	r.Note("with cookies: %v; without: %v", withJar, without)
	sticky := share == 1
	if r.Spec().Provider == cluster.ProviderExternal {
		// What a real cluster does is what it does: report it.
		if sticky {
			r.Note("the load balancer keeps a session on one node")
		} else {
			r.Note("the load balancer does not keep sessions on one node (optional; the seed suggests it against the per-node permission cache)")
		}
		return nil
	}
	if !sticky {
		return fmt.Errorf("a client keeping its cookie reached %d nodes (%v): stickiness does not hold", len(withJar), withJar)
	}
	if len(without) < 2 {
		return fmt.Errorf("clients without cookies all reached one node (%v): the load balancer does not spread them", without)
	}
	return nil
}

// pingNodes pings base n times and counts which node answered (from the
// ping body's Name, which a real Octopus node sends too).
func pingNodes(ctx context.Context, base string, n int, jar bool) (map[string]int, error) {
	client := newJarClient(jar)
	counts := map[string]int{}
	for range n {
		name, err := pingName(ctx, client, base)
		if err != nil {
			return nil, err
		}
		counts[name]++
	}
	return counts, nil
}

// BrokenCluster is the control: deliberately broken nodes that acknowledge
// uploads before storing them must be caught by the durability check.
func BrokenCluster() Scenario {
	return Scenario{
		Title:        "Broken cluster control",
		Claim:        "The durability check catches a node that acknowledges an upload before storing it and is killed: the check must fail, naming the lost package.",
		Needs:        []cluster.Capability{cluster.CapKill, cluster.CapSimulated},
		Shape:        Shape{Nodes: 2, UnsafeAckBeforeStore: true, DB: cluster.DBSQLite, Storage: cluster.StorageLocal},
		Uploads:      &Uploads{Count: 1, Concurrency: 1, MaxSize: 16 << 20},
		Faults:       []FaultPlan{{Fault: nemesis.KindKill, Target: "the node that acknowledged"}},
		Checks:       []Check{{Name: "durability", ExpectFail: true}},
		Providers:    []string{Local},
		ProviderNote: "deliberately broken nodes exist only as local processes",
		Timeout:      2 * time.Minute,
		Steps:        brokenSteps,
	}
}

func brokenSteps(ctx context.Context, r Run) error {
	r.Note("deliberately broken nodes: uploads are acknowledged before the file and its row are stored")
	r.Step("uploading one package; the node acknowledges it at once")
	o := r.UploadOptions(1, 1, 16<<20)
	o.Retries = 0
	sum, err := r.Upload(ctx, o)
	if err != nil {
		return err
	}
	if err := sum.Err(); err != nil {
		return err
	}
	acked := sum.Packages[0]
	r.Step("SIGKILL %s before it stores what it acknowledged", acked.Node)
	kill, err := r.Inject(ctx, nemesis.Kill, acked.Node)
	if err != nil {
		return err
	}
	if err := kill.Recover(ctx); err != nil {
		return err
	}
	rep, err := r.Check(ctx, checker.Options{})
	if err != nil {
		return err
	}
	dur, _ := rep.Result("durability")
	if dur.Status == checker.Fail && !strings.Contains(strings.Join(dur.Evidence, "\n"), acked.Spec.Version) {
		return fmt.Errorf("the durability check failed but its evidence does not name the lost package %s: %s", acked.Spec.Version, strings.Join(dur.Evidence, "; "))
	}
	return nil
}

// RandomChaos: a seeded schedule of faults under load.
func RandomChaos() Scenario {
	return Scenario{
		Title:        "Random chaos",
		Claim:        "The cluster survives a seeded schedule of kills, pauses, restarts, drains and outages under load with every acknowledged upload intact.",
		Needs:        []cluster.Capability{cluster.CapSimulated},
		Shape:        Shape{Nodes: 3},
		Load:         []Load{{Target: "ping", Rate: 30}, {Target: "nodes", Rate: 10}},
		Uploads:      &Uploads{Count: 8, Concurrency: 2, MaxSize: 256 << 20},
		Faults:       []FaultPlan{{Fault: "random"}},
		Checks:       checks("history", "min-ops:ping", "durability", "no-leftovers", "error-window"),
		Providers:    []string{Local},
		ProviderNote: "the schedule's process faults and outages are timed for local processes",
		Timeout:      10 * time.Minute,
		Steps:        chaosSteps,
	}
}

func chaosSteps(ctx context.Context, r Run) error {
	c := r.Cluster()
	sched, err := nemesis.Plan(r.Seed(), nemesis.PlanOptions{Cluster: c, Count: 4, Start: 2 * time.Second, Gap: 3 * time.Second, MinHold: 2 * time.Second, MaxHold: 4 * time.Second})
	if err != nil {
		return err
	}
	r.Note("schedule (seed %d): %s", r.Seed(), sched)
	r.Step("schedule: %s", sched)
	if err := r.Attack("ping", 30); err != nil {
		return err
	}
	if err := r.Attack("nodes", 10); err != nil {
		return err
	}
	if err := r.WaitOps(ctx, "ping", 15); err != nil {
		return err
	}
	o := r.UploadOptions(8, 2, min(r.UploadSize(), 256<<20))
	o.Retries, o.Backoff = 10, 500*time.Millisecond
	uploads := r.UploadInBackground(o)
	faults, err := sched.Run(ctx, r.Env())
	if err != nil {
		return fmt.Errorf("run the schedule: %w", err)
	}
	if len(faults) != len(sched.Steps) {
		return fmt.Errorf("the schedule ran %d of %d steps", len(faults), len(sched.Steps))
	}
	res, err := Receive(ctx, uploads, 8*time.Minute)
	if err != nil {
		return err
	}
	r.StopLoad()
	if res.Err != nil {
		return res.Err
	}
	if err := res.Summary.Err(); err != nil {
		return fmt.Errorf("uploads retried through the faults must succeed: %w", err)
	}
	_, err = r.Check(ctx, checker.Options{
		MinOps:      []checker.MinOpsRule{{Kind: "ping", N: 10}},
		ErrorWindow: checker.ErrorWindowOptions{Grace: 6 * time.Second, IgnoreStatus: []int{http.StatusConflict, http.StatusTeapot}},
	})
	return err
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
	c, spec := r.Cluster(), r.Spec()
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
	r.Step("stopping the database mid-load")
	outage, err := r.Inject(ctx, nemesis.DatabaseOutage, "")
	if err != nil {
		return err
	}
	unhealthy := spec.Node.UnhealthyAfter + 2*spec.Node.Heartbeat + 2*time.Second
	for _, n := range c.Nodes() {
		if err := Eventually(ctx, n.Name+" must stop answering 200 without its database", unhealthy, 50*time.Millisecond, PingIsNot(ctx, n.URL, http.StatusOK)); err != nil {
			return err
		}
	}
	r.Figure("db-down-to-all-nodes-unhealthy", time.Since(outage.Start()).Seconds(), "s")
	if err := Eventually(ctx, "the load balancer answers 503 when no node is healthy", LBBound(spec, spec.LB.Fall), 20*time.Millisecond, PingIs(ctx, c.URL(), http.StatusServiceUnavailable)); err != nil {
		return err
	}
	r.Figure("db-down-to-lb-503", time.Since(outage.Start()).Seconds(), "s")
	if err := Sleep(ctx, 2*time.Second); err != nil { // keep the outage on while clients retry
		return err
	}
	r.Step("starting the database again")
	if err := outage.Recover(ctx); err != nil {
		return err
	}
	back := time.Now()
	if err := Eventually(ctx, "the load balancer serves again", 30*time.Second, 50*time.Millisecond, PingIs(ctx, c.URL(), http.StatusOK)); err != nil {
		return err
	}
	for _, n := range c.Nodes() {
		if err := Eventually(ctx, n.Name+" serves again", 30*time.Second, 50*time.Millisecond, PingIs(ctx, n.URL, http.StatusOK)); err != nil {
			return err
		}
	}
	r.Figure("db-up-to-cluster-serving", time.Since(back).Seconds(), "s")
	res, err := Receive(ctx, uploads, 5*time.Minute)
	if err != nil {
		return err
	}
	if res.Err != nil {
		return res.Err
	}
	if err := res.Summary.Err(); err != nil {
		return fmt.Errorf("uploads retried through the outage must succeed: %w", err)
	}
	r.StopLoad()
	rep, err := r.Check(ctx, checker.Options{
		MinOps:      []checker.MinOpsRule{{Kind: "ping", N: 10}},
		ErrorWindow: checker.ErrorWindowOptions{Grace: 5 * time.Second, IgnoreStatus: []int{http.StatusConflict}},
	})
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
	res, err := Receive(ctx, uploads, 5*time.Minute)
	if err != nil {
		return err
	}
	if res.Err != nil {
		return res.Err
	}
	if err := res.Summary.Err(); err != nil {
		return fmt.Errorf("uploads retried after the share returned must succeed: %w", err)
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
