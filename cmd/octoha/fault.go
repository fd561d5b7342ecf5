package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/octoha/octoha/harness/checker"
	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/cluster/local"
	"github.com/octoha/octoha/harness/history"
	"github.com/octoha/octoha/harness/lb"
	"github.com/octoha/octoha/harness/nemesis"
	"github.com/octoha/octoha/services/toxiproxy"
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
		fmt.Fprintln(stderr, `kill, pause, stop (or restart), drain, db-stop and share-stop inject a fault into a cluster
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

Flags:`)
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
	st, err := local.ReadState(dir)
	if err != nil {
		return fmt.Errorf("no cluster in %s (start one with octoha up): %w", dir, err)
	}
	sc := stateCluster{st: st, dir: dir}
	if act.node {
		if !slices.ContainsFunc(st.Nodes, func(n cluster.Node) bool { return n.Name == *node || n.ID == *node }) {
			return fmt.Errorf("%w: no node named %q in cluster %s", errUsage, *node, st.Name)
		}
	}
	if act.kind == nemesis.KindDrain || slices.Contains(act.recovers, nemesis.KindDrain) {
		if sc.key, err = local.ReadAPIKey(dir); err != nil {
			return err
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
	w := &lbWatch{sc: sc, rec: arts.rec, last: map[string]lb.State{}, out: stdout}
	w.sample(ctx) // the view before: the LB had the node UP when the fault began

	what := strings.TrimSpace(action + " " + *node)
	start := time.Now()
	bound := 2 * time.Minute
	if *hold > 0 {
		bound += *hold
	}
	actx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()

	if act.kind != "" {
		f, err := nemesis.ByName(act.kind)
		if err != nil {
			return err
		}
		if *hold > 0 {
			// The LB's view is watched for the whole window.
			wctx, stopWatch := context.WithCancel(actx)
			watched := make(chan struct{})
			go func() { defer close(watched); w.watch(wctx) }()
			fmt.Fprintf(stdout, "%s for %s (Ctrl-C undoes it at once)\n", what, *hold)
			rec, err := nemesis.Hold(actx, env, f, *node, *hold)
			stopWatch()
			<-watched
			if ctx.Err() != nil && rec.ID != "" {
				fmt.Fprintf(stdout, "%s: interrupted, undone after %s of %s\n", what, rec.End.Sub(rec.Start).Round(time.Millisecond), *hold)
			}
			if rec.ID != "" {
				fmt.Fprintf(stdout, "%s: recorded as %s, %s → %s, in %s\n", what, rec.ID, rec.Start.Format("15:04:05.000"), rec.End.Format("15:04:05.000"), arts.historyPath())
			}
			if err != nil {
				return err
			}
			w.settle(context.WithoutCancel(actx), *node, true)
			return arts.close()
		}
		inj, err := nemesis.Inject(actx, env, f, *node)
		if err != nil {
			return err
		}
		rec := inj.Fault()
		fmt.Fprintf(stdout, "%s: done in %s; recorded as %s in %s (open until octoha fault %s)\n", what,
			time.Since(start).Round(time.Millisecond), rec.ID, arts.historyPath(), strings.TrimSpace(recoveryOf(action)+" "+nodeFlag(*node)))
		if nf, ok := f.(nemesis.Net); ok && nf.Kind != nemesis.KindPartition {
			// A slow or lossy link need not take the node out: one look.
			w.sample(actx)
			return arts.close()
		}
		w.settle(actx, *node, false)
		return arts.close()
	}

	// A recovery: end the fault a previous command left open, if any.
	h, err := history.Load(arts.historyPath())
	if err != nil {
		return err
	}
	if open, ok := h.OpenFault(*node, act.recovers...); ok {
		spec := open.Kind
		if nemesis.IsNetwork(open.Kind) && open.Detail != "" {
			spec = open.Detail // which link, and which toxics
		}
		f, err := nemesis.ByName(spec)
		if err != nil {
			return err
		}
		rerr := f.Recover(actx, env, *node)
		rec := arts.rec.FaultEnd(open, rerr)
		if rerr != nil {
			return fmt.Errorf("%s: %w (recorded as the failed recovery of %s)", what, rerr, open.ID)
		}
		fmt.Fprintf(stdout, "%s: done in %s; ended %s (%s, %s → %s) in %s\n", what, time.Since(start).Round(time.Millisecond),
			rec.ID, rec.Kind, rec.Start.Format("15:04:05.000"), rec.End.Format("15:04:05.000"), arts.historyPath())
	} else {
		switch action {
		case "undrain":
			err = nemesis.SetMaintenance(actx, env, *node, false)
		case "heal":
			err = sc.heal(actx, *node)
		default:
			err = local.Control(actx, dir, action, *node)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: done in %s (no open %s fault in %s to end)\n", what, time.Since(start).Round(time.Millisecond),
			strings.Join(act.recovers, "/"), arts.historyPath())
	}
	if *waitLB {
		w.settle(actx, *node, true)
	} else {
		// One look, not a wait: whoever called a recovery (a certify hook)
		// learns that it is over as soon as it is.
		w.sample(actx)
	}
	return arts.close()
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

// lbWatch records the load balancer's view of every node into the history
// (each change, as cluster.WatchLB does in scenarios), so that check can
// time ejection and readmission of faults done by hand.
type lbWatch struct {
	sc   stateCluster
	rec  *history.Recorder
	last map[string]lb.State
	out  io.Writer
	bad  bool // the LB's view cannot be read (e.g. the embedded LB)
}

func (w *lbWatch) sample(ctx context.Context) []lb.ServerState {
	if w.bad {
		return nil
	}
	states, err := w.sc.LBStates(ctx)
	if err != nil {
		w.bad = true
		return nil
	}
	now := time.Now()
	for _, s := range states {
		if s.State == lb.StateUnknown {
			continue
		}
		if w.last[s.Name] != s.State {
			w.last[s.Name] = s.State
			w.rec.LB(history.LBState{Time: now, Server: s.Name, State: string(s.State), Detail: s.Check})
		}
	}
	return states
}

// watch samples until ctx is done.
func (w *lbWatch) watch(ctx context.Context) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		w.sample(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// settle samples until the LB has node (every node when node is "") in
// the wanted state — serving when up, out of rotation otherwise — or
// lbSettle passes, and says which.
func (w *lbWatch) settle(ctx context.Context, node string, up bool) {
	if w.bad {
		return
	}
	if node == "" && !up {
		return // a database or share outage need not take nodes out
	}
	ctx, cancel := context.WithTimeout(ctx, lbSettle)
	defer cancel()
	start := time.Now()
	want := "out of rotation"
	if up {
		want = "UP"
	}
	for {
		states := w.sample(ctx)
		if w.bad {
			return
		}
		done, which := true, []string{}
		for _, s := range states {
			if node != "" && s.Name != node {
				continue
			}
			if s.State == lb.StateUnknown {
				return // this balancer's view is not observable
			}
			which = append(which, s.Name+" "+string(s.State))
			if checker.IsUp(string(s.State)) != up || (up && strings.HasPrefix(s.Check, "INI")) {
				done = false
			}
		}
		if done {
			fmt.Fprintf(w.out, "load balancer: %s (%s after)\n", strings.Join(which, ", "), time.Since(start).Round(time.Millisecond))
			return
		}
		select {
		case <-ctx.Done():
			fmt.Fprintf(w.out, "load balancer: %s, not yet %s after %s\n", strings.Join(which, ", "), want, lbSettle)
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stateCluster is a running local cluster seen through its state file:
// enough of cluster.Cluster for the nemesis, its faults carried out by the
// cluster's owner over the control socket.
type stateCluster struct {
	st  *local.State
	dir string
	key string
}

var (
	_ cluster.NodeController     = stateCluster{}
	_ cluster.DatabaseController = stateCluster{}
	_ cluster.ShareController    = stateCluster{}
	_ cluster.NetworkController  = stateCluster{}
)

// Toxiproxy implements cluster.NetworkController: its API is reached
// directly, on the unix socket the state file names (the cluster's owner's
// alone).
func (s stateCluster) Toxiproxy() *toxiproxy.Client {
	if !s.st.Spec.Toxiproxy || s.st.ToxiproxySocket == "" {
		return nil
	}
	return toxiproxy.NewUnixClient(s.st.ToxiproxySocket)
}

// heal removes every octoha toxic and enables every link of node (every
// link of the cluster when node is ""), whatever the history says.
func (s stateCluster) heal(ctx context.Context, node string) error {
	tp := s.Toxiproxy()
	if tp == nil {
		return errors.New("the cluster's links do not go through Toxiproxy (octoha up --toxiproxy)")
	}
	links, err := tp.Links(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, l := range links {
		if node != "" && !strings.Contains("-"+l.Name+"-", "-"+node+"-") {
			continue
		}
		for _, t := range l.Toxics {
			if strings.HasPrefix(t.Name, "octoha-") {
				errs = append(errs, tp.RemoveToxic(ctx, l.Name, t.Name))
			}
		}
		errs = append(errs, tp.SetEnabled(ctx, l.Name, true))
	}
	return errors.Join(errs...)
}

func (s stateCluster) Spec() cluster.Spec    { return s.st.Spec }
func (s stateCluster) URL() string           { return s.st.LBURL }
func (s stateCluster) Nodes() []cluster.Node { return s.st.Nodes }
func (s stateCluster) APIKey() string        { return s.key }
func (s stateCluster) LBStates(ctx context.Context) ([]lb.ServerState, error) {
	names := make([]string, len(s.st.Nodes))
	for i, n := range s.st.Nodes {
		names[i] = n.Name
	}
	return lb.ReadStates(ctx, lb.Kind(s.st.LBKind), filepath.Clean(s.st.LBDir), names)
}
func (s stateCluster) Components() []cluster.Component { return s.st.Components }
func (s stateCluster) Down(context.Context) error      { return nil }
func (s stateCluster) Can(cp cluster.Capability) error {
	switch cp {
	case cluster.CapKill, cluster.CapPause, cluster.CapRestart, cluster.CapDrain:
		return nil
	case cluster.CapDBOutage:
		if s.st.Spec.DB.Kind != cluster.DBPostgres {
			return fmt.Errorf("the database is %s (embedded): database outages need octoha up --db postgres", s.st.Spec.DB.Kind)
		}
		return nil
	case cluster.CapShareOutage:
		if s.st.Spec.Storage.Kind != cluster.StorageSMB {
			return fmt.Errorf("the share is a local directory (embedded): share outages need octoha up --storage smb")
		}
		return nil
	case cluster.CapNetwork, cluster.CapPartition:
		if !s.st.Spec.Toxiproxy {
			return fmt.Errorf("%s faults need the cluster's links through Toxiproxy: octoha up --toxiproxy", cp)
		}
		return nil
	}
	return fmt.Errorf("octoha fault cannot do %s on a local cluster", cp)
}

func (s stateCluster) control(ctx context.Context, action, node string) error {
	return local.Control(ctx, s.dir, action, node)
}

func (s stateCluster) KillNode(ctx context.Context, n string) error {
	return s.control(ctx, local.ActionKill, n)
}
func (s stateCluster) PauseNode(ctx context.Context, n string) error {
	return s.control(ctx, local.ActionPause, n)
}
func (s stateCluster) ResumeNode(ctx context.Context, n string) error {
	return s.control(ctx, local.ActionResume, n)
}
func (s stateCluster) StopNode(ctx context.Context, n string) error {
	return s.control(ctx, local.ActionStop, n)
}
func (s stateCluster) StartNode(ctx context.Context, n string) error {
	return s.control(ctx, local.ActionStart, n)
}
func (s stateCluster) StopDatabase(ctx context.Context) error {
	return s.control(ctx, local.ActionDBStop, "")
}
func (s stateCluster) StartDatabase(ctx context.Context) error {
	return s.control(ctx, local.ActionDBStart, "")
}
func (s stateCluster) StopShare(ctx context.Context) error {
	return s.control(ctx, local.ActionShareStop, "")
}
func (s stateCluster) StartShare(ctx context.Context) error {
	return s.control(ctx, local.ActionShareStart, "")
}
