package reports

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/octoha/octoha/harness/checker"
	"github.com/octoha/octoha/harness/history"
)

// StateIncomplete marks a scenario directory that has a history but no
// scenario.json: the run was interrupted before the scenario finished.
// Reports show it (with whatever history it left) and count it as a
// failure.
const StateIncomplete = "incomplete"

// ResultsSuffix ends the names of vegeta result files in a scenario
// directory.
const ResultsSuffix = ".results.gob"

// LogsDir is the subdirectory of a scenario directory holding its logs.
const LogsDir = "logs"

// run is a loaded run directory.
type run struct {
	Dir       string
	Name      string
	Scenarios []*loaded
}

// loaded is one scenario with everything its directory holds.
type loaded struct {
	Scenario
	Dir     string
	History *history.History // nil when the directory has none
	Vegeta  []vegetaFile
	Logs    []string // paths relative to Dir
	// Warnings say what is missing or damaged, for the reader to weigh the
	// report against.
	Warnings []string
	// blame maps the seq of each op a failed check's evidence cites
	// ("op #12") to those checks' names, so plots can point at them.
	blame map[uint64][]string
}

// vegetaFile is one vegeta results file, reduced to vegeta's own metrics.
type vegetaFile struct {
	Name      string   // file name inside the scenario directory
	Attacks   []string // attack names in the file, sorted
	Metrics   vegeta.Metrics
	Truncated bool
}

// loadRun reads a run directory (with a scenarios/ subdirectory) or a
// single scenario directory.
func loadRun(ctx context.Context, dir string) (*run, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("read run directory: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("read run directory: %s is not a directory", dir)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("read run directory: %w", err)
	}
	r := &run{Dir: abs, Name: filepath.Base(abs)}

	var dirs []string
	if isScenarioDir(abs) {
		dirs = []string{abs}
	} else {
		entries, err := os.ReadDir(filepath.Join(abs, ScenariosDir))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("read run directory: %w", err)
		}
		for _, e := range entries {
			if e.IsDir() && isScenarioDir(filepath.Join(abs, ScenariosDir, e.Name())) {
				dirs = append(dirs, filepath.Join(abs, ScenariosDir, e.Name()))
			}
		}
	}
	if len(dirs) == 0 {
		return nil, fmt.Errorf("no scenarios in %s: want %s/<slug>/%s (a run directory) or %s (a scenario directory)",
			dir, ScenariosDir, ScenarioFile, ScenarioFile)
	}
	for _, d := range dirs {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("read run directory: %w", err)
		}
		l, err := loadScenario(d)
		if err != nil {
			return nil, err
		}
		r.Scenarios = append(r.Scenarios, l)
	}
	sort.SliceStable(r.Scenarios, func(i, j int) bool {
		a, b := r.Scenarios[i], r.Scenarios[j]
		if !a.Start.Equal(b.Start) {
			if a.Start.IsZero() || b.Start.IsZero() {
				return b.Start.IsZero()
			}
			return a.Start.Before(b.Start)
		}
		return a.Slug < b.Slug
	})
	return r, nil
}

// isScenarioDir says whether dir holds a scenario: its description, or at
// least the history of one that was interrupted.
func isScenarioDir(dir string) bool {
	for _, f := range []string{ScenarioFile, HistoryFile} {
		if st, err := os.Stat(filepath.Join(dir, f)); err == nil && st.Mode().IsRegular() {
			return true
		}
	}
	return false
}

// loadScenario reads one scenario directory. A missing history is a
// warning (skipped scenarios have none); an unreadable or corrupt file is
// an error naming it.
func loadScenario(dir string) (*loaded, error) {
	l := &loaded{Dir: dir}
	s, err := ReadScenario(dir)
	switch {
	case err == nil:
		l.Scenario = *s
	case errors.Is(err, fs.ErrNotExist):
		l.Scenario = Scenario{Name: filepath.Base(dir), State: StateIncomplete}
		l.Warnings = append(l.Warnings, "no "+ScenarioFile+": the run was interrupted before this scenario finished; showing its history only")
	default:
		return nil, err
	}
	if l.Slug == "" {
		l.Slug = filepath.Base(dir)
	}
	if l.Name == "" {
		l.Name = l.Slug
	}
	switch l.State {
	case StatePassed, StateFailed, StateSkipped, StateIncomplete:
	default:
		return nil, fmt.Errorf("parse %s: unknown state %q (want passed, failed or skipped)", filepath.Join(dir, ScenarioFile), l.State)
	}

	hp := filepath.Join(dir, HistoryFile)
	h, err := history.Load(hp)
	switch {
	case err == nil:
		l.History = h
		if h.Truncated {
			l.Warnings = append(l.Warnings, "the history's last line was cut off (the writer stopped mid-line); everything before it is shown")
		}
	case errors.Is(err, fs.ErrNotExist):
		if l.State != StateSkipped {
			l.Warnings = append(l.Warnings, "no "+HistoryFile+": no operations or faults to show")
		}
	default:
		return nil, err
	}
	if l.History != nil {
		// A history without times would stretch every plot to year 1.
		if start, _ := l.History.Span(); start.IsZero() && len(l.History.Ops)+len(l.History.Faults) > 0 {
			l.Warnings = append(l.Warnings, "the history's operations carry no times: nothing to plot")
		}
	}

	names, err := resultFiles(dir, l.Results)
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		vf, err := loadVegeta(filepath.Join(dir, n))
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				l.Warnings = append(l.Warnings, fmt.Sprintf("%s lists results file %s, which does not exist", ScenarioFile, n))
				continue
			}
			return nil, err
		}
		if vf.Truncated {
			l.Warnings = append(l.Warnings, fmt.Sprintf("%s ends mid-result (the writer stopped); %d results read", n, vf.Metrics.Requests))
		}
		l.Vegeta = append(l.Vegeta, *vf)
	}
	l.Logs = listLogs(dir)
	l.blame = blamedOps(l.Checks)
	return l, nil
}

