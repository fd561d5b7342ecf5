package byhand

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/cluster/local"
	"github.com/octoha/octoha/harness/history"
	"github.com/octoha/octoha/harness/nemesis"
)

// faultAction is one `octoha fault` action: the injection of a nemesis
// fault kind, or the recovery of one or more kinds.
type faultAction struct {
	kind     string   // the fault it injects ("" for a recovery)
	recovers []string // the fault kinds it ends (a recovery)
	node     bool     // needs a node
	anyNode  bool     // takes a node or not
}

// faultActions maps the actions to the nemesis's fault kinds, so a fault
// done by hand is recorded exactly as the nemesis records it in scenarios.
var faultActions = map[string]faultAction{
	local.ActionKill:       {kind: nemesis.KindKill, node: true},
	local.ActionPause:      {kind: nemesis.KindPause, node: true},
	local.ActionStop:       {kind: nemesis.KindRestart, node: true},
	"restart":              {kind: nemesis.KindRestart, node: true},
	"drain":                {kind: nemesis.KindDrain, node: true},
	local.ActionDBStop:     {kind: nemesis.KindDBOutage},
	local.ActionShareStop:  {kind: nemesis.KindShare},
	local.ActionStart:      {recovers: []string{nemesis.KindKill, nemesis.KindRestart}, node: true},
	local.ActionResume:     {recovers: []string{nemesis.KindPause}, node: true},
	"undrain":              {recovers: []string{nemesis.KindDrain}, node: true},
	local.ActionDBStart:    {recovers: []string{nemesis.KindDBOutage}},
	local.ActionShareStart: {recovers: []string{nemesis.KindShare}},
	"heal":                 {recovers: append([]string{nemesis.KindPartition}, nemesis.NetworkKinds...), anyNode: true},
}

// FaultActions are the named actions of Fault, in the order help lists
// them; a network fault's spec (latency@db,…) is an action too.
var FaultActions = []string{"kill", "pause", "resume", "stop", "restart", "start", "drain", "undrain", "db-stop", "db-start", "share-stop", "share-start", "heal"}

// lbSettle bounds how long a fault waits, after injecting or recovering,
// for the load balancer to eject or readmit the node (recording what it
// sees).
const lbSettle = 30 * time.Second

// FaultOptions are one by-hand fault: what to do, to which node of which
// cluster, and where to record it.
type FaultOptions struct {
	// Action is one of FaultActions or a network fault (nemesis.ParseNet).
	Action string
	// Node is the node, by name or ID, for the actions that take one.
	Node string
	// Hold undoes an injected fault after this long (at once when ctx is
	// interrupted); 0 leaves it open until its recovery action.
	Hold time.Duration
	// WaitLB waits, after a recovery, until the balancer has the node UP.
	WaitLB bool
	// RunDir is the cluster's run directory; Name the cluster's name as
	// given (for the default output directory).
	RunDir, Name string
	// Out is the output directory whose history records the fault (""
	// DefaultOutDir).
	Out string
	// Print receives one line per thing done or seen.
	Print io.Writer
}

// resolve checks the action and its node against the table.
func (o FaultOptions) resolve() (faultAction, error) {
	act, ok := faultActions[o.Action]
	if !ok {
		// A network fault: its spec is the action (see nemesis.ParseNet).
		nf, err := nemesis.ParseNet(o.Action)
		if err != nil {
			return act, fmt.Errorf("%w: unknown action %q (want one of %s, or a network fault such as latency@db,latency=300ms: %v)", ErrUsage, o.Action, strings.Join(FaultActions, ", "), err)
		}
		act = faultAction{kind: nf.String(), node: nf.Targeted()}
	}
	if act.node && o.Node == "" {
		return act, fmt.Errorf("%w: %s needs --node", ErrUsage, o.Action)
	}
	if !act.node && !act.anyNode && o.Node != "" {
		return act, fmt.Errorf("%w: %s takes no --node", ErrUsage, o.Action)
	}
	if o.Hold < 0 || (o.Hold > 0 && act.kind == "") {
		return act, fmt.Errorf("%w: --for takes a positive duration and goes with an injecting action (kill, pause, stop, drain, db-stop, share-stop)", ErrUsage)
	}
	return act, nil
}

