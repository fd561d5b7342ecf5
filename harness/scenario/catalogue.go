package scenario

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/octoha/octoha/fakes/api"
	"github.com/octoha/octoha/harness/checker"
	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/history"
	"github.com/octoha/octoha/harness/lb"
	"github.com/octoha/octoha/harness/nemesis"
)

// Catalogue returns every scenario, in the order they run.
func Catalogue() []Scenario {
	return []Scenario{
		HealthCheck(),
		DrainUnderLoad(),
		KillMidUpload(),
		Pause(),
		Capacity(2, 20),
		Capacity(4, 10),
		LBLimits(lb.HAProxy, "LB limits — HAProxy for Octopus", true, true),
		LBLimits(lb.Nginx, "LB limits — nginx tuned", true, false),
		LBLimits(lb.NginxDefaults, "LB limits — nginx defaults", false, false),
		LBCertification(),
		Stickiness(),
		BrokenCluster(),
		RandomChaos(),
		DatabaseOutage(),
		ShareOutage(),
		Partition(),
	}
}

// checks declares checks that must pass.
func checks(names ...string) []Check {
	out := make([]Check, len(names))
	for i, n := range names {
		out[i] = Check{Name: n}
	}
	return out
}

// HealthCheck: the seed's health-check contract, node by node, and the
// load balancer following it.
func HealthCheck() Scenario {
	return Scenario{
		Title:     "Health check",
		Claim:     "Every node answers its ping with 200 when healthy, 418 when draining and 503 without its database, and the load balancer follows each answer.",
		Topic:     LHealth,
		Needs:     []cluster.Capability{cluster.CapDrain},
		Shape:     Shape{Nodes: 3},
		Load:      []Load{{Target: "ping", Rate: 60}},
		Faults:    []FaultPlan{{Fault: nemesis.KindDrain, Target: "Node2"}, {Fault: nemesis.KindDBOutage}},
		Checks:    checks("history", "min-ops:ping", "convergence", "error-window"),
		Certifies: []string{ReqHealthCheckPath},
		Timeout:   3 * time.Minute,
		Steps:     healthSteps,
	}
}

