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
	"github.com/octoha/octoha/harness/traffic"
)

// KillMidDelta: a crash while a node patches a delta upload into a new
// package on the share.
func KillMidDelta() Scenario {
	return Scenario{
		Title:   "Kill mid-delta",
		Claim:   "Killing the node that is patching a delta upload fails only that attempt; the client's retry is patched on another node, nothing acknowledged is lost and no partial file survives.",
		Needs:   []cluster.Capability{cluster.CapKill},
		Shape:   Shape{Nodes: 3},
		Load:    []Load{{Target: "ping", Rate: 40}},
		Uploads: &Uploads{Count: 3, Concurrency: 1, Delta: true},
		Faults:  []FaultPlan{{Fault: nemesis.KindKill, Target: "the node patching a delta"}},
		Checks:  checks("history", "min-ops:ping", "durability", "no-leftovers", "convergence", "error-window"),
		Timeout: 6 * time.Minute,
		Steps:   killMidDeltaSteps,
	}
}

func killMidDeltaSteps(ctx context.Context, r Run) error {
	c, spec := r.Cluster(), r.Spec()
	if err := r.Attack("ping", 40); err != nil {
		return err
	}
	if err := r.WaitOps(ctx, "ping", 20); err != nil {
		return err
	}
	size := r.UploadSize()
	o := r.UploadOptions(1, 1, size)
	o.Delta, o.Change = true, traffic.DefaultChange
	r.Step("uploading version 1 of the package in full (the base of the deltas)")
	if _, err := r.Upload(ctx, o); err != nil {
		return err
	}
	r.Step("uploading versions 2 and 3 as deltas (%.0f%% of blocks changed each)", 100*o.Change)
	o.First, o.Count = 1, 2
	uploads := r.UploadInBackground(o)
	// A node counts a delta as received while it patches it.
	victim, err := r.NodeWithActiveUpload(ctx, 90*time.Second)
	if err != nil {
		return err
	}
	if victim == "" {
		victim = c.Nodes()[len(c.Nodes())-1].Name
	}
	r.Step("SIGKILL %s while it patches a delta", victim)
	kill, err := r.Inject(ctx, nemesis.Kill, victim)
	if err != nil {
		return err
	}
	if err := r.WaitLB(ctx, victim, "DOWN", LBBound(spec, spec.LB.Fall)); err != nil {
		return err
	}
	sum, err := AwaitUploads(ctx, uploads, 5*time.Minute, "the client's retries of the delta must succeed")
	if err != nil {
		return err
	}
	r.Step("restarting %s", victim)
	if err := kill.Recover(ctx); err != nil {
		return err
	}
	r.StopLoad()

	r.Step("the kill cut a delta upload, whose retry was patched elsewhere")
	h, err := r.History()
	if err != nil {
		return err
	}
	cut := map[string]bool{}
	for _, op := range h.OpsOfKind(history.KindUpload) {
		if op.Outcome != history.OK && op.DeltaBytes > 0 && !op.End.Before(kill.Start()) {
			cut[op.PackageID+"@"+op.Version] = true
		}
	}
	if len(cut) == 0 {
		return fmt.Errorf("the kill of %s cut no delta upload: the scenario did not test what it claims", victim)
	}
	var deltaBytes, fullBytes int64
	for _, p := range sum.Packages {
		if p.DeltaBytes == 0 {
			return fmt.Errorf("%s went in full, not as a delta", p.Spec.FileName())
		}
		if cut[p.Spec.PackageID+"@"+p.Spec.Version] && p.Node == victim {
			return fmt.Errorf("the retry of %s was acknowledged by the killed node", p.Spec.FileName())
		}
		deltaBytes += p.DeltaBytes
		fullBytes += p.Spec.Size
	}
	r.Figure("delta-uploads-cut", float64(len(cut)), "packages")
	r.Figure("delta-bytes-per-full-byte", float64(deltaBytes)/float64(fullBytes), "ratio")
	r.Step("no partial file survives: the temporary file of the cut patch is swept")
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
	if d, ok := rep.Result("durability"); ok {
		r.Figure("delta-built-verified", d.Value("delta-built"), "packages")
	}
	return nil
}
