package reports

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/octoha/octoha/harness/checker"
	"github.com/octoha/octoha/harness/history"
)

// Colours of task end states, shared with the legend.
var taskColour = map[string]string{
	history.TaskSuccess:  "#2f9e44",
	history.TaskFailed:   "#e03131",
	history.TaskCanceled: "#868e96",
	history.TaskTimedOut: "#f59f00",
}

const (
	taskLaneH   = 70.0
	leaderColor = "#7048e8"
)

// step is a value from a time on.
type step struct {
	at time.Time
	v  int
}

// taskLane is one node's task activity.
type taskLane struct {
	name    string
	running []step // executing tasks, from the tasks' start and end times
	caps    []step // its task cap, from the node lists
	leader  []step // 1 while a node list showed it leading
	ends    []history.TaskView
}

// tasksPlot draws the server task queue: the queued tasks of the cluster
// in one lane, then per node its executing tasks (area), its task cap
// (dashed line), each task it finished (a tick coloured by end state) and
// a strip while it was the leader; fault windows shaded as in the
// timeline. Nil when the history holds no task ops.
func tasksPlot(l *loaded) *plotInfo {
	h := l.History
	m := checker.NewTaskModel(h)
	lanes, queued, observedRanks := taskLanes(h, m)
	if len(m.IDs) == 0 && len(lanes) == 0 {
		return nil
	}
	a := newTimeAxis(l.base(), l.finish())
	rows, nrows := faultLabelRows(a, h.Faults)
	top := float64(nrows)*faultRowH + 4
	height := top + float64(len(lanes)+1)*taskLaneH + axisH
	bot := height - axisH
	// The queue and the nodes have their own scales: a queue of hundreds
	// would flatten a node's few slots.
	qPeak, nPeak := 1, 1
	for _, s := range queued {
		qPeak = max(qPeak, s.v)
	}
	for _, ln := range lanes {
		for _, s := range append(append([]step{}, ln.running...), ln.caps...) {
			nPeak = max(nPeak, s.v)
		}
	}
	qmax, ymax := niceCeil(float64(qPeak)), niceCeil(float64(nPeak))
	var w svgw
	a.open(&w, height, "task queue of "+l.Name)
	info := &plotInfo{}
	laneY := func(i int) float64 { return top + float64(i)*taskLaneH }
	for i := 0; i <= len(lanes); i++ {
		if i%2 == 0 {
			w.p(`<rect class="lane-bg" x="0" y="%s" width="%s" height="%s"/>`, num(laneY(i)), num(plotW), num(taskLaneH))
		}
	}
	faultBands(&w, a, h.Faults, top, bot)
	// The queue lane.
	qTop, qBot := laneY(0)+8, laneY(0)+taskLaneH-8
	w.p(`<text class="lane-name" x="8" y="%s">queued</text>`, num(laneY(0)+18))
	w.p(`<text class="lane-count" x="8" y="%s">%d tasks created</text>`, num(laneY(0)+33), len(m.IDs))
	taskAxis(&w, a, qTop, qBot, qmax)
	stepArea(&w, a, queued, qTop, qBot, qmax, "task-queued", "queued")
	for i, ln := range lanes {
		y0 := laneY(i + 1)
		pTop, pBot := y0+8, y0+taskLaneH-stripH-10
		w.p(`<text class="lane-name" x="8" y="%s">%s</text>`, num(y0+18), esc(Scrub(ln.name)))
		w.p(`<text class="lane-count" x="8" y="%s">%d tasks ended here</text>`, num(y0+33), len(ln.ends))
		taskAxis(&w, a, pTop, pBot, ymax)
		stepArea(&w, a, ln.running, pTop, pBot, ymax, "task-running", "executing on "+ln.name)
		capLine(&w, a, ln.caps, pTop, pBot, ymax, ln.name)
		for _, v := range ln.ends {
			x := a.x(*v.CompletedTime)
			c := taskColour[v.State]
			if c == "" {
				c = "#495057"
			}
			title := fmt.Sprintf("%s %s on %s at t+%.3fs", v.ID, v.State, ln.name, v.CompletedTime.Sub(a.base).Seconds())
			if v.Error != "" {
				title += ": " + v.Error
			}
			w.p(`<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s" stroke-width="1.5"><title>%s</title></line>`, num(x), num(pBot-6), num(x), num(pBot), c, esc(Scrub(title)))
		}
		ys := y0 + taskLaneH - stripH - 4
		w.p(`<text class="tick" x="%s" y="%s" text-anchor="end">leader</text>`, num(a.x0-6), num(ys+stripH-2))
		if !observedRanks {
			w.p(`<rect class="strip-none" x="%s" y="%s" width="%s" height="%s"><title>no rank observed</title></rect>`, num(a.x0), num(ys), num(a.x1-a.x0), num(stripH))
			continue
		}
		for j, s := range ln.leader {
			if s.v == 0 {
				continue
			}
			x0, x1 := a.x(s.at), a.x1
			end := "the end"
			if j+1 < len(ln.leader) {
				x1 = a.x(ln.leader[j+1].at)
				end = fmt.Sprintf("t+%.3fs", ln.leader[j+1].at.Sub(a.base).Seconds())
			}
			w.p(`<rect x="%s" y="%s" width="%s" height="%s" fill="%s"><title>%s</title></rect>`, num(x0), num(ys), num(math.Max(x1-x0, 1)), num(stripH), leaderColor,
				esc(Scrub(fmt.Sprintf("%s leader from t+%.3fs to %s", ln.name, s.at.Sub(a.base).Seconds(), end))))
		}
	}
	faultLabels(&w, a, h.Faults, rows, 0)
	a.ticks(&w, top, bot)
	w.p(`</svg>`)
	if !observedRanks {
		info.Notes = append(info.Notes, "no node list showed a rank: the leader strips are empty")
	}
	info.SVG = w.String()
	return info
}

