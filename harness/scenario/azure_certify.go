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

// What a real cluster behind Azure's load balancers shows from outside:
// the certificate rows ReqProbeBound, ReqLongUpload and ReqOver100MB.

func azureCertScenario(title, claim string, certifies string, steps func(context.Context, Run) error) Scenario {
	return Scenario{Title: title, Claim: claim, Topic: LAzure, Providers: []string{External},
		ProviderNote: "it certifies a real cluster behind Azure's load balancers; the azure scenarios cover the simulated ones",
		Certifies:    []string{certifies}, Timeout: 10 * time.Minute, Steps: steps}
}

// AzureCertProbe measures the ejection time against the configured bound.
func AzureCertProbe() Scenario {
	sc := azureCertScenario("Azure certification — probe bound",
		"A drained node stops getting new requests within the load balancer's configured probe bound, interval × threshold.",
		ReqProbeBound, azureCertProbeSteps)
	sc.Needs = []cluster.Capability{cluster.CapDrain}
	sc.Load = []Load{{Target: "ping", Rate: 20}}
	sc.Faults = []FaultPlan{{Fault: nemesis.KindDrain, Target: "the last node"}}
	sc.Checks = checks("convergence")
	return sc
}

// certProbeBound is the configured bound: for lb.kind azure-lb or
// azure-appgw, lb.azure of the cluster YAML over Azure's defaults; for any
// other load balancer, the YAML's lb.interval × lb.fall.
func certProbeBound(spec cluster.Spec) time.Duration {
	k := lb.Kind(spec.LB.Kind)
	if !lb.IsAzure(k) {
		return time.Duration(spec.LB.Fall) * spec.LB.Interval
	}
	return spec.LB.Azure.Options().WithDefaults(k).ProbeBound()
}

func azureCertProbeSteps(ctx context.Context, r Run) error {
	c, spec := r.Cluster(), r.Spec()
	bound := certProbeBound(spec)
	drained := c.Nodes()[len(c.Nodes())-1].Name
	if err := r.Attack("ping", 20); err != nil {
		return err
	}
	if err := r.WaitOps(ctx, "ping", 20); err != nil {
		return err
	}
	r.Step("draining %s under ping load; the configured probe bound is %s", drained, bound)
	if _, err := r.Hold(ctx, nemesis.Drain, drained, bound+bound/2+spec.Node.Heartbeat); err != nil {
		return err
	}
	r.StopLoad()
	rep, err := r.Check(ctx, checker.Options{
		Convergence: checker.ConvergenceOptions{EjectWithin: spec.Node.Heartbeat + bound},
		ErrorWindow: checker.ErrorWindowOptions{IgnoreStatus: []int{http.StatusTeapot}},
	})
	if err != nil {
		return err
	}
	conv, _ := rep.Result("convergence")
	r.Figure("eject", conv.Value("eject-max"), "s")
	r.Figure("probe-bound", bound.Seconds(), "s")
	return nil
}

// AzureCertLongUpload: an upload lasting longer than 20 s.
func AzureCertLongUpload() Scenario {
	sc := azureCertScenario("Azure certification — long upload",
		"An upload paced to last 25 s, longer than Application Gateway's default 20 s request timeout, passes the load balancer.",
		ReqLongUpload, func(ctx context.Context, r Run) error {
			size := r.UploadSize()
			return azureCertUpload(ctx, r, size, max(size/25, 1))
		})
	sc.Uploads = &Uploads{Count: 1, Concurrency: 1}
	sc.Checks = checks("durability", "upload-path")
	return sc
}

// AzureCertOver100MB: a package above the WAF's default file upload limit.
func AzureCertOver100MB() Scenario {
	sc := azureCertScenario("Azure certification — 100 MB+",
		"A package above 100 MB, the WAF's default file upload limit, passes the load balancer.",
		ReqOver100MB, func(ctx context.Context, r Run) error {
			return azureCertUpload(ctx, r, max(r.UploadSize(), lb.AppGWWAFFileUploadLimit+8<<20), 0)
		})
	sc.Uploads = &Uploads{Count: 1, Concurrency: 1}
	sc.Checks = checks("durability", "upload-path")
	return sc
}

func azureCertUpload(ctx context.Context, r Run, size, rate int64) error {
	paced := ""
	if rate > 0 {
		paced = fmt.Sprintf(" paced to %s/s", payload.FormatSize(rate))
	}
	r.Step("one %s upload%s through the load balancer", payload.FormatSize(size), paced)
	o := r.UploadOptions(1, 1, size)
	o.Retries, o.Rate = 0, rate
	sum, err := r.Upload(ctx, o)
	if err != nil {
		return err
	}
	r.Figure("upload-seconds", sum.Duration.Seconds(), "s")
	if _, err := r.Check(ctx, checker.Options{}); err != nil {
		return err
	}
	return sum.Err()
}
