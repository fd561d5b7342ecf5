package runner

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/octoha/octoha/harness/checker"
	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/nemesis"
	"github.com/octoha/octoha/harness/scenario"
)

// effect is what a fault kind must visibly do, and within what bounds:
// the sequence waits for it with these bounds and the checks judge the
// whole run with the same ones, so the two cannot disagree.
type effect struct {
	// lbState is the victim's state on the load balancer once the fault
	// took hold ("OUT": anything but UP; "": the balancer need not act),
	// within eject; it is UP again within rejoin of the recovery.
	lbState        string
	eject, rejoin  time.Duration
	drainPing      time.Duration // a drain: the victim answers 418 within this
	minHold        time.Duration // from the injection
	served         bool          // the cluster keeps serving while the victim is out
	dbDown         bool          // every node and the balancer answer non-200 until recovered
	checkEject     time.Duration // the convergence check's bounds
	checkRejoin    time.Duration
	grace          time.Duration // the error-window check's grace
	ignore         []int         // and answers it tolerates
	ejectFigure    string
	failuresFigure string
}

// effectFor is the effect of a fault on a cluster of this spec. A fault
// on one link (nemesis.Net: "partition@share", "reset@lb") has no effect
// of its own, even when its kind names one: the expectations judge it.
func effectFor(f nemesis.Fault, spec cluster.Spec) effect {
	if _, link := f.(nemesis.Net); link {
		return effect{}
	}
	return effectOf(f.Name(), spec)
}

// effectOf is the effect of a preset fault kind on a cluster of this spec.
func effectOf(kind string, spec cluster.Spec) effect {
	hb := spec.Node.Heartbeat
	fall, rise := scenario.LBBound(spec, spec.LB.Fall), scenario.LBBound(spec, spec.LB.Rise)
	switch kind {
	case nemesis.KindDrain:
		// Held at least two ejection bounds, so that "no new requests" is
		// measured over a meaningful window; pings that reach the node
		// before it is ejected get its 418, which is what a drain looks
		// like through a load balancer.
		return effect{lbState: "OUT", eject: hb + fall, rejoin: hb + rise, drainPing: hb + time.Second, minHold: 2 * (hb + fall),
			checkEject: hb + fall, checkRejoin: hb + rise, ignore: []int{http.StatusTeapot}, ejectFigure: "eject-after-drain"}
	case nemesis.KindKill:
		// A retried upload may meet the package its first attempt stored.
		return effect{lbState: "DOWN", eject: fall, checkEject: fall, ignore: []int{http.StatusConflict},
			ejectFigure: "eject-after-kill", failuresFigure: "client-failures-during-kill"}
	case nemesis.KindPause, nemesis.KindPartition:
		// A node that stops answering without dying is ejected after
		// (fall+1) intervals: each check times out after one. A partition
		// heals through Toxiproxy, which takes a little longer.
		out := scenario.LBBound(spec, spec.LB.Fall+1)
		slack := time.Duration(0)
		if kind == nemesis.KindPartition {
			slack = 2 * time.Second
		}
		return effect{lbState: "DOWN", eject: out, rejoin: rise + slack, served: true,
			checkEject: out + 2*time.Second, checkRejoin: rise + time.Second + slack, grace: 3 * time.Second,
			failuresFigure: "client-failures-during-" + kind}
	case nemesis.KindDBOutage:
		return effect{dbDown: true, grace: 5 * time.Second, ignore: []int{http.StatusConflict}, failuresFigure: "client-failures-during-outage"}
	case nemesis.KindShare:
		return effect{grace: 5 * time.Second, ignore: []int{http.StatusConflict}}
	}
	return effect{}
}

// awaitEffect waits until the fault shows: the drained node's 418, the
// victim out of the load balancer, or every node without its database.
func (r *run) awaitEffect(ctx context.Context, e effect, kind, victim string, start time.Time) error {
	if e.drainPing > 0 {
		if err := scenario.Eventually(ctx, victim+" answers 418", e.drainPing, 20*time.Millisecond, scenario.PingIs(ctx, r.nodeURL(victim), http.StatusTeapot)); err != nil {
			return err
		}
	}
	if e.lbState != "" {
		if err := r.WaitLB(ctx, victim, e.lbState, e.eject); err != nil {
			return err
		}
		r.Figure(kind+"-to-lb-"+strings.ToLower(e.lbState), time.Since(start).Seconds(), "s")
	}
	if e.dbDown {
		return scenario.NodesGoUnhealthy(ctx, r, start, false, "db-down")
	}
	return nil
}

// hold keeps the fault on for hold (and at least the effect's minimum
// since the injection), checking what must hold meanwhile.
func (r *run) hold(ctx context.Context, e effect, victim string, start time.Time, hold time.Duration) error {
	rest := max(hold, time.Until(start.Add(e.minHold)))
	if rest <= 0 {
		return nil
	}
	switch {
	case e.drainPing > 0:
		return scenario.Consistently(ctx, victim+" stays drained", rest, 100*time.Millisecond, scenario.PingIs(ctx, r.nodeURL(victim), http.StatusTeapot))
	case e.served:
		return scenario.Consistently(ctx, "the cluster serves while "+victim+" is out", rest, 100*time.Millisecond, scenario.PingIs(ctx, r.c.URL(), http.StatusOK))
	}
	return scenario.Sleep(ctx, rest)
}

// settle waits after the recovery until the victim is back in the load
// balancer and serving, or the whole cluster serves again.
func (r *run) settle(ctx context.Context, e effect, victim string, recovered time.Time) error {
	if e.rejoin > 0 {
		if err := r.WaitLB(ctx, victim, "UP", e.rejoin); err != nil {
			return err
		}
		r.Figure("heal-to-lb-up", time.Since(recovered).Seconds(), "s")
		return r.ServesAgain(ctx, victim, recovered)
	}
	if e.dbDown {
		_, err := scenario.ClusterServesAgain(ctx, r, recovered, 30*time.Second, "db-up-to-cluster-serving")
		return err
	}
	return nil
}

// addOptions adds the effect's bounds and tolerated answers to the
// checks' options (the widest, when several faults ran).
func (e effect) addOptions(o *checker.Options) {
	o.Convergence.EjectWithin = max(o.Convergence.EjectWithin, e.checkEject)
	o.Convergence.RejoinWithin = max(o.Convergence.RejoinWithin, e.checkRejoin)
	o.ErrorWindow.Grace = max(o.ErrorWindow.Grace, e.grace)
	for _, s := range e.ignore {
		if !slices.Contains(o.ErrorWindow.IgnoreStatus, s) {
			o.ErrorWindow.IgnoreStatus = append(o.ErrorWindow.IgnoreStatus, s)
		}
	}
}

func (r *run) nodeURL(name string) string {
	for _, n := range r.c.Nodes() {
		if n.Name == name {
			return n.URL
		}
	}
	return ""
}
