package main

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/octoha/octoha/harness/certificate"
	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/scenario"
)

// The seed-rule rows of a certificate, from what the cluster YAML says: a
// posing cluster described with one OS and one polling endpoint per node
// passes same-os and polling-every-node; described with a Windows node
// among Linux ones and one balanced polling endpoint, both rows fail.
func TestCertifySeedRuleRows(t *testing.T) {
	bin := needUpBinary(t)
	p := upPosing(t, bin, "127.0.204")
	base, err := os.ReadFile(p.yaml)
	if err != nil {
		t.Fatal(err)
	}
	describe := func(firstOS string, endpoints []string) {
		y := "pollingThumbprint: " + p.st.Spec.PollingThumbprint + "\n" + string(base)
		first := true
		y = regexp.MustCompile(`(url: "[^"]*")\}`).ReplaceAllStringFunc(y, func(m string) string {
			os := "linux"
			if first {
				os, first = firstOS, false
			}
			return strings.TrimSuffix(m, "}") + ", os: " + os + "}"
		})
		y = strings.Replace(y, "  hooks:\n", fmt.Sprintf("  pollingEndpoints: [%s]\n  hooks:\n", strings.Join(endpoints, ", ")), 1)
		if err := os.WriteFile(p.yaml, []byte(y), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	unique, err := p.st.Spec.PollingEndpoints(cluster.LayoutUniquePort)
	if err != nil {
		t.Fatal(err)
	}
	describe("linux", unique)
	code, stdout, stderr, out := p.certify(t, bin, "--labels", "tentacles || topology")
	c := readCertificate(t, out)
	for _, id := range []string{scenario.ReqSameOS, scenario.ReqPolling} {
		if r := row(c, id); r.Status != certificate.Pass {
			t.Errorf("row %s = %s (%s)\nstdout:\n%s\nstderr:\n%s", id, r.Status, r.Why, stdout, stderr)
		}
	}
	if code != 0 {
		t.Errorf("exit %d", code)
	}

	viaLB, _ := p.st.Spec.PollingEndpoints(cluster.LayoutViaLB)
	describe("windows", viaLB)
	code, stdout, _, out = p.certify(t, bin, "--labels", "tentacles || topology")
	c = readCertificate(t, out)
	for id, want := range map[string]string{scenario.ReqSameOS: "mixes operating systems", scenario.ReqPolling: "1 distinct polling endpoints for 3 nodes"} {
		if r := row(c, id); r.Status != certificate.Fail || !strings.Contains(r.Why, want) {
			t.Errorf("row %s = %s (%s), want FAIL saying %q", id, r.Status, r.Why, want)
		}
	}
	if code != 1 {
		t.Errorf("exit %d, want 1\n%s", code, stdout)
	}
}
