package azcert_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/octoha/octoha/harness/azure"
	"github.com/octoha/octoha/harness/azure/azcert"
	"github.com/octoha/octoha/harness/azure/azuretest"
	"github.com/octoha/octoha/harness/certificate"
	"github.com/octoha/octoha/harness/cluster"
)

func spec(t *testing.T) cluster.Spec {
	t.Helper()
	s, err := cluster.LoadSpec("../../../docs/examples/azure-cluster.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// certify builds the certificate of the configuration rows alone (no
// scenario ran), as `octoha certify` does before its scenarios.
func certify(t *testing.T, dirs ...string) (certificate.Certificate, cluster.Spec) {
	t.Helper()
	w, err := azuretest.Load(dirs...)
	if err != nil {
		t.Fatal(err)
	}
	s := spec(t)
	rows, err := azcert.Rows(context.Background(), &s, azure.Settings{MaxPackage: 1 << 30, UploadRate: 10 << 20}, azuretest.Options(w, nil))
	if err != nil {
		t.Fatal(err)
	}
	c := certificate.Build(certificate.Input{Cluster: s.External.LBURL, Nodes: []string{"OCTO1", "OCTO2", "OCTO3"}, Seed: 1, UploadSize: 1 << 30, Configuration: rows})
	if os.Getenv("OCTOHA_PRINT_CERTIFICATE") != "" {
		t.Log("\n" + c.Markdown())
	}
	return c, s
}

func row(c certificate.Certificate, id string) certificate.Row {
	for _, r := range c.Rows {
		if r.ID == id {
			return r
		}
	}
	return certificate.Row{}
}

func TestCertificateShowsEveryConfigurationRow(t *testing.T) {
	c, s := certify(t, "../testdata/good")
	md := c.Markdown()
	for _, id := range []string{azure.RowProbe, azure.RowEjection, azure.RowTimeout, azure.RowWAF, azure.RowAffinity, azure.RowPolling, azure.RowSameOS, azure.RowDatabase, azure.RowShareRegion} {
		r := row(c, id)
		if r.Status != certificate.Pass || r.Resource == "" || r.Value == "" {
			t.Errorf("%s: %+v", id, r)
		}
		if !strings.Contains(md, "### "+id+" — PASS") || !strings.Contains(md, r.Resource) {
			t.Errorf("%s is not in the markdown with its resource", id)
		}
	}
	// The probe's bound replaces the YAML's lb timing.
	if s.LB.Interval != 10*time.Second || s.LB.Fall != 3 {
		t.Errorf("ejection bound not applied: %s × %d", s.LB.Interval, s.LB.Fall)
	}
	for _, n := range s.External.Nodes {
		if n.OS != cluster.OSWindows {
			t.Errorf("node %s: os %q, want the VM's (windows)", n.Name, n.OS)
		}
	}
	// No scenario ran: the dynamic rows are NOT RUN, so INCOMPLETE.
	if c.Verdict != certificate.Incomplete {
		t.Errorf("verdict %s", c.Verdict)
	}
}

func TestMisconfiguredCertificateFails(t *testing.T) {
	c, _ := certify(t, "../testdata/good", "../testdata/misconfigured")
	if c.Verdict != certificate.Fail {
		t.Fatalf("verdict %s", c.Verdict)
	}
	md := c.Markdown()
	for id, want := range map[string]string{
		azure.RowProbe:    "healthy on 200-499 — the probe's match 200-499 accepts 418",
		azure.RowTimeout:  "requestTimeout 20s; the largest package (1GiB at 10MiB/s) takes 1m42s",
		azure.RowWAF:      "file upload limit 100 MB",
		azure.RowAffinity: "cookieBasedAffinity Disabled",
		azure.RowPolling:  "one shared polling port",
	} {
		r := row(c, id)
		if r.Status != certificate.Fail || !strings.Contains(r.Why, want) || !strings.Contains(r.Why, "["+r.Resource+"]") {
			t.Errorf("%s: want FAIL with %q and its resource, got %s: %s", id, want, r.Status, r.Why)
		}
		if !strings.Contains(md, "| **FAIL** | "+strings.ReplaceAll(r.Why, "|", "\\|")) {
			t.Errorf("%s: the table does not show the why", id)
		}
	}
	for _, id := range []string{azure.RowEjection, azure.RowSameOS, azure.RowDatabase, azure.RowShareRegion} {
		if r := row(c, id); r.Status != certificate.Pass {
			t.Errorf("%s should pass: %s %s", id, r.Status, r.Why)
		}
	}
}

func TestNoPermissionStopsCertification(t *testing.T) {
	w, err := azuretest.Load("../testdata/good")
	if err != nil {
		t.Fatal(err)
	}
	w.DenyAll = true
	s := spec(t)
	_, err = azcert.Rows(context.Background(), &s, azure.Settings{}, azuretest.Options(w, nil))
	if !errors.Is(err, azure.ErrPermission) || !strings.Contains(err.Error(), "Reader") {
		t.Fatalf("want a permission error naming Reader, got %v", err)
	}
}

func TestPlanTouchesNothing(t *testing.T) {
	var b bytes.Buffer
	// No credential, no transport: Plan has nothing to reach Azure with.
	if err := azcert.Plan(&b, spec(t), true); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"GET application gateway    /subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/octopus-ha/providers/Microsoft.Network/applicationGateways/octo-agw",
		"kill OCTO2    power off (skip shutdown)",
		"securityRules/octoha-deny-probe-OCTO3; undo: delete it  [Network Contributor]",
		"failover      planned failover of",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("plan lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "none: destructive faults need") {
		t.Error("allowed destructive faults are described as refused")
	}
}
