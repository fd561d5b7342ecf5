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
// expected with flips counted.
func TestReadmeSeedRules(t *testing.T) {
	bin := needUpBinary(t)
	work := t.TempDir()
	if err := os.MkdirAll(filepath.Join(work, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(bin, filepath.Join(work, "bin", "octoha")); err != nil {
		t.Fatal(err)
	}
	env := append(envWithout("OCTOHA_NETWORK_BASE"), "OCTOHA_NETWORK_BASE=210")
	for _, line := range readmeBlock(t, "The seed's other HA rules") {
		start := time.Now()
		code, out := shLine(t, work, env, line)
		switch {
		case strings.Contains(line, "--os windows,linux"):
			if code != 2 || !strings.Contains(out, "It has to be either all Windows or all containers") {
				t.Errorf("%s: exit %d, want 2 quoting the seed:\n%s", line, code, out)
			}
		case strings.Contains(line, "--labels topology"):
			for _, want := range []string{"check downloads      FAIL (expected)", "cause mixed operating systems", "2 passed, 0 failed"} {
				if !strings.Contains(out, want) {
					t.Errorf("%s printed no %q:\n%s", line, want, out)
				}
			}
			if code != 0 {
				t.Errorf("%s: exit %d", line, code)
			}
		case strings.Contains(line, "--labels permissions"):
			for _, want := range []string{"check permissions    FAIL (expected)", "flips from denied back to allowed", "stale window 0.000s, 0 stale answers, 0 flips", "3 passed, 0 failed"} {
				if !strings.Contains(out, want) {
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