// opRefRE finds the op references checkers put in evidence ("op #12").
var opRefRE = regexp.MustCompile(`\bop #(\d+)\b`)

// blamedOps collects the ops failed checks cite in their evidence.
func blamedOps(rep *checker.Report) map[uint64][]string {
	if rep == nil {
		return nil
	}
	out := map[uint64][]string{}
	for _, r := range rep.Failed() {
		for _, line := range r.Evidence {
			for _, m := range opRefRE.FindAllStringSubmatch(line, -1) {
				seq, err := strconv.ParseUint(m[1], 10, 64)
				if err != nil || slices.Contains(out[seq], r.Name) {
					continue
				}
				out[seq] = append(out[seq], r.Name)
			}
		}
	}
	return out
}

// resultFiles returns the vegeta result files of a scenario directory: the
// ones scenario.json lists plus any *.results.gob beside it, sorted.
func resultFiles(dir string, listed []string) ([]string, error) {
	set := map[string]bool{}
	for _, n := range listed {
		// Only names inside the directory: a listed "../x" must not make the
		// report read elsewhere.
		if n != "" && n == filepath.Base(n) {
			set[n] = true
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read scenario directory: %w", err)
	}
	for _, e := range entries {
		if e.Type().IsRegular() && strings.HasSuffix(e.Name(), ResultsSuffix) {
			set[e.Name()] = true
		}
	}
	out := make([]string, 0, len(set))
	for n := range set {
		out = append(out, n)
	}
	sort.Strings(out)
	return out, nil
}

// loadVegeta decodes a vegeta results file (gob, JSON or CSV, sniffed as
// `vegeta report` does) into vegeta's Metrics. A file cut off mid-result
// keeps what was read and is marked Truncated.
func loadVegeta(path string) (*vegetaFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open vegeta results: %w", err)
	}
	defer f.Close()
	vf := &vegetaFile{Name: filepath.Base(path)}
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("open vegeta results: %w", err)
	}
	if st.Size() == 0 {
		vf.Metrics.Close()
		return vf, nil
	}
	dec := vegeta.DecoderFor(f)
	if dec == nil {
		return nil, fmt.Errorf("read vegeta results %s: not a vegeta results file (gob, JSON or CSV)", path)
	}
	attacks := map[string]bool{}
	for {
		var r vegeta.Result
		err := dec.Decode(&r)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) || vf.Metrics.Requests > 0 {
				vf.Truncated = true
				break
			}
			return nil, fmt.Errorf("read vegeta results %s: %w", path, err)
		}
		attacks[r.Attack] = true
		vf.Metrics.Add(&r)
	}
	vf.Metrics.Close()
	for a := range attacks {
		vf.Attacks = append(vf.Attacks, a)
	}
	sort.Strings(vf.Attacks)
	return vf, nil
}

// listLogs returns the files under dir/logs, relative to dir, sorted.
func listLogs(dir string) []string {
	var out []string
	root := filepath.Join(dir, LogsDir)
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // an unreadable logs directory is not worth failing a report
		}
		if d.Type().IsRegular() {
			if rel, err := filepath.Rel(dir, p); err == nil {
				out = append(out, filepath.ToSlash(rel))
			}
		}
		if len(out) >= 200 {
			return fs.SkipAll
		}
		return nil
	})
	return out
}

// base is the time plots of a scenario count from: the history's first
// operation or fault, which is also the checkers' "t+0" in evidence, so
// a plot and the evidence beside it agree. Without a history it is the
// scenario's start.
func (l *loaded) base() time.Time {
	if l.History != nil {
		if hs, _ := l.History.Span(); !hs.IsZero() {
			return hs
		}
	}
	return l.Start
}

// finish is where plots end: the history's last event (LB samples
// included), or the scenario's end without a history.
func (l *loaded) finish() time.Time {
	if l.History != nil {
		_, t := l.History.Span()
		for _, s := range l.History.LB {
			if s.Time.After(t) {
				t = s.Time
			}
		}
		if !t.IsZero() {
			return t
		}
	}
	return l.End
}

// span is the scenario's own start and end, falling back to what the
// history shows when the scenario did not record them.
func (l *loaded) span() (start, end time.Time) {
	start, end = l.Start, l.End
	if start.IsZero() {
		start = l.base()
	}
	if end.IsZero() || end.Before(start) {
		end = l.finish()
	}
	return start, end
}
