package checker

import (
	"strings"
	"testing"
)

// A report's text: one aligned line per check, figures and evidence
// beneath it, and the verdict counting failures and skips.
func TestReportWriteText(t *testing.T) {
	rep := &Report{Results: []Result{
		{Name: "durability", Status: Pass, Summary: "every package kept"},
		{Name: "lost-rows", Status: Fail, Summary: "1 row lost", Evidence: []string{"Packages-1"}},
		{Name: "tasks", Status: Skip, Summary: "no task"},
	}}
	var b strings.Builder
	rep.WriteText(&b)
	want := "PASS  durability  every package kept\n" +
		"FAIL  lost-rows   1 row lost\n" +
		"      - Packages-1\n" +
		"SKIP  tasks       no task\n" +
		"FAIL: 1 of 3 checks failed (1 skipped)\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
	b.Reset()
	(&Report{Results: rep.Results[:1]}).WriteText(&b)
	if !strings.HasSuffix(b.String(), "PASS: 1 checks passed (0 skipped)\n") {
		t.Errorf("verdict: %q", b.String())
	}
}
