package main

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/octoha/octoha/reports"
)

// reportFixture copies the reports package's fixture run (one passed, one
// failed, one skipped scenario) into a temporary directory.
func reportFixture(t *testing.T) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "20261125-181500")
	if err := os.CopyFS(dst, os.DirFS(filepath.Join("..", "..", "reports", "testdata", "run"))); err != nil {
		t.Fatalf("copy fixture: %v", err)
	}
	return dst
}

func runReportCLI(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(append([]string{"report"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

func TestReportCommandWritesTheReports(t *testing.T) {
	dir := reportFixture(t)
	code, out, errOut := runReportCLI("--in", dir)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	for _, f := range []string{reports.HTMLFile, reports.JSONFile, reports.MarkdownFile} {
		p := filepath.Join(dir, f)
		if _, err := os.Stat(p); err != nil {
			t.Errorf("not written: %v", err)
		}
		if !strings.Contains(out, p) {
			t.Errorf("stdout does not say where %s is:\n%s", f, out)
		}
	}
	for _, want := range []string{"FAILED: 1 passed, 1 failed, 1 skipped", "durability: uploads lost"} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}

	// --exit-code turns the failed scenario into exit 1, after writing.
	// --out writes that file and nothing beside it: a summary.json an
	// earlier call left there stays as it was.
	outDir := t.TempDir()
	html := filepath.Join(outDir, "r.html")
	earlier := filepath.Join(outDir, reports.JSONFile)
	if err := os.WriteFile(earlier, []byte("earlier"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runReportCLI("--in", dir, "--out", html, "--exit-code")
	if code != 1 || !strings.Contains(errOut, "1 of 3 scenarios failed") {
		t.Errorf("--exit-code: exit %d, stderr %q", code, errOut)
	}
	if _, err := os.Stat(html); err != nil {
		t.Errorf("--out: %v\n%s", err, out)
	}
	if b, _ := os.ReadFile(earlier); string(b) != "earlier" {
		t.Errorf("--out overwrote the summary.json beside it: %.40q", b)
	}
	if _, err := os.Stat(filepath.Join(outDir, reports.MarkdownFile)); err == nil {
		t.Errorf("--out also wrote %s", reports.MarkdownFile)
	}
	if strings.Contains(out, "JSON:") || !strings.Contains(out, "HTML:     "+html) {
		t.Errorf("stdout names files that were not written, or not the one that was:\n%s", out)
	}

	// --json and --md ask for the summaries explicitly.
	js, md := filepath.Join(outDir, "s.json"), filepath.Join(outDir, "s.md")
	if code, out, errOut := runReportCLI("--in", dir, "--out", html, "--json", js, "--md", md); code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	for _, p := range []string{js, md} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("--json/--md: %v", err)
		}
	}
}

// compareFixtures are the reports package's two comparison runs: "after"
// regresses the kill scenario and fixes the unsafe one.
func compareFixtures() (before, after string) {
	d := filepath.Join("..", "..", "reports", "testdata", "compare")
	return filepath.Join(d, "before"), filepath.Join(d, "after")
}

func TestReportCompareCommand(t *testing.T) {
	before, after := compareFixtures()
	out := t.TempDir()
	html, md := filepath.Join(out, "c.html"), filepath.Join(out, "c.md")
	// Flags after the two runs, as the usage shows them.
	code, stdout, stderr := runReportCLI("--compare", before, after, "--out", html, "--md", md, "--tolerance", "20%")
	if code != 1 || !strings.Contains(stderr, "regressions against the base") {
		t.Fatalf("exit %d, stderr %q; want 1 naming the regressions\n%s", code, stderr, stdout)
	}
	for _, want := range []string{
		"comparison before → after: ",
		"regressed     Kill mid-upload",
		"worse: verdict: passed → failed",
		"worse: check error-window: pass → fail",
		"improved      unsafe node acknowledges before storing",
		"HTML:     " + html,
		"Markdown: " + md,
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	for _, p := range []string{html, md} {
		if _, err := os.Stat(p); err != nil {
			t.Error(err)
		}
	}

	// The same run against itself: exit 0, and by default compare.html in
	// the run directory (a copy, so testdata stays clean).
	run := filepath.Join(t.TempDir(), "after")
	if err := os.CopyFS(run, os.DirFS(after)); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = runReportCLI("--compare", run, run, "--tolerance", "0.1")
	if code != 0 || !strings.Contains(stdout, "no regressions") {
		t.Errorf("self-comparison: exit %d\n%s%s", code, stdout, stderr)
	}
	if _, err := os.Stat(filepath.Join(run, "compare.html")); err != nil {
		t.Error(err)
	}
}

func TestReportCompareBadInput(t *testing.T) {
	before, after := compareFixtures()
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no run", []string{"--compare", before}, "want the run directory after the base"},
		{"three runs", []string{"--compare", before, after, after}, "got 2 arguments"},
		{"with --in", []string{"--compare", before, "--in", after}, "not --in"},
		{"bad tolerance", []string{"--compare", before, after, "--tolerance", "lots"}, "--tolerance: want a percentage"},
		{"negative tolerance", []string{"--compare", before, after, "--tolerance", "-5%"}, "--tolerance: want a percentage"},
		{"missing base", []string{"--compare", filepath.Join(t.TempDir(), "nope"), after}, "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := runReportCLI(tc.args...)
			if code != 2 || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, stderr %q; want exit 2 saying %q", code, errOut, tc.want)
			}
		})
	}
}

func TestReportParseTolerance(t *testing.T) {
	for in, want := range map[string]float64{"20%": 0.2, "20": 0.2, "0.2": 0.2, "0%": 0, "0": 0, "150%": 1.5, " 5% ": 0.05} {
		got, err := parseTolerance(in)
		if err != nil || math.Abs(got-want) > 1e-12 {
			t.Errorf("parseTolerance(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
}

func TestReportCommandBadInput(t *testing.T) {
	empty := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no --in", nil, "--in (the run directory) is required"},
		{"missing directory", []string{"--in", filepath.Join(empty, "nope")}, "no such file"},
		{"no scenarios", []string{"--in", empty}, "no scenarios in"},
		{"stray argument", []string{"--in", empty, "extra"}, "unexpected argument"},
		{"bad max points", []string{"--in", empty, "--max-points", "0"}, "--max-points must be positive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := runReportCLI(tc.args...)
			if code != 2 || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, stderr %q; want exit 2 saying %q", code, errOut, tc.want)
			}
		})
	}
}