func healthSteps(ctx context.Context, r Run) error {
	c, spec := r.Cluster(), r.Spec()
	if err := r.Attack("ping", 60); err != nil {
		return err
	}
	if err := r.WaitOps(ctx, "ping", 30); err != nil {
		return err
	}
	r.Step("every node answers 200 with its own node JSON, and so does the load balancer")
	for _, n := range c.Nodes() {
		if err := nodePingsItself(ctx, n); err != nil {
			return err
		}
		if err := r.WaitLB(ctx, n.Name, "UP", 0); err != nil {
			return err
		}
	}
	if err := PingIs(ctx, c.URL(), http.StatusOK)(); err != nil {
		return fmt.Errorf("load balancer: %w", err)
	}
	drained, other := c.Nodes()[1], c.Nodes()[0]
	r.Step("draining %s through the API: its ping answers 418 and the load balancer takes it out", drained.Name)
	drain, err := r.Inject(ctx, nemesis.Drain, drained.Name)
	if err != nil {
		return err
	}
	if err := Eventually(ctx, drained.Name+" answers 418", spec.Node.Heartbeat+time.Second, 20*time.Millisecond, PingIs(ctx, drained.URL, http.StatusTeapot)); err != nil {
		return err
	}
	r.Figure("drain-to-418", time.Since(drain.Start()).Seconds(), "s")
	if err := r.WaitLB(ctx, drained.Name, "OUT", spec.Node.Heartbeat+LBBound(spec, spec.LB.Fall)); err != nil {
		return err
	}
	r.Figure("drain-to-lb-out", time.Since(drain.Start()).Seconds(), "s")
	if err := Consistently(ctx, other.Name+" keeps serving", time.Second, 50*time.Millisecond, PingIs(ctx, other.URL, http.StatusOK)); err != nil {
		return err
	}
	r.Step("undraining: 200 again and back in the load balancer")
	if err := drain.Recover(ctx); err != nil {
		return err
	}
	undrained := time.Now()
	if err := r.WaitLB(ctx, drained.Name, "UP", spec.Node.Heartbeat+LBBound(spec, spec.LB.Rise)); err != nil {
		return err
	}
	r.Figure("undrain-to-lb-up", time.Since(undrained).Seconds(), "s")
	if err := r.ServesAgain(ctx, drained.Name, undrained); err != nil {
		return err
	}

	if err := r.Can(cluster.CapDBOutage); err != nil {
		r.Note("database step skipped: %v", err)
	} else {
		r.Step("stopping the database: every node answers 503 and the load balancer has nothing to serve")
		outage, err := r.Inject(ctx, nemesis.DatabaseOutage, "")
		if err != nil {
			return err
		}
		unhealthy := spec.Node.UnhealthyAfter + 2*spec.Node.Heartbeat + 2*time.Second
		for _, n := range c.Nodes() {
			if err := Eventually(ctx, n.Name+" without its database", unhealthy, 50*time.Millisecond, PingIs(ctx, n.URL, http.StatusServiceUnavailable)); err != nil {
				return err
			}
		}
		r.Figure("db-down-to-all-503", time.Since(outage.Start()).Seconds(), "s")
		if err := Eventually(ctx, "the load balancer answers 503 with every node out", LBBound(spec, spec.LB.Fall), 20*time.Millisecond, PingIs(ctx, c.URL(), http.StatusServiceUnavailable)); err != nil {
			return err
		}
		r.Figure("db-down-to-lb-503", time.Since(outage.Start()).Seconds(), "s")
		r.Step("starting the database again: nodes recover by themselves")
		if err := outage.Recover(ctx); err != nil {
			return err
		}
		restarted := time.Now()
		for _, n := range c.Nodes() {
			if err := Eventually(ctx, n.Name+" after the database returned", 30*time.Second, 50*time.Millisecond, PingIs(ctx, n.URL, http.StatusOK)); err != nil {
				return err
			}
		}
		if err := Eventually(ctx, "the load balancer serves again", LBBound(spec, spec.LB.Rise), 20*time.Millisecond, PingIs(ctx, c.URL(), http.StatusOK)); err != nil {
			return err
		}
		r.Figure("db-up-to-lb-200", time.Since(restarted).Seconds(), "s")
	}
	r.StopLoad()
	_, err = r.Check(ctx, checker.Options{
		Convergence: checker.ConvergenceOptions{EjectWithin: spec.Node.Heartbeat + LBBound(spec, spec.LB.Fall), RejoinWithin: spec.Node.Heartbeat + LBBound(spec, spec.LB.Rise)},
		MinOps:      []checker.MinOpsRule{{Kind: "ping", N: 20}},
		ErrorWindow: checker.ErrorWindowOptions{Grace: 2 * time.Second},
	})
	return err
}

// nodePingsItself checks that a node's ping answers 200 with its own JSON.
func nodePingsItself(ctx context.Context, n cluster.Node) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.URL+api.PingPath, nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return fmt.Errorf("%s ping: %w", n.Name, err)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s ping answered %s, want 200", n.Name, resp.Status)
	}
	var pn api.Node
	if err := json.Unmarshal(body, &pn); err != nil {
		return fmt.Errorf("%s ping body is not node JSON: %w", n.Name, err)
	}
	if n.ID != "" && pn.Id != n.ID {
		return fmt.Errorf("%s ping body names %q, want %q", n.Name, pn.Id, n.ID)
	}
	if pn.IsInMaintenanceMode {
		return fmt.Errorf("%s is in maintenance mode before the scenario drained it", n.Name)
	}
	return nil
}

// DrainUnderLoad: the operator's drain, with an upload in flight.
func DrainUnderLoad() Scenario {
	return Scenario{
		Title:     "Drain under load",
		Claim:     "A drained node stops getting new requests within the health-check bound, finishes the upload it is receiving, and is taken back on undrain.",
		Needs:     []cluster.Capability{cluster.CapDrain},
		Shape:     Shape{Nodes: 3},
		Load:      []Load{{Target: "ping", Rate: 40}, {Target: "nodes", Rate: 20}},
		Uploads:   &Uploads{Count: 3, Concurrency: 3},
		Faults:    []FaultPlan{{Fault: nemesis.KindDrain, Target: "the node receiving an upload"}},
		Checks:    checks("history", "min-ops:ping", "durability", "no-leftovers", "convergence", "error-window", "upload-path"),
		Certifies: []string{ReqDrainEjects, ReqSamePackages},
		Timeout:   8 * time.Minute,
		Steps:     drainSteps,
	}
}

