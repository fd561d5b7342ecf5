package main

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/octoha/octoha/harness/cluster/local"
)

// The README's "Delta uploads and the built-in feed" section, run line by
// line as written: a cluster named delta on PostgreSQL and Samba, three
// versions uploaded (two as deltas), check exits 0, down.
func TestReadmeDelta(t *testing.T) {
	bin := needUpBinary(t)
	lines := docBlock(t, "docs/delta.md", "Delta uploads and the built-in feed")
	dir := local.DefaultRunDir("delta")
	if _, err := os.Stat(dir); err == nil {
		t.Skipf("a cluster named delta is running in %s (yours?): not touching it", dir)
	}
	cleanupRun(t, dir)
	work := binWorkDir(t, bin)
	env := envWithout(trafficAPIKeyEnv) // the key comes from the cluster
	sawDeltas := false
	for _, line := range lines {
		if strings.Contains(line, " down ") || strings.HasSuffix(line, " down --name delta") {
			if st, err := local.ReadState(dir); err == nil {
				t.Cleanup(func() { os.RemoveAll(defaultOutDir(st, "delta")) })
			}
		}
		start := time.Now()
		code, output := shLine(t, work, env, line)
		if code != 0 {
			t.Fatalf("README line %q: exit %d\n%s", line, code, output)
		}
		if strings.Contains(line, "upload") {
			sawDeltas = strings.Contains(output, "2 of 3 packages sent as deltas")
		}
		t.Logf("%s: ok in %s", line, time.Since(start).Round(100*time.Millisecond))
	}
	if !sawDeltas {
		t.Fatal("the README's upload line did not send two deltas")
	}
}
