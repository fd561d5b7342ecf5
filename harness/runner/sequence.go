package runner

import (
	"context"
	"fmt"
	"time"

	"github.com/octoha/octoha/harness/checker"
	"github.com/octoha/octoha/harness/history"
	"github.com/octoha/octoha/harness/nemesis"
	"github.com/octoha/octoha/harness/payload"
	"github.com/octoha/octoha/harness/scenario"
	"github.com/octoha/octoha/harness/traffic"
)

// sequence runs a scenario without Steps from its data: the declared load
// warms up, the uploads start, each fault step runs (victim, inject with
// its recovery registered first, the load balancer's view, hold, recover,
// settle), the load stops, each fault's expectations are verified and the
// checks run with the bounds the steps waited for.
func (r *run) sequence(ctx context.Context) error {
	sc := r.sc
	if err := sc.Validate(); err != nil {
		return err
	}
	if err := r.startLoad(ctx, sc.Load); err != nil {
		return err
	}
	up := &uploads{}
	if err := r.startUploads(ctx, sc.Uploads, up); err != nil {
		return err
	}
	outcomes := make([]scenario.Outcome, 0, len(sc.Faults))
	for _, fp := range sc.Faults {
		out, err := r.faultStep(ctx, fp, up)
		if err != nil {
			return err
		}
		outcomes = append(outcomes, out)
	}
	sum, err := up.await(ctx)
	if err != nil {
		return err
	}
	r.StopLoad()
	h, err := r.History()
	if err != nil {
		return err
	}
	for i, fp := range sc.Faults {
		o := outcomes[i]
		o.Uploads, o.History = sum, h
		for _, expect := range fp.Expect {
			if err := expect(ctx, r, o); err != nil {
				return err
			}
		}
	}
	opts := r.checkOptions()
	rep, err := r.Check(ctx, opts)
	if err != nil {
		return err
	}
	r.reportFigures(rep)
	return nil
}

// startLoad starts every declared load and waits for each to warm up
// (the first by default for half its rate's acknowledged requests).
func (r *run) startLoad(ctx context.Context, loads []scenario.Load) error {
	for _, l := range loads {
		var opts []func(*traffic.AttackOptions)
		if l.Timeout > 0 {
			opts = append(opts, func(o *traffic.AttackOptions) { o.Timeout = l.Timeout })
		}
		if err := r.Attack(l.Target, l.Rate, opts...); err != nil {
			return err
		}
	}
	for i, l := range loads {
		n := l.WarmUp
		if n == 0 && i == 0 {
			n = l.Rate / 2
		}
		if n > 0 {
			if err := r.WaitOps(ctx, l.Target, n); err != nil {
				return err
			}
		}
	}
	return nil
}

// uploads are the sequence's background uploads, awaited once.
type uploads struct {
	spec *scenario.Uploads
	ch   <-chan scenario.UploadResult
	sum  *traffic.UploadSummary
	done bool
}

// await waits for the uploads (if any, once) and says what must hold
// when one failed.
func (u *uploads) await(ctx context.Context) (*traffic.UploadSummary, error) {
	if u.ch == nil || u.done {
		return u.sum, nil
	}
	sum, err := scenario.AwaitUploads(ctx, u.ch, u.spec.UploadWithin(), u.spec.UploadMust())
	u.sum, u.done = sum, err == nil
	return sum, err
}

// startUploads starts the declared uploads in the background; deltas
// first upload their base version in full.
func (r *run) startUploads(ctx context.Context, spec *scenario.Uploads, up *uploads) error {
	if spec == nil {
		return nil
	}
	size := r.UploadSize()
	if spec.MaxSize > 0 {
		size = min(size, spec.MaxSize)
	}
	o := r.UploadOptions(spec.Count, spec.Concurrency, size)
	if spec.Retries > 0 {
		o.Retries = spec.Retries
	}
	if spec.Backoff > 0 {
		o.Backoff = spec.Backoff
	}
	o.Rate = spec.Rate
	if spec.Delta {
		o.Delta, o.Change, o.Count = true, traffic.DefaultChange, 1
		r.Step("uploading version 1 of the package in full (the base of the deltas)")
		if _, err := r.Upload(ctx, o); err != nil {
			return err
		}
		o.First, o.Count = 1, spec.Count-1
		r.Step("uploading %d more versions as deltas (%.0f%% of blocks changed each)", o.Count, 100*o.Change)
	} else {
		r.Step("uploading %d × %s through the load balancer", spec.Count, payload.FormatSize(size))
	}
	up.spec, up.ch = spec, r.UploadInBackground(o)
	return nil
}