// taskAxis labels a lane's y axis 0 and ymax.
func taskAxis(w *svgw, a timeAxis, top, bot, ymax float64) {
	w.p(`<line class="grid" x1="%s" y1="%s" x2="%s" y2="%s"/>`, num(a.x0), num(top), num(a.x1), num(top))
	w.p(`<text class="tick" x="%s" y="%s" text-anchor="end">%s</text>`, num(a.x0-6), num(top+3), esc(fmt.Sprint(ymax)))
	w.p(`<text class="tick" x="%s" y="%s" text-anchor="end">0</text>`, num(a.x0-6), num(bot+3))
}

// stepArea fills a step function from each change to the next.
func stepArea(w *svgw, a timeAxis, ss []step, top, bot, ymax float64, class, what string) {
	if len(ss) == 0 {
		return
	}
	y := func(v int) float64 { return bot - float64(v)/ymax*(bot-top) }
	var b strings.Builder
	b.WriteString("M" + num(a.x(ss[0].at)) + " " + num(bot))
	peak := 0
	for i, s := range ss {
		x1 := a.x1
		if i+1 < len(ss) {
			x1 = a.x(ss[i+1].at)
		}
		b.WriteString("L" + num(a.x(s.at)) + " " + num(y(s.v)) + "L" + num(x1) + " " + num(y(s.v)))
		peak = max(peak, s.v)
	}
	b.WriteString("L" + num(a.x1) + " " + num(bot) + "Z")
	w.p(`<path class="%s" d="%s"><title>%s (at most %d at once)</title></path>`, class, b.String(), esc(Scrub(what)), peak)
}

