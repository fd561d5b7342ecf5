package reports

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/octoha/octoha/harness/checker"
	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/history"
)

// SchemaVersion names the summary.json schema (reports/schema.md). It
// changes only when a field changes meaning or disappears; new fields may
// be added within a version.
const SchemaVersion = "octoha.report/v1"

// Latency sources.
const (
	SourceHistory = "history"
	SourceVegeta  = "vegeta"
)

// failureEvidenceLines is how many evidence lines of the first failed
// check a Failure carries.
const failureEvidenceLines = 5

// Summary is the machine-readable summary of a run, written as
// summary.json. Its schema is documented in reports/schema.md.
type Summary struct {
	Schema    string            `json:"schema"`
	Run       RunSummary        `json:"run"`
	Scenarios []ScenarioSummary `json:"scenarios"`
}

// RunSummary describes the whole run.
type RunSummary struct {
	Name            string    `json:"name"`
	Start           time.Time `json:"start,omitzero"`
	End             time.Time `json:"end,omitzero"`
	DurationSeconds float64   `json:"durationSeconds"`
	// Passed is true when no scenario failed or was left incomplete.
	Passed bool   `json:"passed"`
	Totals Totals `json:"totals"`
}

// Totals counts scenarios by state.
type Totals struct {
	Scenarios  int `json:"scenarios"`
	Passed     int `json:"passed"`
	Failed     int `json:"failed"`
	Skipped    int `json:"skipped"`
	Incomplete int `json:"incomplete"`
}

// ScenarioSummary is one scenario's outcome.
type ScenarioSummary struct {
	Name string `json:"name"`
	// Title is the short heading reports show (absent: use Name); Claim is
	// the one sentence the scenario proves.
	Title    string   `json:"title,omitempty"`
	Claim    string   `json:"claim,omitempty"`
	Slug     string   `json:"slug"`
	State    string   `json:"state"`
	Labels   []string `json:"labels"`
	Seed     int64    `json:"seed"`
	Provider string   `json:"provider,omitempty"`
	// Cluster is a one-line description of the cluster under test.
	Cluster         string    `json:"cluster,omitempty"`
	Replay          string    `json:"replay"`
	Start           time.Time `json:"start,omitzero"`
	End             time.Time `json:"end,omitzero"`
	DurationSeconds float64   `json:"durationSeconds"`
	// Failure says why a failed scenario failed; nil otherwise.
	Failure    *Failure           `json:"failure,omitempty"`
	SkipReason string             `json:"skipReason,omitempty"`
	Checks     []CheckSummary     `json:"checks"`
	Figures    []checker.Figure   `json:"figures"`
	Components []ComponentSummary `json:"components"`
	Traffic    TrafficSummary     `json:"traffic"`
	Faults     []FaultSummary     `json:"faults"`
	Latency    []LatencySummary   `json:"latency"`
	Warnings   []string           `json:"warnings"`
	Notes      []string           `json:"notes"`
}

// Failure is why a scenario failed: its assertion message and the first
// failed check with its first evidence lines.
type Failure struct {
	Message  string   `json:"message,omitempty"`
	Check    string   `json:"check,omitempty"`
	Summary  string   `json:"summary,omitempty"`
	Evidence []string `json:"evidence,omitempty"`
}

// CheckSummary is one checker verdict.
type CheckSummary struct {
	Name   string `json:"name"`
	Status string `json:"status"`
	// ExpectedFailure is true for a failed check the scenario declared
	// must fail (a control proving the checker can fail): it is shown as
	// "failed as expected" and does not fail the scenario.
	ExpectedFailure bool             `json:"expectedFailure"`
	Summary         string           `json:"summary"`
	Figures         []checker.Figure `json:"figures"`
	Evidence        []string         `json:"evidence"`
}

// Unexpected reports whether the check failed without the scenario
// declaring it must.
func (c CheckSummary) Unexpected() bool {
	return c.Status == string(checker.Fail) && !c.ExpectedFailure
}

// Expected reports whether the check failed as the scenario declared it
// must.
func (c CheckSummary) Expected() bool {
	return c.Status == string(checker.Fail) && c.ExpectedFailure
}

// Verdict is how reports word the check's status: "pass", "fail", "skip",
// or "failed as expected ✓".
func (c CheckSummary) Verdict() string {
	if c.Expected() {
		return "failed as expected ✓"
	}
	return c.Status
}

// Heading is what reports show as the scenario's heading: its Title, or
// its Name when it has none.
func (s ScenarioSummary) Heading() string {
	if s.Title != "" {
		return s.Title
	}
	return s.Name
}

// CheckCounts counts a scenario's checks by verdict; Expected counts the
// checks that failed as the scenario declared they must, which Fail does
// not.
type CheckCounts struct{ Pass, Expected, Fail, Skip int }