func drainSteps(ctx context.Context, r Run) error {
	c, spec := r.Cluster(), r.Spec()
	if err := r.Attack("ping", 40); err != nil {
		return err
	}
	if err := r.Attack("nodes", 20); err != nil {
		return err
	}
	if err := r.WaitOps(ctx, "ping", 20); err != nil {
		return err
	}
	r.Step("uploading packages through the load balancer")
	uploads := r.UploadInBackground(r.UploadOptions(3, 3, r.UploadSize()))
	target, err := r.NodeWithActiveUpload(ctx, 30*time.Second)
	if err != nil {
		return err
	}
	knowsUploads := target != ""
	if !knowsUploads {
		target = c.Nodes()[len(c.Nodes())-1].Name
	}
	r.Step("draining %s while it receives an upload", target)
	drain, err := r.Inject(ctx, nemesis.Drain, target)
	if err != nil {
		return err
	}
	if err := Eventually(ctx, target+" answers 418", spec.Node.Heartbeat+time.Second, 20*time.Millisecond, PingIs(ctx, nodeURL(c, target), http.StatusTeapot)); err != nil {
		return err
	}
	bound := spec.Node.Heartbeat + LBBound(spec, spec.LB.Fall)
	if err := r.WaitLB(ctx, target, "OUT", bound); err != nil {
		return err
	}
	r.Figure("drain-to-lb-out", time.Since(drain.Start()).Seconds(), "s")
	r.Step("waiting for the uploads to finish")
	res, err := Receive(ctx, uploads, 5*time.Minute)
	if err != nil {
		return err
	}
	if res.Err != nil {
		return res.Err
	}
	if err := res.Summary.Err(); err != nil {
		return fmt.Errorf("every upload must succeed while a node drains: %w", err)
	}
	// Hold the drain at least one full bound so "no new requests" is
	// measured over a meaningful window.
	if rest := time.Until(drain.Start().Add(2 * bound)); rest > 0 {
		if err := Consistently(ctx, target+" stays drained", rest, 100*time.Millisecond, PingIs(ctx, nodeURL(c, target), http.StatusTeapot)); err != nil {
			return err
		}
	}
	r.Step("undraining %s", target)
	if err := drain.Recover(ctx); err != nil {
		return err
	}
	if err := r.WaitLB(ctx, target, "UP", spec.Node.Heartbeat+LBBound(spec, spec.LB.Rise)); err != nil {
		return err
	}
	undrained := time.Now()
	if err := r.ServesAgain(ctx, target, undrained); err != nil {
		return err
	}
	r.StopLoad()

	r.Step("the upload in flight on the drained node completed with 201")
	h, err := r.History()
	if err != nil {
		return err
	}
	inFlight := 0
	for _, op := range h.OpsOfKind(history.KindUpload) {
		if op.Node == target && op.Start.Before(drain.Start()) && op.End.After(drain.Start()) {
			if op.Status != http.StatusCreated {
				return fmt.Errorf("upload %s %s in flight on %s when it was drained ended %d, want 201", op.PackageID, op.Version, target, op.Status)
			}
			inFlight++
		}
	}
	if knowsUploads && inFlight == 0 {
		return fmt.Errorf("no upload was in flight on %s when it was drained: the scenario did not test what it claims", target)
	}
	r.Figure("uploads-in-flight-at-drain", float64(inFlight), "ops")
	rep, err := r.Check(ctx, checker.Options{
		Convergence: checker.ConvergenceOptions{EjectWithin: bound, RejoinWithin: spec.Node.Heartbeat + LBBound(spec, spec.LB.Rise)},
		MinOps:      []checker.MinOpsRule{{Kind: "ping", N: 20}},
		// Pings that reach the draining node before it is ejected get its
		// 418: that is what a drain looks like through a load balancer.
		ErrorWindow: checker.ErrorWindowOptions{IgnoreStatus: []int{http.StatusTeapot}},
	})
	if err != nil {
		return err
	}
	if conv, ok := rep.Result("convergence"); ok {
		r.Figure("eject-after-drain", conv.Value("eject-max"), "s")
	}
	return nil
}

func nodeURL(c cluster.Cluster, name string) string {
	for _, n := range c.Nodes() {
		if n.Name == name {
			return n.URL
		}
	}
	return ""
}

