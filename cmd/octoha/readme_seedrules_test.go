package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The README's "The seed's other HA rules" section, run line by line as
// written in a directory holding bin/octoha, on this package's loopback
// networks: a mixed cluster is refused quoting the seed (exit 2, nothing
// started), the topology scenarios pass, the mixed cluster's downloads
// check failing as expected with mixed operating systems named, and the
// permission-cache scenarios pass, the non-sticky one's check failing as
// expected with flips counted; a cluster for Tentacles by hand picks up
// every request in the two supported layouts (exit 0) and not through the
// load balancer (exit 1), and the tentacles scenarios pass.
func TestReadmeSeedRules(t *testing.T) {
	bin := needUpBinary(t)
	work := binWorkDir(t, bin)
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(root, "docs"), filepath.Join(work, "docs")); err != nil {
		t.Fatal(err)
	}
	env := append(envWithout("OCTOHA_NETWORK_BASE"), "OCTOHA_NETWORK_BASE=210")
	t.Cleanup(func() { shLine(t, work, env, "bin/octoha down --name tentacles") })
	for _, line := range docBlock(t, "docs/seed-rules.md", "The seed's other HA rules") {
		start := time.Now()
		code, out := shLine(t, work, env, line)
		switch {
		case strings.Contains(line, "--os windows,linux"):
			if code != 2 || !strings.Contains(out, "It has to be either all Windows or all containers") {
				t.Errorf("%s: exit %d, want 2 quoting the seed:\n%s", line, code, out)
			}
		case strings.Contains(line, "--labels topology"):
			for _, want := range []string{"check downloads      FAIL (expected)", "cause mixed operating systems", "2 passed, 0 failed"} {
				if !containsWords(out, want) {
					t.Errorf("%s printed no %q:\n%s", line, want, out)
				}
			}
			if code != 0 {
				t.Errorf("%s: exit %d", line, code)
			}
		case strings.Contains(line, "--labels permissions"):
			for _, want := range []string{"check permissions    FAIL (expected)", "flips from denied back to allowed", "stale window 0.000s, 0 stale answers, 0 flips", "3 passed, 0 failed"} {
				if !containsWords(out, want) {
					t.Errorf("%s printed no %q:\n%s", line, want, out)
				}
			}
			if code != 0 {
				t.Errorf("%s: exit %d", line, code)
			}
		case strings.HasPrefix(line, "bin/octoha up --detach --config docs/examples/tentacles-cluster.yaml"),
			strings.HasPrefix(line, "bin/octoha down --name tentacles"):
			if code != 0 {
				t.Errorf("%s: exit %d\n%s", line, code, out)
			}
		case strings.HasPrefix(line, "bin/octoha tentacles"):
			want, code0 := "tentacles PASS: 9 requests: 9 picked up", 0
			if strings.Contains(line, "via-lb") {
				want, code0 = "never picked up", 1
			}
			if code != code0 || !strings.Contains(out, want) {
				t.Errorf("%s: exit %d, want %d and %q:\n%s", line, code, code0, want, out)
			}
		case strings.Contains(line, "--labels tentacles"):
			for _, want := range []string{"check tentacles      FAIL (expected)", "Polling endpoints", "4 passed, 0 failed"} {
				if !containsWords(out, want) {
					t.Errorf("%s printed no %q:\n%s", line, want, out)
				}
			}
			if code != 0 {
				t.Errorf("%s: exit %d", line, code)
			}
		default:
			t.Errorf("README line %q is not covered by this test", line)
		}
		t.Logf("%s: exit %d in %s", line, code, time.Since(start).Round(100*time.Millisecond))
	}
}

// containsWords is strings.Contains with runs of white space counted as
// one, so a console column widened elsewhere does not break the check.
func containsWords(s, sub string) bool {
	return strings.Contains(strings.Join(strings.Fields(s), " "), strings.Join(strings.Fields(sub), " "))
}