// faultStep runs one fault: pick the victim, inject (the recovery is
// registered before), wait for the load balancer's view, hold, recover
// and wait for the cluster to settle.
func (r *run) faultStep(ctx context.Context, fp scenario.FaultPlan, up *uploads) (scenario.Outcome, error) {
	f, err := nemesis.ByName(fp.Fault)
	if err != nil {
		return scenario.Outcome{}, err
	}
	victim, knows, err := r.pickVictim(ctx, fp)
	if err != nil {
		return scenario.Outcome{}, err
	}
	on := victim
	if on == "" {
		on = "the cluster"
	}
	r.Step("injecting %s into %s (%s)", fp.Fault, on, describeVictim(fp))
	inj, err := r.Inject(ctx, f, victim)
	if err != nil {
		return scenario.Outcome{}, err
	}
	e := effectFor(f, r.spec)
	if err := r.awaitEffect(ctx, e, f.Name(), victim, inj.Start()); err != nil {
		return scenario.Outcome{}, err
	}
	if fp.HoldUploads {
		r.Step("holding the %s until the uploads finish", f.Name())
		if _, err := up.await(ctx); err != nil {
			return scenario.Outcome{}, err
		}
	}
	if err := r.hold(ctx, e, victim, inj.Start(), fp.Hold); err != nil {
		return scenario.Outcome{}, err
	}
	r.Step("recovering %s from the %s", on, f.Name())
	if err := inj.Recover(ctx); err != nil {
		return scenario.Outcome{}, err
	}
	if err := r.settle(ctx, e, victim, time.Now()); err != nil {
		return scenario.Outcome{}, err
	}
	return scenario.Outcome{Victim: victim, KnowsUploads: knows, Fault: inj.Fault()}, nil
}

func describeVictim(fp scenario.FaultPlan) string {
	if fp.Target != "" {
		return fp.Target
	}
	if fp.Victim == "" {
		return "every node"
	}
	return fp.Victim
}

// pickVictim applies the fault's victim rule; a fault on the whole
// cluster waits for its gate instead.
func (r *run) pickVictim(ctx context.Context, fp scenario.FaultPlan) (victim string, knowsUploads bool, err error) {
	switch fp.Victim {
	case "":
		switch fp.After {
		case scenario.AfterUploadAcked:
			return "", false, r.WaitOps(ctx, history.KindUpload, 1)
		case scenario.AfterUploadActive:
			_, err := r.NodeWithActiveUpload(ctx, fp.VictimWithin())
			return "", false, err
		}
		return "", false, nil
	case scenario.VictimUploading, scenario.VictimUploadingOnly:
		name, err := r.NodeWithActiveUpload(ctx, fp.VictimWithin())
		if err != nil || name != "" {
			return name, name != "", err
		}
		if fp.Victim == scenario.VictimUploadingOnly {
			return "", false, scenario.Skip("the nodes do not report uploads in progress: no way to fault one mid-upload")
		}
		nodes := r.c.Nodes()
		return nodes[len(nodes)-1].Name, false, nil
	}
	for _, n := range r.c.Nodes() {
		if n.Name == fp.Victim {
			return n.Name, false, nil
		}
	}
	return "", false, fmt.Errorf("the victim %s is not a node of this cluster", fp.Victim)
}

// checkOptions are the checks' options: the min-ops floors of the loads,
// and the bounds and tolerated answers of every fault's effect.
func (r *run) checkOptions() checker.Options {
	var opts checker.Options
	for _, l := range r.sc.Load {
		if l.MinOps > 0 {
			opts.MinOps = append(opts.MinOps, checker.MinOpsRule{Kind: l.Target, N: l.MinOps})
		}
	}
	for _, fp := range r.sc.Faults {
		f, err := nemesis.ByName(fp.Fault)
		if err != nil {
			continue // Validate refused it before anything ran
		}
		effectFor(f, r.spec).addOptions(&opts)
	}
	return opts
}

// reportFigures records the figures the checks measured for each fault
// (and the deltas built, for delta uploads).
func (r *run) reportFigures(rep *checker.Report) {
	for _, fp := range r.sc.Faults {
		f, err := nemesis.ByName(fp.Fault)
		if err != nil {
			continue
		}
		e := effectFor(f, r.spec)
		if conv, ok := rep.Result("convergence"); ok && e.ejectFigure != "" {
			r.Figure(e.ejectFigure, conv.Value("eject-max"), "s")
		}
		if ew, ok := rep.Result("error-window"); ok && e.failuresFigure != "" {
			r.Figure(e.failuresFigure, ew.Value("failures"), "ops")
		}
	}
	if u := r.sc.Uploads; u != nil && u.Delta {
		if d, ok := rep.Result("durability"); ok {
			r.Figure("delta-built-verified", d.Value("delta-built"), "packages")
		}
	}
}