// KillMidUpload: a crash in the middle of uploads.
func KillMidUpload() Scenario {
	return Scenario{
		Title:     "Kill mid-upload",
		Claim:     "Killing a node fails only the uploads it was receiving; their retries succeed on another node, nothing acknowledged is lost and no partial file is left.",
		Needs:     []cluster.Capability{cluster.CapKill},
		Shape:     Shape{Nodes: 3},
		Load:      []Load{{Target: "ping", Rate: 40}},
		Uploads:   &Uploads{Count: 3, Concurrency: 3},
		Faults:    []FaultPlan{{Fault: nemesis.KindKill, Target: "the node receiving an upload"}},
		Checks:    checks("history", "min-ops:ping", "durability", "no-leftovers", "convergence", "error-window"),
		Certifies: []string{ReqFailover},
		Timeout:   8 * time.Minute,
		Steps:     killSteps,
	}
}

func killSteps(ctx context.Context, r Run) error {
	c, spec := r.Cluster(), r.Spec()
	if err := r.Attack("ping", 40); err != nil {
		return err
	}
	if err := r.WaitOps(ctx, "ping", 20); err != nil {
		return err
	}
	r.Step("uploading packages concurrently through the load balancer")
	uploads := r.UploadInBackground(r.UploadOptions(3, 3, r.UploadSize()))
	victim, err := r.NodeWithActiveUpload(ctx, 30*time.Second)
	if err != nil {
		return err
	}
	if victim == "" {
		victim = c.Nodes()[len(c.Nodes())-1].Name
	}
	r.Step("SIGKILL %s while it receives an upload", victim)
	kill, err := r.Inject(ctx, nemesis.Kill, victim)
	if err != nil {
		return err
	}
	if err := r.WaitLB(ctx, victim, "DOWN", LBBound(spec, spec.LB.Fall)); err != nil {
		return err
	}
	r.Figure("kill-to-lb-down", time.Since(kill.Start()).Seconds(), "s")
	res, err := Receive(ctx, uploads, 5*time.Minute)
	if err != nil {
		return err
	}
	if res.Err != nil {
		return res.Err
	}
	sum := res.Summary
	if err := sum.Err(); err != nil {
		return fmt.Errorf("the client's retries through the load balancer must succeed: %w", err)
	}
	r.Step("restarting %s", victim)
	if err := kill.Recover(ctx); err != nil {
		return err
	}
	r.StopLoad()

	r.Step("only uploads on %s failed, and their retries succeeded elsewhere", victim)
	h, err := r.History()
	if err != nil {
		return err
	}
	retried := map[string]bool{}
	for _, op := range h.OpsOfKind(history.KindUpload) {
		if op.Outcome == history.OK {
			continue
		}
		if op.Node != victim && op.Node != "" {
			return fmt.Errorf("a failed upload attempt (seq %d) was answered by %s, not the killed node", op.Seq, op.Node)
		}
		if op.End.Before(kill.Start()) {
			return fmt.Errorf("upload attempt %d failed before the kill", op.Seq)
		}
		retried[op.PackageID+"@"+op.Version] = true
	}
	if len(retried) == 0 {
		return fmt.Errorf("the kill of %s hit no upload: the scenario did not test what it claims", victim)
	}
	for _, p := range sum.Packages {
		if retried[p.Spec.PackageID+"@"+p.Spec.Version] {
			if p.Node == victim {
				return fmt.Errorf("the retry of %s landed on the killed node", p.Spec.FileName())
			}
			if p.Attempts < 2 {
				return fmt.Errorf("%s failed once but records %d attempt(s)", p.Spec.FileName(), p.Attempts)
			}
		}
	}
	r.Figure("uploads-retried", float64(len(retried)), "packages")
	r.Step("no partial file survives: the restarted node sweeps its temporary files")
	if err := r.NoTempFiles(ctx); err != nil {
		return err
	}
	rep, err := r.Check(ctx, checker.Options{
		Convergence: checker.ConvergenceOptions{EjectWithin: LBBound(spec, spec.LB.Fall)},
		MinOps:      []checker.MinOpsRule{{Kind: "ping", N: 20}},
		ErrorWindow: checker.ErrorWindowOptions{IgnoreStatus: []int{http.StatusConflict}},
	})
	if err != nil {
		return err
	}
	conv, _ := rep.Result("convergence")
	r.Figure("eject-after-kill", conv.Value("eject-max"), "s")
	ew, _ := rep.Result("error-window")
	r.Figure("client-failures-during-kill", ew.Value("failures"), "ops")
	return nil
}