// Fault injects or undoes one fault on a running local cluster and records
// it in the output directory's history, with the load balancer's view. It
// is also what certification hooks call when a local cluster poses as a
// real one.
func Fault(ctx context.Context, o FaultOptions) error {
	act, err := o.resolve()
	if err != nil {
		return err
	}
	if err := local.Supported(); err != nil {
		return err
	}
	sc, err := local.Attach(o.RunDir)
	if err != nil {
		return err
	}
	st := sc.State()
	if act.node && !slices.ContainsFunc(st.Nodes, func(n cluster.Node) bool { return n.Name == o.Node || n.ID == o.Node }) {
		return fmt.Errorf("%w: no node named %q in cluster %s", ErrUsage, o.Node, st.Name)
	}
	if o.Out == "" {
		o.Out = DefaultOutDir(st, o.Name)
	}
	arts, err := Open(o.Out, "fault", st, history.Command{Labels: map[string]string{
		"action": o.Action, "node": o.Node, "for": o.Hold.String(),
	}}, false)
	if err != nil {
		return err
	}
	defer arts.Close()
	env := nemesis.Env{Cluster: sc, Recorder: arts.Rec, Logger: slog.New(slog.DiscardHandler)}
	w := cluster.NewLBWatcher(sc, arts.Rec)
	_, _ = w.Sample(ctx) // the view before: the LB had the node UP when the fault began

	fr := &faultRun{action: o.Action, node: o.Node, what: strings.TrimSpace(o.Action + " " + o.Node), start: time.Now(),
		out: o.Print, arts: arts, env: env, w: w, sc: sc, dir: o.RunDir}
	bound := 2 * time.Minute
	if o.Hold > 0 {
		bound += o.Hold
	}
	actx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	if act.kind != "" {
		return fr.inject(ctx, actx, act.kind, o.Hold)
	}
	return fr.recover(actx, act.recovers, o.WaitLB)
}

// faultRun is one by-hand fault under way: its history, its view of the
// load balancer and what it prints.
type faultRun struct {
	action, node, what string
	start              time.Time
	out                io.Writer
	arts               *Artefacts
	env                nemesis.Env
	w                  *cluster.LBWatcher
	sc                 *local.Attached
	dir                string
}

// inject injects the fault kind and waits for the balancer to eject the
// node; with hold, it undoes the fault after that long (at once when ctx,
// the command's own context, is interrupted).
func (fr *faultRun) inject(ctx, actx context.Context, kind string, hold time.Duration) error {
	f, err := nemesis.ByName(kind)
	if err != nil {
		return err
	}
	if hold > 0 {
		// The LB's view is watched for the whole window.
		wctx, stopWatch := context.WithCancel(actx)
		watched := make(chan struct{})
		go func() { defer close(watched); fr.w.Watch(wctx, 100*time.Millisecond) }()
		fmt.Fprintf(fr.out, "%s for %s (Ctrl-C undoes it at once)\n", fr.what, hold)
		rec, err := nemesis.Hold(actx, fr.env, f, fr.node, hold)
		stopWatch()
		<-watched
		if ctx.Err() != nil && rec.ID != "" {
			fmt.Fprintf(fr.out, "%s: interrupted, undone after %s of %s\n", fr.what, rec.End.Sub(rec.Start).Round(time.Millisecond), hold)
		}
		if rec.ID != "" {
			fmt.Fprintf(fr.out, "%s: recorded as %s, %s → %s, in %s\n", fr.what, rec.ID, rec.Start.Format("15:04:05.000"), rec.End.Format("15:04:05.000"), fr.arts.HistoryPath())
		}
		if err != nil {
			return err
		}
		settle(context.WithoutCancel(actx), fr.w, fr.out, fr.node, true)
		return fr.arts.Close()
	}
	inj, err := nemesis.Inject(actx, fr.env, f, fr.node)
	if err != nil {
		return err
	}
	rec := inj.Fault()
	fmt.Fprintf(fr.out, "%s: done in %s; recorded as %s in %s (open until octoha fault %s)\n", fr.what,
		time.Since(fr.start).Round(time.Millisecond), rec.ID, fr.arts.HistoryPath(), strings.TrimSpace(recoveryOf(fr.action)+" "+nodeFlag(fr.node)))
	if nf, ok := f.(nemesis.Net); ok && nf.Kind != nemesis.KindPartition {
		// A slow or lossy link need not take the node out: one look.
		_, _ = fr.w.Sample(actx)
		return fr.arts.Close()
	}
	settle(actx, fr.w, fr.out, fr.node, false)
	return fr.arts.Close()
}

