package reports

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/octoha/octoha/harness/checker"
)

// The comparison fixtures: two runs made from testdata/run (go test
// ./reports -run ReportGolden -update rebuilds them). "after" is "before" with
// the kill scenario regressed (it fails its error-window check, ejects
// the node in 1.6s instead of 0.9s, its vegeta latencies are 1.6 times
// slower) but readmitting faster (0.6s instead of 1.45s), and the unsafe
// scenario fixed (failed → passed).
const (
	compareBefore = "testdata/compare/before"
	compareAfter  = "testdata/compare/after"
)

func writeCompareFixtures(t *testing.T) {
	t.Helper()
	for _, d := range []string{compareBefore, compareAfter} {
		if err := os.RemoveAll(d); err != nil {
			t.Fatal(err)
		}
		for _, slug := range []string{"kill-node-during-uploads", "unsafe-ack-loses-uploads", "database-outage-postgres"} {
			src := filepath.Join(fixtureRun, ScenariosDir, slug)
			dst := filepath.Join(d, ScenariosDir, slug)
			if err := os.MkdirAll(dst, 0o755); err != nil {
				t.Fatal(err)
			}
			for _, f := range []string{ScenarioFile, HistoryFile, "attack.results.gob"} {
				b, err := os.ReadFile(filepath.Join(src, f))
				if errors.Is(err, os.ErrNotExist) {
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dst, f), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
	}

	kill := filepath.Join(compareAfter, ScenariosDir, "kill-node-during-uploads")
	alterScenario(t, kill, func(s *Scenario) {
		s.State = StateFailed
		s.Failure = "error-window: 2 client failures outside any fault window (allowed 0)"
		for i := range s.Figures {
			switch s.Figures[i].Name {
			case "ejection":
				s.Figures[i].Value = 1.6
			case "rejoin":
				s.Figures[i].Value = 0.6
			}
		}
		for i := range s.Checks.Results {
			r := &s.Checks.Results[i]
			for j := range r.Figures {
				f := &r.Figures[j]
				switch r.Name + "." + f.Name {
				case "convergence.f1.eject-lb", "convergence.eject-max":
					f.Value = 1.6
				case "convergence.f1.rejoin-requests", "convergence.rejoin-max":
					f.Value = 0.6
				case "error-window.outside-failures":
					f.Value = 2
				}
			}
			switch r.Name {
			case "convergence":
				r.Summary = "1 node fault: ejected within 1.600s, rejoined within 0.600s"
			case "error-window":
				r.Status = checker.Fail
				r.Summary = "2 client failures outside any fault window (allowed 0), the first op #90 [ping-0090] ping at t+10.100s"
				r.Evidence = append([]string{"failure outside any fault window: op #90 [ping-0090] ping at t+10.050s–t+10.100s: failed HTTP 503"}, r.Evidence...)
			}
		}
	})
	slowDown(t, filepath.Join(kill, "attack.results.gob"), 1.6)

	unsafe := filepath.Join(compareAfter, ScenariosDir, "unsafe-ack-loses-uploads")
	alterScenario(t, unsafe, func(s *Scenario) {
		s.State, s.Failure = StatePassed, ""
		for i := range s.Checks.Results {
			r := &s.Checks.Results[i]
			if r.Name != "durability" {
				continue
			}
			r.Status = checker.Pass
			r.Summary = "6 of 6 acknowledged packages present and intact via the load balancer and 2 live nodes"
			r.Evidence = nil
			for j := range r.Figures {
				switch r.Figures[j].Name {
				case "missing":
					r.Figures[j].Value = 0
				case "verified":
					r.Figures[j].Value = 6
				}
			}
		}
	})
}

func alterScenario(t *testing.T, dir string, f func(*Scenario)) {
	t.Helper()
	s, err := ReadScenario(dir)
	if err != nil {
		t.Fatal(err)
	}
	f(s)
	if err := WriteScenario(dir, *s); err != nil {
		t.Fatal(err)
	}
}

// slowDown rewrites a vegeta results file with every latency times k.
func slowDown(t *testing.T, path string, k float64) {
	t.Helper()
	in, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := vegeta.NewDecoder(bytes.NewReader(in))
	var out bytes.Buffer
	enc := vegeta.NewEncoder(&out)
	for {
		var r vegeta.Result
		if err := dec.Decode(&r); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			t.Fatal(err)
		}
		r.Latency = time.Duration(float64(r.Latency) * k)
		if err := enc.Encode(&r); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestReportGoldenComparison(t *testing.T) {
	if *update {
		writeCompareFixtures(t)
	}
	out := t.TempDir()
	opts := CompareOptions{Tolerance: DefaultTolerance, HTML: filepath.Join(out, "compare.html"),
		Markdown: filepath.Join(out, "compare.md"), JSON: filepath.Join(out, "compare.json")}
	c, err := Compare(context.Background(), compareBefore, compareAfter, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"compare.json", "compare.md"} {
		got, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		golden := filepath.Join("testdata", "golden", name)
		if *update {
			if err := os.WriteFile(golden, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%v (run with -update to create it)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from %s (run with -update after checking the change):\n%s", name, golden, firstDiff(string(want), string(got)))
		}
	}

	// What the goldens encode, asserted directly so a bad -update is caught.
	if c.Base.Name != "before" || c.Run.Name != "after" || c.TolerancePercent != 20 {
		t.Errorf("comparison of %q → %q at %v%%", c.Base.Name, c.Run.Name, c.TolerancePercent)
	}
	by := map[string]ScenarioComparison{}
	for _, s := range c.Scenarios {
		by[s.Slug] = s
	}
	kill := by["kill-node-during-uploads"]
	if kill.Verdict != CompareRegressed || kill.BaseState != StatePassed || kill.RunState != StateFailed {
		t.Errorf("kill: %s, %s → %s", kill.Verdict, kill.BaseState, kill.RunState)
	}
	for _, want := range []string{
		"verdict: passed → failed",
		"check error-window: pass → fail",
		"ejection: 0.9s → 1.6s (+77.8%)",
		"convergence eject-max: 0.9s → 1.6s (+77.8%)",
		"error-window outside-failures: 0 ops → 2 ops (+2 ops from 0)",
	} {
		if !containsSub(kill.Regressions, want) {
			t.Errorf("kill regressions lack %q:\n%s", want, strings.Join(kill.Regressions, "\n"))
		}
	}
	var latency, rejoin, p99 bool
	for _, r := range kill.Regressions {
		latency = latency || strings.HasPrefix(r, "latency attack.results.gob p")
		rejoin = rejoin || strings.Contains(r, "rejoin")
	}
	for _, f := range kill.Figures {
		if f.Group == "latency attack.results.gob" && f.Name == "p99" {
			p99 = f.Regression && f.Better == LowerIsBetter && f.ChangePercent != nil && math.Abs(*f.ChangePercent-60) < 0.5
		}
		if f.Name == "rejoin" && !f.Improvement {
			t.Errorf("rejoin 1.1s → 0.6s is not an improvement: %+v", f)
		}
		if f.Group == "history" && f.Regression {
			t.Errorf("a neutral figure regressed: %+v", f)
		}
	}
	if !latency || !p99 || rejoin {
		t.Errorf("latency regressions %v, p99 +60%% flagged %v, rejoin (faster) among regressions %v:\n%s", latency, p99, rejoin, strings.Join(kill.Regressions, "\n"))
	}
	unsafe := by["unsafe-ack-loses-uploads"]
	if unsafe.Verdict != CompareImproved || len(unsafe.Regressions) != 0 || unsafe.Improvements < 2 {
		t.Errorf("unsafe: %s, %d improvements, regressions %q", unsafe.Verdict, unsafe.Improvements, unsafe.Regressions)
	}
	if s := by["database-outage-postgres"]; s.Verdict != CompareNotCompared || len(s.Figures) != 0 {
		t.Errorf("skipped scenario: %s with %d figures", s.Verdict, len(s.Figures))
	}
	if c.Regressions != len(kill.Regressions) {
		t.Errorf("%d regressions in all, %d in the kill scenario", c.Regressions, len(kill.Regressions))
	}

	page, err := os.ReadFile(opts.HTML)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`<span class="badge big failed">REGRESSED</span>`,
		`<h2>What got worse</h2>`,
		`<li class="c-worse">verdict: passed → failed</li>`,
		`<td class="num change">&#43;77.8% ✗ worse</td>`, // html/template writes + as &#43;
		`<td class="num change">-45.5% ✓ better</td>`,
	} {
		if !strings.Contains(string(page), want) {
			t.Errorf("comparison HTML lacks %q", want)
		}
	}

	// A run compared with itself has nothing to report, at any tolerance.
	same, err := Compare(context.Background(), compareBefore, compareBefore, CompareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if same.Regressions != 0 || same.Improvements != 0 {
		t.Errorf("a run against itself: %d regressions, %d improvements", same.Regressions, same.Improvements)
	}
}

func TestReportCompareReadsSummaryJSON(t *testing.T) {
	dir := copyFixture(t)
	if _, err := Write(context.Background(), dir, Options{}); err != nil {
		t.Fatal(err)
	}
	c, err := Compare(context.Background(), filepath.Join(dir, JSONFile), compareAfter, CompareOptions{Tolerance: 0.2})
	if err != nil {
		t.Fatal(err)
	}
	if c.Regressions == 0 || c.Base.Name != "20261125-181500" {
		t.Errorf("summary.json as the base: %d regressions, base %q", c.Regressions, c.Base.Name)
	}
	b, err := json.Marshal(c)
	if err != nil || !bytes.Contains(b, []byte(`"schema":"octoha.compare/v1"`)) {
		t.Errorf("JSON %s: %v", b, err)
	}
	if _, err := Compare(context.Background(), filepath.Join(dir, "nope"), compareAfter, CompareOptions{}); !errors.Is(err, ErrBadInput) {
		t.Errorf("missing base: %v, want ErrBadInput", err)
	}
	if _, err := Compare(context.Background(), compareBefore, compareAfter, CompareOptions{Tolerance: -1}); err == nil {
		t.Error("a negative tolerance is accepted")
	}
}

func TestReportFigureDirection(t *testing.T) {
	for _, tc := range []struct{ name, unit, want string }{
		{"eject-max", "s", LowerIsBetter},
		{"f1.rejoin-lb", "s", LowerIsBetter},
		{"kill-1.last-failure", "s", LowerIsBetter},
		{"kill-1.first-failure", "s", ""},
		{"span", "s", ""},
		{"during:f1.duration", "s", ""},
		{"grace", "s", ""},
		{"missing", "packages", LowerIsBetter},
		{"acknowledged", "packages", ""},
		{"failures", "ops", LowerIsBetter},
		{"ops", "ops", ""},
		{"before.error-rate", "%", LowerIsBetter},
		{"after:f1.ops-per-s", "ops/s", HigherIsBetter},
		{"upload-throughput", "MB/s", HigherIsBetter},
		{"throughput-after", "tasks/s", HigherIsBetter},
		{"client-failures-during-kill", "ops", LowerIsBetter},
		{"sticky-share", "%", ""},
	} {
		if got := FigureDirection(tc.name, tc.unit); got != tc.want {
			t.Errorf("FigureDirection(%q, %q) = %q, want %q", tc.name, tc.unit, got, tc.want)
		}
	}
}

func TestReportJudgeToleranceAndNoiseFloor(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	for _, tc := range []struct {
		name, unit      string
		base, run       float64
		tol             float64
		regress, better bool
	}{
		{"eject-max", "s", 1, 1.19, 0.2, false, false},   // within 20 %
		{"eject-max", "s", 1, 1.21, 0.2, true, false},    // beyond
		{"eject-max", "s", 0.2, 0.29, 0.2, false, false}, // +45 %, but under the 0.1s floor
		{"eject-max", "s", 1, 0.5, 0.2, false, true},
		{"upload-throughput", "MB/s", 100, 70, 0.2, true, false},
		{"upload-throughput", "MB/s", 100, 130, 0.2, false, true},
		{"missing", "packages", 0, 1, 0.2, true, false}, // from 0, any worsening
		{"ops", "ops", 100, 10, 0.2, false, false},      // neutral
		{"eject-max", "s", 1, 1.05, 0, false, false},    // tolerance 0: still the floor
		{"eject-max", "s", 1, 1.15, 0, true, false},
	} {
		got := judge(FigureComparison{Group: "convergence", Name: tc.name, Unit: tc.unit, Base: f(tc.base), Run: f(tc.run)}, tc.tol)
		if got.Regression != tc.regress || got.Improvement != tc.better {
			t.Errorf("%s %v → %v at %v: regression %v, improvement %v; want %v, %v", tc.name, tc.base, tc.run, tc.tol, got.Regression, got.Improvement, tc.regress, tc.better)
		}
	}
}
