package main

import (
	"bytes"
	"strings"
	"testing"
)

// docs/azure-certify.md's Plan commands, run exactly as the doc shows
// (no credential, no API key: the plan touches nothing).
func TestAzureDocPlan(t *testing.T) {
	t.Setenv("OCTOPUS_API_KEY", "")
	t.Setenv("AZURE_CLIENT_ID", "")
	ran := 0
	for _, line := range docBlock(t, "docs/azure-certify.md", "Plan") {
		args := strings.Fields(line)
		if len(args) < 2 || args[0] != "octoha" {
			t.Fatalf("not an octoha command: %q", line)
		}
		var out, errb bytes.Buffer
		// Paths in the doc are relative to the repository root.
		for k, a := range args {
			if strings.HasPrefix(a, "docs/") {
				args[k] = "../../" + a
			}
		}
		if code := run(args[1:], &out, &errb); code != 0 {
			t.Fatalf("%s: exit %d: %s", line, code, errb.String())
		}
		for _, want := range []string{"nothing is read or changed now", "GET application gateway", "/providers/Microsoft.Network/applicationGateways/octo-agw", "power off (skip shutdown)", "octoha-deny-probe-OCTO3", "planned failover"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("%s: no %q in\n%s", line, want, out.String())
			}
		}
		if destructive := strings.Contains(line, "--allow-destructive"); destructive == strings.Contains(out.String(), "none: destructive faults need --allow-destructive") {
			t.Errorf("%s: the plan misstates whether destructive faults are allowed", line)
		}
		ran++
	}
	if ran != 2 {
		t.Fatalf("ran %d commands, want the doc's 2", ran)
	}
}