// CountChecks counts the scenario's checks by verdict.
func (s ScenarioSummary) CountChecks() CheckCounts {
	var n CheckCounts
	for _, c := range s.Checks {
		switch {
		case c.Status == string(checker.Pass):
			n.Pass++
		case c.Expected():
			n.Expected++
		case c.Status == string(checker.Fail):
			n.Fail++
		default:
			n.Skip++
		}
	}
	return n
}

// ComponentSummary is one part of the cluster.
type ComponentSummary struct {
	Part        string `json:"part"`
	Description string `json:"description"`
	// Embedded is true for an in-process stand-in (e.g. the Go load
	// balancer, SQLite, a local directory) instead of the real thing.
	Embedded bool   `json:"embedded"`
	Location string `json:"location,omitempty"`
}

// TrafficSummary counts the history's operations.
type TrafficSummary struct {
	Ops     int `json:"ops"`
	OK      int `json:"ok"`
	Failed  int `json:"failed"`
	Unknown int `json:"unknown"`
	// Uploads and UploadBytes count upload attempts and the bytes they sent.
	Uploads     int   `json:"uploads"`
	UploadBytes int64 `json:"uploadBytes"`
	LBSamples   int   `json:"lbSamples"`
	// InFaultWindows and Unexpected split the failed and unknown ops:
	// those overlapping a fault's window (its start to its end plus
	// FaultGraceSeconds, or to the end of the history for a fault that
	// never recovered) are what the fault was expected to cause; the rest
	// are unexpected, and only they are shown as failures.
	// AcceptedOutsideFaultWindows counts failed ops outside every fault
	// window that the scenario's error-window check does not count as
	// failures: statuses or op kinds the scenario declares are not
	// failures of the cluster (503 from a node shedding load at capacity,
	// 413 from the body limit a scenario is there to catch).
	InFaultWindows              int     `json:"inFaultWindows"`
	AcceptedOutsideFaultWindows int     `json:"acceptedOutsideFaultWindows"`
	Unexpected                  int     `json:"unexpected"`
	FaultGraceSeconds           float64 `json:"faultGraceSeconds"`
	// UploadsAcknowledged counts acknowledged upload attempts and
	// UploadMBPerSecond is their throughput: their bytes over their
	// summed durations, in MB (10^6 bytes) per second; 0 without one.
	UploadsAcknowledged int     `json:"uploadsAcknowledged"`
	UploadMBPerSecond   float64 `json:"uploadMBPerSecond"`
}

// Failures is the number of failed and unknown ops.
func (t TrafficSummary) Failures() int { return t.Failed + t.Unknown }

// FaultSummary is one injected fault, with times relative to the
// scenario's start.
type FaultSummary struct {
	ID     string `json:"id"`
	Kind   string `json:"kind"`
	Target string `json:"target,omitempty"`
	// Link is the link a network fault acts on ("Node1 → database").
	Link        string   `json:"link,omitempty"`
	StartOffset float64  `json:"startOffsetSeconds"`
	EndOffset   *float64 `json:"endOffsetSeconds"` // null: never recovered
	Error       string   `json:"error,omitempty"`
}

// LatencySummary is vegeta's latency figures for one op kind of the
// history (Source "history") or one vegeta results file (Source "vegeta").
type LatencySummary struct {
	Kind           string  `json:"kind"`
	Source         string  `json:"source"`
	File           string  `json:"file,omitempty"`
	Count          int     `json:"count"`
	SuccessPercent float64 `json:"successPercent"`
	RatePerSecond  float64 `json:"ratePerSecond"`
	MeanMs         float64 `json:"meanMs"`
	P50Ms          float64 `json:"p50Ms"`
	P90Ms          float64 `json:"p90Ms"`
	P95Ms          float64 `json:"p95Ms"`
	P99Ms          float64 `json:"p99Ms"`
	MaxMs          float64 `json:"maxMs"`
	// OK, Failed and Unknown count outcomes (history only);
	// InFaultWindows and OutsideFaultWindows split the failed and unknown
	// ones by TrafficSummary's rule.
	OK                  int `json:"ok,omitempty"`
	Failed              int `json:"failed,omitempty"`
	Unknown             int `json:"unknown,omitempty"`
	InFaultWindows      int `json:"inFaultWindows,omitempty"`
	OutsideFaultWindows int `json:"outsideFaultWindows,omitempty"`
	// StatusCodes counts responses by status code (vegeta only; "0" is a
	// transport error).
	StatusCodes map[string]int `json:"statusCodes,omitempty"`
}

// Failed reports whether the scenario counts as a failure.
func (s ScenarioSummary) Failed() bool {
	return s.State == StateFailed || s.State == StateIncomplete
}