// capLine draws a node's task cap as a dashed step line.
func capLine(w *svgw, a timeAxis, cs []step, top, bot, ymax float64, node string) {
	if len(cs) == 0 {
		return
	}
	y := func(v int) float64 { return bot - math.Min(float64(v)/ymax, 1)*(bot-top) }
	var b strings.Builder
	for i, s := range cs {
		x0 := a.x(s.at)
		if i == 0 {
			x0 = a.x0 // the first cap seen held from the start
			b.WriteString("M" + num(x0) + " " + num(y(s.v)))
		} else {
			b.WriteString("L" + num(x0) + " " + num(y(s.v)))
		}
		x1 := a.x1
		if i+1 < len(cs) {
			x1 = a.x(cs[i+1].at)
		}
		b.WriteString("L" + num(x1) + " " + num(y(s.v)))
	}
	var caps []string
	for _, s := range cs {
		caps = append(caps, fmt.Sprint(s.v))
	}
	w.p(`<path class="task-cap" d="%s"><title>%s</title></path>`, b.String(), esc(Scrub(fmt.Sprintf("%s's task cap: %s", node, strings.Join(caps, " → ")))))
}

// taskLanes builds one lane per node seen in node lists or as a task's
// node, the cluster's queued tasks over time, and whether any rank was
// seen.
func taskLanes(h *history.History, m *checker.TaskModel) ([]*taskLane, []step, bool) {
	byName := map[string]*taskLane{}
	get := func(n string) *taskLane {
		if byName[n] == nil {
			byName[n] = &taskLane{name: n}
		}
		return byName[n]
	}
	type edge struct {
		at time.Time
		d  int
	}
	var qEdges []edge
	running := map[string][]edge{}
	for _, id := range m.IDs {
		v, ok := m.Final[id]
		queuedAt := m.Created[id].End
		if ok && v.QueueTime != nil {
			queuedAt = *v.QueueTime
		}
		var left time.Time // when it left the queue
		switch {
		case ok && v.StartTime != nil:
			left = *v.StartTime
		case ok && v.CompletedTime != nil:
			left = *v.CompletedTime
		}
		qEdges = append(qEdges, edge{queuedAt, 1})
		if !left.IsZero() {
			qEdges = append(qEdges, edge{left, -1})
		}
		if !ok || v.Node == "" {
			continue
		}
		ln := get(v.Node)
		if v.StartTime != nil {
			running[v.Node] = append(running[v.Node], edge{*v.StartTime, 1})
			if v.CompletedTime != nil {
				running[v.Node] = append(running[v.Node], edge{*v.CompletedTime, -1})
			}
		}
		if history.TaskTerminal(v.State) && v.CompletedTime != nil {
			ln.ends = append(ln.ends, v)
		}
	}
	steps := func(es []edge) []step {
		sort.SliceStable(es, func(i, j int) bool { return es[i].at.Before(es[j].at) })
		var out []step
		n := 0
		for _, e := range es {
			n += e.d
			if len(out) > 0 && out[len(out)-1].at.Equal(e.at) {
				out[len(out)-1].v = n
				continue
			}
			out = append(out, step{e.at, n})
		}
		return out
	}
	for n, es := range running {
		get(n).running = steps(es)
	}
	ranked := false
	for _, o := range h.Ops {
		if o.Outcome != history.OK || o.Kind != history.KindTaskNodes && o.Kind != history.KindTaskCap {
			continue
		}
		for _, nv := range o.NodeList {
			ln := get(nv.Name)
			if len(ln.caps) == 0 || ln.caps[len(ln.caps)-1].v != nv.MaxConcurrentTasks {
				ln.caps = append(ln.caps, step{o.End, nv.MaxConcurrentTasks})
			}
			if o.Kind != history.KindTaskNodes || nv.Rank == "" {
				continue
			}
			ranked = true
			lead := 0
			if strings.EqualFold(nv.Rank, checker.RankLeader) && !nv.Offline {
				lead = 1
			}
			if len(ln.leader) == 0 || ln.leader[len(ln.leader)-1].v != lead {
				ln.leader = append(ln.leader, step{o.End, lead})
			}
		}
	}
	out := make([]*taskLane, 0, len(byName))
	for _, ln := range byName {
		out = append(out, ln)
	}
	sort.Slice(out, func(i, j int) bool { return naturalLess(out[i].name, out[j].name) })
	return out, steps(qEdges), ranked
}
