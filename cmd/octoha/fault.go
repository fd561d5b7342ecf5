package main

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
	node     bool     // needs --node
	anyNode  bool     // takes --node or not
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

var faultActionOrder = []string{"kill", "pause", "resume", "stop", "restart", "start", "drain", "undrain", "db-stop", "db-start", "share-stop", "share-start", "heal"}

// lbSettle bounds how long fault waits, after injecting or recovering, for
// the load balancer to eject or readmit the node (recording what it sees).
const lbSettle = 30 * time.Second

// runFault injects or undoes one fault on a running local cluster and
// records it in the run directory's history. It is also what certification
// hooks call when a local cluster poses as a real one.
func runFault(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("fault", stderr)
	cf := addClusterFlags(fs)
	node := fs.String("node", "", "the node, e.g. Node2 (for node faults)")
	hold := fs.Duration("for", 0, "undo the fault after this long (at once on Ctrl-C); without it the fault stays until its recovery action")
	out := fs.String("out", "", "run directory shared with upload, attack and check: the fault is recorded in its "+historyFileName+" (default "+byHandRoot()+"/<cluster>-<owner pid>)")
	waitLB := fs.Bool("wait-lb", false, "after a recovery, wait (up to 30s) until the load balancer has the node UP again, recording its view, so check can time the readmission (an injection always waits for the ejection)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: octoha fault ACTION [--node NAME] [--for DURATION] [--wait-lb] [--name CLUSTER | --run-dir DIR] [--out DIR]\n\nACTION is one of: %s\n\n", strings.Join(faultActionOrder, ", "))
		fmt.Fprintln(stderr, faultUsage)
		fs.PrintDefaults()
	}
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fs.Usage()
		return fmt.Errorf("%w: an action is required (%s)", errUsage, strings.Join(faultActionOrder, ", "))
	}
	action := args[0]
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	act, ok := faultActions[action]
	if !ok {
		// A network fault: its spec is the action (see nemesis.ParseNet).
		nf, err := nemesis.ParseNet(action)
		if err != nil {
			return fmt.Errorf("%w: unknown action %q (want one of %s, or a network fault such as latency@db,latency=300ms: %v)", errUsage, action, strings.Join(faultActionOrder, ", "), err)
		}
		act, ok = faultAction{kind: nf.String(), node: nf.Targeted()}, true
	}
	if act.node && *node == "" {
		return fmt.Errorf("%w: %s needs --node", errUsage, action)
	}
	if !act.node && !act.anyNode && *node != "" {
		return fmt.Errorf("%w: %s takes no --node", errUsage, action)
	}
	if *hold < 0 || (*hold > 0 && act.kind == "") {
		return fmt.Errorf("%w: --for takes a positive duration and goes with an injecting action (kill, pause, stop, drain, db-stop, share-stop)", errUsage)
	}
	if err := local.Supported(); err != nil {
		return err
	}
	dir, err := cf.dir()
	if err != nil {
		return err
	}
	sc, err := local.Attach(dir)
	if err != nil {
		return err
	}
	st := sc.State()
	if act.node {
		if !slices.ContainsFunc(st.Nodes, func(n cluster.Node) bool { return n.Name == *node || n.ID == *node }) {
			return fmt.Errorf("%w: no node named %q in cluster %s", errUsage, *node, st.Name)
		}
	}
	if *out == "" {
		*out = defaultOutDir(st, *cf.name)
	}
	arts, err := openArtefacts(*out, "fault", st, history.Command{Labels: map[string]string{
		"action": action, "node": *node, "for": hold.String(),
	}}, false)
	if err != nil {
		return err
	}
	defer arts.close()
	env := nemesis.Env{Cluster: sc, Recorder: arts.rec, Logger: slog.New(slog.DiscardHandler)}
	w := cluster.NewLBWatcher(sc, arts.rec)
	_, _ = w.Sample(ctx) // the view before: the LB had the node UP when the fault began

	fr := &faultRun{action: action, node: *node, what: strings.TrimSpace(action + " " + *node), start: time.Now(),
		out: stdout, arts: arts, env: env, w: w, sc: sc, dir: dir}
	bound := 2 * time.Minute
	if *hold > 0 {
		bound += *hold
	}
	actx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	if act.kind != "" {
		return fr.inject(ctx, actx, act.kind, *hold)
	}
	return fr.recover(actx, act.recovers, *waitLB)
}