// summarize builds the Summary of a loaded run.
func summarize(r *run) *Summary {
	sum := &Summary{Schema: SchemaVersion, Run: RunSummary{Name: r.Name}, Scenarios: []ScenarioSummary{}}
	for _, l := range r.Scenarios {
		s := summarizeScenario(l)
		sum.Scenarios = append(sum.Scenarios, s)
		t := &sum.Run.Totals
		t.Scenarios++
		switch s.State {
		case StatePassed:
			t.Passed++
		case StateFailed:
			t.Failed++
		case StateSkipped:
			t.Skipped++
		case StateIncomplete:
			t.Incomplete++
		}
		st, e := l.span()
		if !st.IsZero() && (sum.Run.Start.IsZero() || st.Before(sum.Run.Start)) {
			sum.Run.Start = st
		}
		if e.After(sum.Run.End) {
			sum.Run.End = e
		}
	}
	sum.Run.Passed = sum.Run.Totals.Failed == 0 && sum.Run.Totals.Incomplete == 0
	if !sum.Run.Start.IsZero() {
		sum.Run.DurationSeconds = secsSince(sum.Run.End, sum.Run.Start)
	}
	return sum
}

func summarizeScenario(l *loaded) ScenarioSummary {
	s := ScenarioSummary{
		Name:       Scrub(l.Name),
		Title:      Scrub(l.Title),
		Claim:      Scrub(l.Claim),
		Slug:       l.Slug,
		State:      l.State,
		Labels:     scrubAll(l.Labels),
		Seed:       l.Seed,
		Provider:   l.Provider,
		Replay:     Scrub(l.ReplayCommand()),
		Start:      l.Start,
		End:        l.End,
		SkipReason: Scrub(l.SkipReason),
		Checks:     []CheckSummary{},
		Figures:    append([]checker.Figure{}, l.Figures...),
		Components: []ComponentSummary{},
		Faults:     []FaultSummary{},
		Latency:    []LatencySummary{},
		Warnings:   scrubAll(l.Warnings),
		Notes:      scrubAll(l.Notes),
	}
	if s.Labels == nil {
		s.Labels = []string{}
	}
	if s.Warnings == nil {
		s.Warnings = []string{}
	}
	if s.Notes == nil {
		s.Notes = []string{}
	}
	if l.Spec != nil {
		s.Cluster = describeCluster(l.Spec)
		if s.Provider == "" {
			s.Provider = l.Spec.Provider
		}
	}
	if st, e := l.span(); !st.IsZero() && !e.IsZero() {
		s.DurationSeconds = secsSince(e, st)
	}
	base := l.base()
	for _, c := range l.Components {
		s.Components = append(s.Components, ComponentSummary{
			Part: Scrub(c.Part), Description: Scrub(c.Description), Embedded: c.Embedded, Location: Scrub(c.Location),
		})
	}
	if l.Checks != nil {
		for _, res := range sortedChecks(l.Checks.Results) {
			cs := CheckSummary{
				Name: res.Name, Status: string(res.Status), ExpectedFailure: res.ExpectedFailure && res.Status == checker.Fail,
				Summary: Scrub(res.Summary), Figures: res.Figures, Evidence: scrubAll(res.Evidence),
			}
			if cs.Figures == nil {
				cs.Figures = []checker.Figure{}
			}
			if cs.Evidence == nil {
				cs.Evidence = []string{}
			}
			s.Checks = append(s.Checks, cs)
		}
	}
	if l.State == StateFailed || l.State == StateIncomplete {
		f := &Failure{Message: Scrub(strings.TrimSpace(l.Failure))}
		for _, c := range s.Checks {
			if c.Unexpected() {
				f.Check, f.Summary = c.Name, c.Summary
				f.Evidence = c.Evidence[:min(len(c.Evidence), failureEvidenceLines)]
				break
			}
		}
		if f.Message == "" && f.Check == "" && l.State == StateIncomplete {
			f.Message = "the scenario did not finish (no " + ScenarioFile + ")"
		}
		s.Failure = f
	}
	if h := l.History; h != nil {
		grace := faultGrace(s.Checks)
		s.Traffic = trafficSummary(h, grace)
		acceptOutside(&s.Traffic, s.Checks)
		for i, f := range h.Faults {
			fs := FaultSummary{ID: f.ID, Kind: f.Kind, Target: f.Target, StartOffset: secsSince(f.Start, base), Error: Scrub(f.Error)}
			if links, what, ok := faultLinks(f); ok {
				fs.Link = Scrub(strings.Join(links, ", ") + ": " + what)
			}
			if fs.ID == "" {
				fs.ID = fmt.Sprintf("fault-%d", i+1)
			}
			if !f.End.IsZero() {
				e := secsSince(f.End, base)
				fs.EndOffset = &e
			}
			s.Faults = append(s.Faults, fs)
		}
		s.Latency = append(s.Latency, latencyFromHistory(h, grace)...)
	}
	s.Latency = append(s.Latency, latencyFromVegeta(l.Vegeta)...)
	return s
}

