package runner

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/onsi/ginkgo/v2/reporters"
	"github.com/onsi/ginkgo/v2/types"

	"github.com/octoha/octoha/harness/rundir"
	"github.com/octoha/octoha/harness/scenario"
)

// Report file names a run writes besides the reports package's files;
// they are the ones `make chaos` wrote through the Ginkgo CLI, so CI
// pipelines read either alike.
const (
	JUnitFile      = "junit.xml"
	GinkgoJSONFile = "ginkgo.json"
)

// Select returns the scenarios whose labels match a Ginkgo label-filter
// expression (e.g. "health || drain", "!slow") and whose title matches
// focus (a regular expression); empty selects all.
func Select(all []scenario.Scenario, labels, focus string) ([]scenario.Scenario, error) {
	var filter types.LabelFilter
	if strings.TrimSpace(labels) != "" {
		f, err := types.ParseLabelFilter(labels)
		if err != nil {
			return nil, fmt.Errorf("--labels %q: %w", labels, err)
		}
		filter = f
	}
	var re *regexp.Regexp
	if focus != "" {
		var err error
		if re, err = regexp.Compile(focus); err != nil {
			return nil, fmt.Errorf("--focus %q: %w", focus, err)
		}
	}
	var out []scenario.Scenario
	for _, sc := range all {
		if filter != nil && !filter(sc.Labels()) {
			continue
		}
		if re != nil && !re.MatchString(sc.Title) {
			continue
		}
		out = append(out, sc)
	}
	return out, nil
}

// SizeArg renders a size the way --upload-size reads it back exactly.
func SizeArg(n int64) string { return rundir.SizeArg(n) }

// Replay is the command line that runs one scenario again exactly: the
// same seed, upload size and provider. command is "chaos" or "certify";
// clusterFile the --cluster argument, if any.
func Replay(command string, sc scenario.Scenario, opts Options, clusterFile string) string {
	return rundir.Replay(rundir.ReplayOptions{Command: command, Title: sc.Title, Seed: opts.Seed, UploadSize: opts.UploadSize, Provider: opts.Provider, ClusterFile: clusterFile})
}

// WriteSuiteReports writes junit.xml and ginkgo.json for a run of the
// catalogue, in the format the Ginkgo CLI writes them.
func WriteSuiteReports(ctx context.Context, dir, suite string, start time.Time, all []scenario.Scenario, results []*Result) error {
	rep := types.Report{
		SuitePath:        "octoha",
		SuiteDescription: suite,
		SuiteSucceeded:   true,
		StartTime:        start,
		EndTime:          time.Now(),
		PreRunStats:      types.PreRunStats{TotalSpecs: len(all), SpecsThatWillRun: len(results)},
	}
	rep.RunTime = rep.EndTime.Sub(rep.StartTime)
	byTitle := map[string]scenario.Scenario{}
	for _, sc := range all {
		byTitle[sc.Title] = sc
	}
	for _, res := range results {
		sr := types.SpecReport{
			ContainerHierarchyTexts: []string{"Catalogue", "scenario"},
			LeafNodeType:            types.NodeTypeIt,
			LeafNodeText:            res.Title,
			LeafNodeLabels:          byTitle[res.Title].Labels(),
			StartTime:               res.Start,
			EndTime:                 res.End,
			RunTime:                 res.Duration(),
			State:                   types.SpecStatePassed,
		}
		switch res.State {
		case Failed:
			sr.State = types.SpecStateFailed
			sr.Failure = types.Failure{Message: res.Reason, FailureNodeType: types.NodeTypeIt}
			rep.SuiteSucceeded = false
		case Skipped:
			sr.State = types.SpecStateSkipped
			sr.Failure = types.Failure{Message: res.Reason, FailureNodeType: types.NodeTypeIt}
		}
		for _, f := range res.Figures {
			sr.ReportEntries = append(sr.ReportEntries, types.ReportEntry{Name: f.Name, Value: types.WrapEntryValue(f.String()), Time: res.End, Visibility: types.ReportEntryVisibilityFailureOrVerbose})
		}
		rep.SpecReports = append(rep.SpecReports, sr)
	}
	if err := reporters.GenerateJUnitReport(rep, filepath.Join(dir, JUnitFile)); err != nil {
		return fmt.Errorf("write %s: %w", JUnitFile, err)
	}
	if err := reporters.GenerateJSONReport(rep, filepath.Join(dir, GinkgoJSONFile)); err != nil {
		return fmt.Errorf("write %s: %w", GinkgoJSONFile, err)
	}
	return nil
}

// NewSeed is a fresh seed for a run that was given none (printed, so the
// run can be replayed).
func NewSeed() int64 { return time.Now().UnixNano() % 1_000_000_000 }

// SuiteResult is what a run of several scenarios gave.
type SuiteResult struct {
	Start   time.Time
	Results []*Result
	// Counts are the results by state (Passed, Failed, Skipped).
	Counts map[string]int
}

// RunSuite runs the selected scenarios one after the other, as `octoha
// chaos` and `octoha certify` do, saying on opts.Console what each is and
// how it ended. An interrupt (ctx done) stops the scenario in progress,
// which undoes its faults and tears down, and starts no other.
func RunSuite(ctx context.Context, opts Options, command string, selected []scenario.Scenario) *SuiteResult {
	out := opts.Console
	if out == nil {
		out = io.Discard
	}
	stopNote := context.AfterFunc(ctx, func() {
		fmt.Fprintf(out, "\noctoha %s: interrupted — undoing every fault and tearing down (up to %s per recovery)\n", command, 2*time.Minute)
	})
	defer stopNote()
	s := &SuiteResult{Start: time.Now(), Counts: map[string]int{}}
	for i, sc := range selected {
		if ctx.Err() != nil {
			break
		}
		fmt.Fprintf(out, "\n[%d/%d] %s  (%s)\n      %s\n", i+1, len(selected), sc.Title, strings.Join(sc.Labels(), ", "), sc.Claim)
		res := Run(ctx, opts, sc)
		s.Results = append(s.Results, res)
		s.Counts[res.State]++
		switch res.State {
		case Passed:
			fmt.Fprintf(out, "  PASSED in %s\n", res.Duration().Round(100*time.Millisecond))
		case Skipped:
			fmt.Fprintf(out, "  SKIPPED: %s\n", res.Reason)
		default:
			fmt.Fprintf(out, "  FAILED in %s: %s\n  (history and logs in %s)\n", res.Duration().Round(100*time.Millisecond),
				strings.ReplaceAll(strings.TrimSpace(res.Reason), "\n", "\n    "), res.Dir)
		}
		for _, u := range res.Undone {
			if u.Error != "" {
				fmt.Fprintf(out, "  RECOVERY FAILED — check the cluster by hand: %s: %s\n", u.What, u.Error)
			}
		}
	}
	return s
}
