package main

import (
	"bytes"
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
	html := filepath.Join(t.TempDir(), "r.html")
	code, out, errOut = runReportCLI("--in", dir, "--out", html, "--exit-code")
	if code != 1 || !strings.Contains(errOut, "1 of 3 scenarios failed") {
		t.Errorf("--exit-code: exit %d, stderr %q", code, errOut)
	}
	for _, p := range []string{html, filepath.Join(filepath.Dir(html), reports.JSONFile), filepath.Join(filepath.Dir(html), reports.MarkdownFile)} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("--out: %v\n%s", err, out)
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