// sortedChecks puts unexpectedly failed checks first, then the ones that
// failed as expected, then passed, then skipped, keeping the checker's
// order within each group.
func sortedChecks(rs []checker.Result) []checker.Result {
	out := append([]checker.Result{}, rs...)
	rank := func(r checker.Result) int {
		switch {
		case r.Unexpected():
			return 0
		case r.Status == checker.Fail:
			return 1
		case r.Status == checker.Pass:
			return 2
		default:
			return 3
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return rank(out[i]) < rank(out[j]) })
	return out
}

func trafficSummary(h *history.History, grace time.Duration) TrafficSummary {
	t := TrafficSummary{Ops: len(h.Ops), LBSamples: len(h.LB), FaultGraceSeconds: round3(grace.Seconds())}
	var upBytes int64
	var upTime time.Duration
	for _, o := range h.Ops {
		switch o.Outcome {
		case history.OK:
			t.OK++
		case history.Failed:
			t.Failed++
		default:
			t.Unknown++
		}
		if o.Outcome != history.OK {
			if inFaultWindow(h, o, grace) {
				t.InFaultWindows++
			} else {
				t.Unexpected++
			}
		}
		if o.Kind == history.KindUpload {
			t.Uploads++
			t.UploadBytes += o.Bytes
			if o.Outcome == history.OK && o.Duration() > 0 {
				t.UploadsAcknowledged++
				n := o.Bytes
				if n == 0 {
					n = o.Size
				}
				upBytes += n
				upTime += o.Duration()
			}
		}
	}
	if upTime > 0 {
		t.UploadMBPerSecond = round3(float64(upBytes) / 1e6 / upTime.Seconds())
	}
	return t
}

// acceptOutside moves the failures outside fault windows that the
// error-window check does not count (its outside-failures figure is
// lower: statuses or kinds the scenario ignores) from Unexpected to
// AcceptedOutsideFaultWindows.
func acceptOutside(t *TrafficSummary, checks []CheckSummary) {
	for _, c := range checks {
		if c.Name != "error-window" || c.Status == string(checker.Skip) {
			continue
		}
		for _, f := range c.Figures {
			if f.Name == "outside-failures" && f.Value >= 0 && int(f.Value) < t.Unexpected {
				t.AcceptedOutsideFaultWindows = t.Unexpected - int(f.Value)
				t.Unexpected = int(f.Value)
			}
		}
	}
}

// faultGrace is how long after a fault's end its failures are still
// expected: the error-window check's grace when its figures say, else
// checker.DefaultGrace (5 s), the grace that check uses by default.
func faultGrace(checks []CheckSummary) time.Duration {
	for _, c := range checks {
		if c.Name != "error-window" {
			continue
		}
		for _, f := range c.Figures {
			if f.Name == "grace" && f.Value >= 0 {
				return time.Duration(f.Value * float64(time.Second))
			}
		}
	}
	return checker.DefaultGrace
}

// inFaultWindow reports whether an op overlaps a fault's window: from
// the fault's start to its end plus grace, or to the end of the history
// for a fault that never recovered. It is the error-window check's rule,
// so the report and the check agree on which failures a fault explains.
func inFaultWindow(h *history.History, o history.Op, grace time.Duration) bool {
	end := o.End
	if end.IsZero() {
		end = o.Start
	}
	for _, f := range h.Faults {
		if f.Start.IsZero() {
			continue
		}
		if end.Before(f.Start) {
			continue
		}
		if f.End.IsZero() || !o.Start.After(f.End.Add(grace)) {
			return true
		}
	}
	return false
}

// describeCluster says in one line what was tested.
func describeCluster(sp *cluster.Spec) string {
	var parts []string
	if sp.Provider == cluster.ProviderExternal {
		parts = append(parts, "external cluster")
	} else if sp.Nodes > 0 {
		parts = append(parts, fmt.Sprintf("%d nodes", sp.Nodes))
	}
	if sp.LB.Kind != "" {
		lb := sp.LB.Kind + " load balancer"
		if sp.LB.Sticky {
			lb += " (sticky)"
		}
		parts = append(parts, lb)
	}
	if sp.DB.Kind != "" {
		parts = append(parts, sp.DB.Kind+" database")
	}
	if sp.Storage.Kind != "" {
		parts = append(parts, sp.Storage.Kind+" storage")
	}
	if sp.Provider != "" {
		parts = append(parts, sp.Provider+" provider")
	}
	return Scrub(strings.Join(parts, ", "))
}
