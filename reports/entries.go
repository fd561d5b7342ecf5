package reports

import (
	"strconv"
	"strings"

	"github.com/octoha/octoha/harness/checker"
)

// Entry is one named value to attach to a Ginkgo spec report, which
// Ginkgo's JUnit reporter writes as a <property>. Package reports does not
// import Ginkgo; a suite attaches the entries itself:
//
//	for _, e := range reports.Entries(s) {
//		AddReportEntry(e.Name, e.Value)
//	}
type Entry struct {
	Name  string
	Value string
}

// Entries returns what a JUnit reader needs to know about a scenario
// without the HTML report: state, the claim it proves, seed and replay
// command, the failure,
// the scenario's own figures ("figure <name>"), each check's verdict
// ("check <name>") and each check figure ("<check>.<figure>"). Values are
// scrubbed of secrets and figures rendered with their units.
func Entries(s Scenario) []Entry {
	out := []Entry{
		{"state", s.State},
		{"seed", strconv.FormatInt(s.Seed, 10)},
		{"replay", Scrub(s.ReplayCommand())},
	}
	if s.Claim != "" {
		out = append(out, Entry{"claim", Scrub(s.Claim)})
	}
	if s.Spec != nil {
		out = append(out, Entry{"cluster", describeCluster(s.Spec)})
	}
	var embedded []string
	for _, c := range s.Components {
		if c.Embedded {
			embedded = append(embedded, c.Part)
		}
	}
	if len(embedded) > 0 {
		out = append(out, Entry{"embedded components", Scrub(strings.Join(embedded, ", "))})
	}
	if s.SkipReason != "" {
		out = append(out, Entry{"skip reason", Scrub(s.SkipReason)})
	}
	if s.Checks != nil {
		if f := s.Checks.Failed(); len(f) > 0 {
			v := f[0].Name + ": " + f[0].Summary
			if len(f[0].Evidence) > 0 {
				v += "\n" + strings.Join(f[0].Evidence[:min(len(f[0].Evidence), failureEvidenceLines)], "\n")
			}
			out = append(out, Entry{"first failed check", Scrub(v)})
		}
	}
	for _, f := range s.Figures {
		out = append(out, Entry{"figure " + f.Name, figureValue(f)})
	}
	if s.Checks != nil {
		for _, r := range s.Checks.Results {
			verdict := string(r.Status)
			if r.Status == checker.Fail && r.ExpectedFailure {
				verdict = "failed as expected"
			}
			out = append(out, Entry{"check " + r.Name, verdict + ": " + Scrub(r.Summary)})
			for _, f := range r.Figures {
				out = append(out, Entry{r.Name + "." + f.Name, figureValue(f)})
			}
		}
	}
	for _, n := range s.Notes {
		out = append(out, Entry{"note", Scrub(n)})
	}
	return out
}

// figureValue renders a figure's value with its unit ("1.234 s").
func figureValue(f checker.Figure) string {
	v := strconv.FormatFloat(f.Value, 'f', -1, 64)
	if f.Unit == "" {
		return v
	}
	return v + " " + f.Unit
}
