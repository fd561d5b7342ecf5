package main

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/octoha/octoha/harness/cluster/local"
)

// The README's "Network faults" section, run line by line as written: a
// proxied cluster, a latency fault on Node1's share link, a paced upload,
// heal, a partition of Node2 held 3s, down, then the network scenarios.
func TestReadmeNetworkFaults(t *testing.T) {
	bin := needUpBinary(t)
	lines := docBlock(t, "docs/network.md", "Network faults")
	dir := local.DefaultRunDir("wan")
	if _, err := os.Stat(dir); err == nil {
		t.Skipf("a cluster named wan is running in %s (yours?): not touching it", dir)
	}
	cleanupRun(t, dir)
	work := binWorkDir(t, bin)
	// The catalogue's clusters go on this package's networks.
	env := append(envWithout(trafficAPIKeyEnv), "OCTOHA_NETWORK_BASE=180")
	wants := map[string][]string{
		"fault latency":   {"recorded as latency-1"},
		"upload":          {"1 ok, 0 failed"},
		"fault heal":      {"ended latency-1"},
		"fault partition": {"recorded as partition-2", "Node2 UP"},
		"chaos":           {"7 passed, 0 failed"},
	}
	for _, line := range lines {
		start := time.Now()
		code, output := shLine(t, work, env, line)
		if code != 0 {
			t.Fatalf("README line %q: exit %d\n%s", line, code, output)
		}
		t.Logf("%s: ok in %s", line, time.Since(start).Round(100*time.Millisecond))
		for prefix, ws := range wants {
			if strings.HasPrefix(line, "bin/octoha "+prefix) {
				for _, w := range ws {
					if !strings.Contains(output, w) {
						t.Errorf("README line %q printed no %q:\n%s", line, w, output)
					}
				}
			}
		}
		if strings.HasPrefix(line, "bin/octoha up ") {
			if st, err := local.ReadState(dir); err == nil {
				t.Cleanup(func() { os.RemoveAll(defaultOutDir(st, "wan")) })
			}
		}
	}
}
