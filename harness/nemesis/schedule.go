package nemesis

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/history"
)

// Step is one fault of a schedule: at offset At from the schedule's start,
// inject Fault on Target and hold it for Hold.
type Step struct {
	At     time.Duration `json:"at"`
	Fault  string        `json:"fault"`
	Target string        `json:"target,omitempty"`
	Hold   time.Duration `json:"hold"`
}

func (s Step) String() string {
	t := ""
	if s.Target != "" {
		t = " " + s.Target
	}
	return fmt.Sprintf("%s %s%s for %s", s.At, s.Fault, t, s.Hold)
}

// Schedule is a declarative, replayable list of faults. Steps run one at a
// time, in order: a step starts at its offset or when the previous one has
// recovered, whichever is later.
type Schedule struct {
	Seed  int64  `json:"seed"`
	Steps []Step `json:"steps"`
}

// String renders the schedule in the form ParseSchedule reads.
func (s Schedule) String() string {
	parts := make([]string, len(s.Steps))
	for i, st := range s.Steps {
		parts[i] = st.String()
	}
	return strings.Join(parts, "; ")
}

// ParseSchedule reads "2s kill Node2 for 3s; 10s drain Node1 for 4s;
// 20s db-outage for 5s; 30s latency@db,latency=300ms Node1 for 5s".
func ParseSchedule(text string) (Schedule, error) {
	var s Schedule
	for i, raw := range strings.Split(text, ";") {
		f := strings.Fields(raw)
		if len(f) == 0 {
			continue
		}
		bad := func(msg string) (Schedule, error) {
			return Schedule{}, fmt.Errorf("schedule step %d %q: %s (want e.g. \"2s kill Node2 for 3s\")", i+1, strings.TrimSpace(raw), msg)
		}
		if len(f) < 4 || f[len(f)-2] != "for" {
			return bad("expected <offset> <fault> [target] for <hold>")
		}
		at, err := time.ParseDuration(f[0])
		if err != nil || at < 0 {
			return bad("bad offset")
		}
		hold, err := time.ParseDuration(f[len(f)-1])
		if err != nil || hold < 0 {
			return bad("bad hold")
		}
		fault, err := ByName(f[1])
		if err != nil {
			return bad(err.Error())
		}
		st := Step{At: at, Fault: Spec(fault), Hold: hold}
		switch len(f) {
		case 4:
			if fault.Targeted() {
				return bad(fault.Name() + " needs a target node")
			}
		case 5:
			st.Target = f[2]
		default:
			return bad("too many words")
		}
		s.Steps = append(s.Steps, st)
	}
	if len(s.Steps) == 0 {
		return Schedule{}, errors.New("empty schedule")
	}
	return s, nil
}

// PlanOptions bounds a random schedule.
type PlanOptions struct {
	// Faults are the kinds to draw from (default: Kill, Pause, Restart,
	// Drain, plus the database and share outages when Cluster allows them).
	Faults []string
	// Nodes are the candidate targets (default: every node of Cluster).
	Nodes []string
	// Cluster, if set, filters Faults to those Available on it and
	// supplies Nodes.
	Cluster cluster.Cluster
	// Count is how many faults (default 3).
	Count int
	// Start is the offset of the first fault (default 3s); Gap the quiet
	// time after each recovery (default 3s).
	Start, Gap time.Duration
	// MinHold and MaxHold bound each fault's hold (default 2s–5s).
	MinHold, MaxHold time.Duration
}

// Plan draws a schedule from seed: the same seed and options always give
// the same schedule, which is how a run is replayed.
func Plan(seed int64, o PlanOptions) (Schedule, error) {
	if o.Count <= 0 {
		o.Count = 3
	}
	if o.Start <= 0 {
		o.Start = 3 * time.Second
	}
	if o.Gap <= 0 {
		o.Gap = 3 * time.Second
	}
	if o.MinHold <= 0 {
		o.MinHold = 2 * time.Second
	}
	if o.MaxHold < o.MinHold {
		o.MaxHold = max(o.MinHold, 5*time.Second)
	}
	if len(o.Faults) == 0 {
		o.Faults = []string{KindKill, KindPause, KindRestart, KindDrain, KindDBOutage, KindShare}
	}
	if len(o.Nodes) == 0 && o.Cluster != nil {
		for _, n := range o.Cluster.Nodes() {
			o.Nodes = append(o.Nodes, n.Name)
		}
	}
	var kinds []Fault
	for _, name := range o.Faults {
		f, err := ByName(name)
		if err != nil {
			return Schedule{}, err
		}
		if o.Cluster != nil && f.Available(o.Cluster) != nil {
			continue
		}
		if f.Targeted() && len(o.Nodes) == 0 {
			continue
		}
		kinds = append(kinds, f)
	}
	if len(kinds) == 0 {
		return Schedule{}, fmt.Errorf("none of the faults %v can be injected here", o.Faults)
	}
	nodes := slices.Clone(o.Nodes)
	slices.Sort(nodes)
	rng := rand.New(rand.NewPCG(uint64(seed), 0x6f63746f6861))
	s := Schedule{Seed: seed}
	at := o.Start
	for range o.Count {
		f := kinds[rng.IntN(len(kinds))]
		st := Step{At: at, Fault: Spec(f)}
		if f.Targeted() {
			st.Target = nodes[rng.IntN(len(nodes))]
		}
		span := int64(o.MaxHold - o.MinHold)
		st.Hold = o.MinHold
		if span > 0 {
			st.Hold += time.Duration(rng.Int64N(span + 1)).Round(100 * time.Millisecond)
		}
		s.Steps = append(s.Steps, st)
		at += st.Hold + o.Gap
	}
	return s, nil
}

// Duration is when the last step is planned to recover.
func (s Schedule) Duration() time.Duration {
	var end time.Duration
	for _, st := range s.Steps {
		end = max(end, st.At+st.Hold)
	}
	return end
}

// Run executes the schedule against env, one step at a time. It returns
// the recorded faults; a step that cannot be injected or recovered is an
// error, and later steps do not run (a cluster in an unknown state makes
// later faults meaningless).
func (s Schedule) Run(ctx context.Context, env Env) ([]history.Fault, error) {
	start := time.Now()
	var done []history.Fault
	for i, st := range s.Steps {
		if wait := time.Until(start.Add(st.At)); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return done, ctx.Err()
			}
		}
		f, err := ByName(st.Fault)
		if err != nil {
			return done, err
		}
		rec, err := Hold(ctx, env, f, st.Target, st.Hold)
		if err != nil {
			return done, fmt.Errorf("schedule step %d (%s): %w", i+1, st, err)
		}
		done = append(done, rec)
	}
	return done, nil
}
