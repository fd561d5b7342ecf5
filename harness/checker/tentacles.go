package checker

import (
	"fmt"
	"sort"
	"time"

	"github.com/octoha/octoha/harness/history"
)

// Op kinds of harness/tentacle (repeated: the checker reads histories,
// not the fleet).
const (
	kindTentacleTask   = "tentacle-task"
	kindTentaclePickup = "tentacle-pickup"
	kindTentacleLost   = "tentacle-task-lost"
)

// FindingUnpolled names Tentacle requests not picked up within the bound:
// some node is not polled in time.
var FindingUnpolled = Finding{"unpolled", "a Tentacle request waited on a node its Tentacle did not poll in time: polling Tentacles must poll every node — give each its own address (same port) or its own port on the load balancer, never one balanced endpoint (the seed)"}

// TentacleOptions bounds pickups.
type TentacleOptions struct {
	// Within is the longest a request may wait on its node before a
	// Tentacle picks it up: the poll interval plus a bound.
	Within time.Duration
}

// Tentacles checks that every task queued for a Tentacle was picked up
// within the bound (tasks whose node died holding them excused), and
// reports the pickup delays (request created on its node → picked up).
func Tentacles(h *history.History, o TentacleOptions) Result {
	r := Result{Name: "tentacles"}
	var ev evidence
	queued := map[string]history.Op{}
	picked := map[string]history.Op{}
	lost := map[string]history.Op{}
	for _, op := range h.Ops {
		switch {
		case op.Kind == kindTentacleTask && op.Outcome == history.OK:
			queued[op.ID] = op
		case op.Kind == kindTentaclePickup:
			if _, dup := picked[op.ID]; dup {
				ev.problem("task %s picked up twice (again by %s on %s)", op.ID, op.Client, op.Node)
			}
			picked[op.ID] = op
		case op.Kind == kindTentacleLost:
			lost[op.ID] = op
		}
	}
	if len(queued) == 0 {
		r.Status, r.Summary = Fail, "no task was queued for a Tentacle: nothing to judge"
		return r
	}
	ids := make([]string, 0, len(queued))
	for id := range queued {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var delays []time.Duration
	missing, late, excused := 0, 0, 0
	for _, id := range ids {
		q := queued[id]
		p, ok := picked[id]
		switch {
		case ok:
			d := p.End.Sub(p.Start)
			delays = append(delays, d)
			if d > o.Within {
				late++
				ev.problem("%s for %s waited %s on %s before a poll picked it up (bound %s)", id, q.Client, fmtDur(d), p.Node, fmtDur(o.Within))
			}
		case lost[id].ID != "":
			excused++
			ev.note("%s for %s was lost with its node %s: %s", id, q.Client, lost[id].Node, lost[id].Note)
		default:
			missing++
			ev.problem("%s for %s was never picked up", id, q.Client)
		}
	}
	sort.Slice(delays, func(i, j int) bool { return delays[i] < delays[j] })
	pct := func(p float64) float64 {
		if len(delays) == 0 {
			return 0
		}
		return delays[min(len(delays)-1, int(p*float64(len(delays))))].Seconds()
	}
	r.Figures = []Figure{
		{Name: "queued", Value: float64(len(queued)), Unit: "count"},
		{Name: "picked-up", Value: float64(len(delays)), Unit: "count"},
		{Name: "lost-with-node", Value: float64(excused), Unit: "count"},
		{Name: "pickup-p50", Value: pct(0.5), Unit: "s"},
		{Name: "pickup-p95", Value: pct(0.95), Unit: "s"},
		{Name: "pickup-max", Value: pct(1), Unit: "s"},
		{Name: FindingUnpolled.Name, Value: float64(missing + late), Unit: "count"},
	}
	seen := fmt.Sprintf("%d requests: %d picked up (p50 %.3fs, p95 %.3fs, max %.3fs), %d lost with their node, %d never picked up, %d later than %s",
		len(queued), len(delays), pct(0.5), pct(0.95), pct(1), excused, missing, late, fmtDur(o.Within))
	if missing+late > 0 || len(ev.problems) > 0 {
		r.Status, r.Summary = Fail, seen+": cause "+FindingUnpolled.Explanation
	} else {
		r.Status, r.Summary = Pass, seen
	}
	r.Evidence = ev.lines()
	return r
}
