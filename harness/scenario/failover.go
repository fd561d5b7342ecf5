package scenario

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/octoha/octoha/harness/checker"
	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/history"
	"github.com/octoha/octoha/harness/nemesis"
)

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
	if _, err := AwaitUploads(ctx, uploads, 5*time.Minute, "every upload must succeed while a node drains"); err != nil {
		return err
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
	sum, err := AwaitUploads(ctx, uploads, 5*time.Minute, "the client's retries through the load balancer must succeed")
	if err != nil {
		return err
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

// Partition: a node cut off the network (docker networks, or every link of
// the node through Toxiproxy on the local provider).
func Partition() Scenario {
	return Scenario{
		Title:        "Partition",
		Claim:        "A node cut off the network is ejected and taken back once the network heals.",
		Needs:        []cluster.Capability{cluster.CapPartition},
		Providers:    []string{Local, Docker},
		ProviderNote: "a real cluster's network is not the harness's to cut",
		Shape:        Shape{Nodes: 3, Toxiproxy: true},
		Load:         []Load{{Target: "ping", Rate: 40}},
		Faults:       []FaultPlan{{Fault: nemesis.KindPartition, Target: "Node2"}},
		Checks:       checks("history", "min-ops:ping", "convergence", "error-window"),
		Timeout:      4 * time.Minute,
		Steps: func(ctx context.Context, r Run) error {
			return outOfNetworkSteps(ctx, r, nemesis.Partition, "disconnecting", "reconnecting", 2*time.Second)
		},
	}
}