// faultUsage is octoha fault's help after its usage line.
const faultUsage = `kill, pause, stop (or restart), drain, db-stop and share-stop inject a fault into a cluster
started with octoha up; start, resume, undrain, db-start and share-start undo it (start waits
until the node answers its ping). Each fault is recorded with its window in the history of
--out, as the nemesis records it in scenarios (kinds kill, pause, restart, drain, db-outage,
share-outage), together with the load balancer's view of the nodes until it ejects the
node (and, after a recovery with --wait-lb, readmits it). With --for the fault undoes
itself after that long, and at once on Ctrl-C.

On a cluster started with octoha up --toxiproxy, ACTION may also be a network fault on one
link: KIND@LINK[,param=value…], KIND one of latency (latency=, jitter=), bandwidth (rate=,
e.g. 10MB/s), blackhole, reset, slow-close (after=) or partition; LINK one of client (no
--node), lb, db, share (the node's), or all (partition only). heal undoes them, e.g.
  octoha fault latency@db,latency=300ms,jitter=100ms --node Node1 --for 30s
  octoha fault partition@share --node Node2; octoha fault heal --node Node2

Flags:`

// faultRun is one octoha fault command under way: its history, its view of
// the load balancer and what it prints.
type faultRun struct {
	action, node, what string
	start              time.Time
	out                io.Writer
	arts               *artefacts
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
			fmt.Fprintf(fr.out, "%s: recorded as %s, %s → %s, in %s\n", fr.what, rec.ID, rec.Start.Format("15:04:05.000"), rec.End.Format("15:04:05.000"), fr.arts.historyPath())
		}
		if err != nil {
			return err
		}
		settle(context.WithoutCancel(actx), fr.w, fr.out, fr.node, true)
		return fr.arts.close()
	}
	inj, err := nemesis.Inject(actx, fr.env, f, fr.node)
	if err != nil {
		return err
	}
	rec := inj.Fault()
	fmt.Fprintf(fr.out, "%s: done in %s; recorded as %s in %s (open until octoha fault %s)\n", fr.what,
		time.Since(fr.start).Round(time.Millisecond), rec.ID, fr.arts.historyPath(), strings.TrimSpace(recoveryOf(fr.action)+" "+nodeFlag(fr.node)))
	if nf, ok := f.(nemesis.Net); ok && nf.Kind != nemesis.KindPartition {
		// A slow or lossy link need not take the node out: one look.
		_, _ = fr.w.Sample(actx)
		return fr.arts.close()
	}
	settle(actx, fr.w, fr.out, fr.node, false)
	return fr.arts.close()
}

// recover ends the fault a previous command left open, if any (else does
// the recovery action anyway), then looks at the balancer once, or waits
// for it to readmit the node with waitLB.
func (fr *faultRun) recover(actx context.Context, recovers []string, waitLB bool) error {
	h, err := history.Load(fr.arts.historyPath())
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
		rec := fr.arts.rec.FaultEnd(open, rerr)
		if rerr != nil {
			return fmt.Errorf("%s: %w (recorded as the failed recovery of %s)", fr.what, rerr, open.ID)
		}
		fmt.Fprintf(fr.out, "%s: done in %s; ended %s (%s, %s → %s) in %s\n", fr.what, time.Since(fr.start).Round(time.Millisecond),
			rec.ID, rec.Kind, rec.Start.Format("15:04:05.000"), rec.End.Format("15:04:05.000"), fr.arts.historyPath())
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
			strings.Join(recovers, "/"), fr.arts.historyPath())
	}
	if waitLB {
		settle(actx, fr.w, fr.out, fr.node, true)
	} else {
		// One look, not a wait: whoever called a recovery (a certify hook)
		// learns that it is over as soon as it is.
		_, _ = fr.w.Sample(actx)
	}
	return fr.arts.close()
}

// recoveryOf names the action that ends an injecting action's fault.
func recoveryOf(action string) string {
	if _, ok := faultActions[action]; !ok {
		return "heal" // a network fault
	}
	kind := faultActions[action].kind
	for _, a := range faultActionOrder {
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