// recover ends the fault a previous command left open, if any (else does
// the recovery action anyway), then looks at the balancer once, or waits
// for it to readmit the node with waitLB.
func (fr *faultRun) recover(actx context.Context, recovers []string, waitLB bool) error {
	h, err := history.Load(fr.arts.HistoryPath())
	if err != nil {
		return err
	}
	if open, ok := h.OpenFault(fr.node, recovers...); ok {
		spec := open.Kind
		if nemesis.IsNetwork(open.Kind) && open.Detail != "" {
			spec = open.Detail // which link, and which toxics
		}
		f, err := nemesis.ByName(spec)
		if err != nil {
			return err
		}
		rerr := f.Recover(actx, fr.env, fr.node)
		rec := fr.arts.Rec.FaultEnd(open, rerr)
		if rerr != nil {
			return fmt.Errorf("%s: %w (recorded as the failed recovery of %s)", fr.what, rerr, open.ID)
		}
		fmt.Fprintf(fr.out, "%s: done in %s; ended %s (%s, %s → %s) in %s\n", fr.what, time.Since(fr.start).Round(time.Millisecond),
			rec.ID, rec.Kind, rec.Start.Format("15:04:05.000"), rec.End.Format("15:04:05.000"), fr.arts.HistoryPath())
	} else {
		switch fr.action {
		case "undrain":
			err = nemesis.SetMaintenance(actx, fr.env, fr.node, false)
		case "heal":
			err = nemesis.Heal(actx, fr.sc, fr.node)
		default:
			err = local.Control(actx, fr.dir, fr.action, fr.node)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(fr.out, "%s: done in %s (no open %s fault in %s to end)\n", fr.what, time.Since(fr.start).Round(time.Millisecond),
			strings.Join(recovers, "/"), fr.arts.HistoryPath())
	}
	if waitLB {
		settle(actx, fr.w, fr.out, fr.node, true)
	} else {
		// One look, not a wait: whoever called a recovery (a certify hook)
		// learns that it is over as soon as it is.
		_, _ = fr.w.Sample(actx)
	}
	return fr.arts.Close()
}

// recoveryOf names the action that ends an injecting action's fault.
func recoveryOf(action string) string {
	if _, ok := faultActions[action]; !ok {
		return "heal" // a network fault
	}
	kind := faultActions[action].kind
	for _, a := range FaultActions {
		if slices.Contains(faultActions[a].recovers, kind) {
			return a
		}
	}
	return ""
}

func nodeFlag(node string) string {
	if node == "" {
		return ""
	}
	return "--node " + node
}

// settle waits (up to lbSettle) until the load balancer has node in or out
// of service, recording its view, and prints what it saw; a database or
// share outage need not take nodes out, so it is not waited for.
func settle(ctx context.Context, w *cluster.LBWatcher, out io.Writer, node string, up bool) {
	if node == "" && !up {
		return
	}
	if seen, settled := w.Settle(ctx, node, up, lbSettle); settled || strings.Contains(seen, "not yet") {
		fmt.Fprintf(out, "load balancer: %s\n", seen)
	}
}