// Pause: a frozen node, neither dead nor alive.
func Pause() Scenario {
	return Scenario{
		Title:   "Pause",
		Claim:   "A frozen node is ejected on health-check timeouts and served from again once it resumes.",
		Needs:   []cluster.Capability{cluster.CapPause},
		Shape:   Shape{Nodes: 3},
		Load:    []Load{{Target: "ping", Rate: 60}},
		Faults:  []FaultPlan{{Fault: nemesis.KindPause, Target: "Node2"}},
		Checks:  checks("history", "min-ops:ping", "convergence", "error-window"),
		Timeout: 3 * time.Minute,
		Steps:   pauseSteps,
	}
}

func pauseSteps(ctx context.Context, r Run) error {
	return outOfNetworkSteps(ctx, r, nemesis.Pause, "SIGSTOP", "SIGCONT", 0)
}

// outOfNetworkSteps: a node that stops answering without dying (paused or
// partitioned) is ejected after (fall+1) intervals — each check times out
// after one — and rejoins once it answers again.
func outOfNetworkSteps(ctx context.Context, r Run, f nemesis.Fault, inject, heal string, rejoinSlack time.Duration) error {
	c, spec := r.Cluster(), r.Spec()
	rate := 60
	if f == nemesis.Partition {
		rate = 40
	}
	if err := r.Attack("ping", rate, withTimeout(2*time.Second)); err != nil {
		return err
	}
	if err := r.WaitOps(ctx, "ping", rate/2); err != nil {
		return err
	}
	victim := c.Nodes()[1].Name
	r.Step("%s %s", inject, victim)
	inj, err := r.Inject(ctx, f, victim)
	if err != nil {
		return err
	}
	bound := LBBound(spec, spec.LB.Fall+1)
	if err := r.WaitLB(ctx, victim, "DOWN", bound); err != nil {
		return err
	}
	r.Figure(f.Name()+"-to-lb-down", time.Since(inj.Start()).Seconds(), "s")
	if err := Consistently(ctx, "the cluster serves while "+victim+" is out", 2*time.Second, 100*time.Millisecond, PingIs(ctx, c.URL(), http.StatusOK)); err != nil {
		return err
	}
	r.Step("%s %s", heal, victim)
	if err := inj.Recover(ctx); err != nil {
		return err
	}
	healed := time.Now()
	if err := r.WaitLB(ctx, victim, "UP", LBBound(spec, spec.LB.Rise)+rejoinSlack); err != nil {
		return err
	}
	r.Figure("heal-to-lb-up", time.Since(healed).Seconds(), "s")
	if err := r.ServesAgain(ctx, victim, healed); err != nil {
		return err
	}
	r.StopLoad()
	rep, err := r.Check(ctx, checker.Options{
		Convergence: checker.ConvergenceOptions{EjectWithin: bound + 2*time.Second, RejoinWithin: LBBound(spec, spec.LB.Rise) + time.Second + rejoinSlack},
		MinOps:      []checker.MinOpsRule{{Kind: "ping", N: 20}},
		ErrorWindow: checker.ErrorWindowOptions{Grace: 3 * time.Second},
	})
	if err != nil {
		return err
	}
	ew, _ := rep.Result("error-window")
	r.Figure("client-failures-during-"+f.Name(), ew.Value("failures"), "ops")
	return nil
}

// Partition: a node cut off the network (docker provider).
func Partition() Scenario {
	return Scenario{
		Title:        "Partition",
		Claim:        "A node cut off the network is ejected and taken back once the network heals.",
		Needs:        []cluster.Capability{cluster.CapPartition},
		Providers:    []string{Docker},
		ProviderNote: "only containers can be cut off a network (the local provider's nodes share the loopback interface)",
		Shape:        Shape{Nodes: 3},
		Load:         []Load{{Target: "ping", Rate: 40}},
		Faults:       []FaultPlan{{Fault: nemesis.KindPartition, Target: "Node2"}},
		Checks:       checks("history", "min-ops:ping", "convergence", "error-window"),
		Timeout:      4 * time.Minute,
		Steps: func(ctx context.Context, r Run) error {
			return outOfNetworkSteps(ctx, r, nemesis.Partition, "disconnecting", "reconnecting", 2*time.Second)
		},
	}
}
