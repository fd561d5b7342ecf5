package main

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/octoha/octoha/harness/cluster/local"
	"github.com/octoha/octoha/harness/lb"
)

// docs/azure.md's "Run it", line by line as written: a cluster behind the
// Application Gateway model on an Azure Files-shaped share, its status,
// down, then every azure scenario.
func TestAzureDocRunIt(t *testing.T) {
	bin := needUpBinary(t)
	if err := lb.Available(lb.AzureAppGW); err != nil {
		t.Skipf("azure-appgw needs HAProxy: %v", err)
	}
	if _, err := os.Stat("/usr/sbin/smbd"); err != nil {
		t.Skip("the doc's cluster uses Samba (apt-get install samba): smbd not found")
	}
	lines := docBlock(t, "docs/azure.md", "Run it")
	dir := local.DefaultRunDir("az")
	if _, err := os.Stat(dir); err == nil {
		t.Skipf("a cluster named az is running in %s (yours?): not touching it", dir)
	}
	cleanupRun(t, dir)
	work := binWorkDir(t, bin)
	env := append(envWithout(trafficAPIKeyEnv), "OCTOHA_NETWORK_BASE=186")
	wants := map[string][]string{
		"up":     {"Application Gateway v2 model", "Azure Files standard share"},
		"status": {"Node1", "affinity cookie"},
		"chaos":  {"14 passed, 0 failed, 3 skipped"},
	}
	for _, line := range lines {
		start := time.Now()
		code, output := shLine(t, work, env, line)
		if code != 0 {
			t.Fatalf("docs/azure.md line %q: exit %d\n%s", line, code, output)
		}
		t.Logf("%s: ok in %s", line, time.Since(start).Round(100*time.Millisecond))
		for prefix, ws := range wants {
			if strings.HasPrefix(line, "bin/octoha "+prefix+" ") {
				for _, w := range ws {
					if !strings.Contains(output, w) {
						t.Errorf("docs/azure.md line %q printed no %q:\n%s", line, w, output)
					}
				}
			}
		}
		if strings.HasPrefix(line, "bin/octoha up ") {
			if st, err := local.ReadState(dir); err == nil {
				t.Cleanup(func() { os.RemoveAll(defaultOutDir(st, "az")) })
			}
		}
	}
}
