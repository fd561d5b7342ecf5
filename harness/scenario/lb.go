package scenario

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/octoha/octoha/harness/checker"
	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/lb"
	"github.com/octoha/octoha/harness/nemesis"
	"github.com/octoha/octoha/harness/payload"
)

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
