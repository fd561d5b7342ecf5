package azure_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/octoha/octoha/harness/azure"
	"github.com/octoha/octoha/harness/azure/azuretest"
)

const gib = 1 << 30

// settings: a 1 GiB package at 10 MiB/s takes 1m42s.
var settings = azure.Settings{MaxPackage: gib, UploadRate: 10 << 20}

func world(t *testing.T, dirs ...string) *azuretest.World {
	t.Helper()
	w, err := azuretest.Load(dirs...)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func observe(t *testing.T, w *azuretest.World, spec *azure.Spec) *azure.Observed {
	t.Helper()
	c, err := azure.New(spec, azuretest.Options(w, nil))
	if err != nil {
		t.Fatal(err)
	}
	return azure.Observe(context.Background(), c)
}

func rows(t *testing.T, w *azuretest.World, spec *azure.Spec, set azure.Settings) map[string]azure.Row {
	t.Helper()
	o := observe(t, w, spec)
	if err := o.Refused(); err != nil {
		t.Fatal(err)
	}
	out := map[string]azure.Row{}
	for _, r := range azure.Judge(spec, o, set) {
		out[r.ID] = r
	}
	return out
}

func TestWellConfiguredClusterPassesEveryRow(t *testing.T) {
	got := rows(t, world(t, "testdata/good"), azuretest.Spec(), settings)
	if len(got) != 9 {
		t.Fatalf("want 9 rows, got %d", len(got))
	}
	for id, r := range got {
		if r.Status != azure.Pass {
			t.Errorf("%s: %s (%s) resource %s value %s", id, r.Status, r.Why, r.Resource, r.Value)
		}
		if r.Resource == "" || !strings.HasPrefix(r.Resource, "/subscriptions/"+azuretest.Subscription) || r.Value == "" {
			t.Errorf("%s names no resource or value: %+v", id, r)
		}
	}
	if v := got[azure.RowEjection].Value; v != "interval 10s × threshold 3 = 30s" {
		t.Errorf("ejection bound %q", v)
	}
	if v := got[azure.RowPolling].Value; !strings.Contains(v, "OCTO1 ← fe:10943") || !strings.Contains(v, "OCTO3 ← fe:10945") {
		t.Errorf("polling value %q", v)
	}
}

// The misconfigured set: probe accepting 418, 20 s request
// timeout, WAF upload limit 100 MB, no affinity, one shared polling port.
func TestMisconfiguredClusterFailsTheRightRows(t *testing.T) {
	got := rows(t, world(t, "testdata/good", "testdata/misconfigured"), azuretest.Spec(), settings)
	agw := "/subscriptions/" + azuretest.Subscription + "/resourceGroups/octopus-ha/providers/Microsoft.Network/applicationGateways/octo-agw"
	want := map[string]struct{ resource, value, why string }{
		azure.RowProbe:    {agw + "/probes/octo-ping", "healthy on 200-499", "accepts 418"},
		azure.RowTimeout:  {agw + "/backendHttpSettingsCollection/octo-https", "requestTimeout 20s", "before the largest package arrives"},
		azure.RowWAF:      {"/ApplicationGatewayWebApplicationFirewallPolicies/octo-waf", "file upload limit 100 MB", "above 100 MB"},
		azure.RowAffinity: {agw + "/backendHttpSettingsCollection/octo-https", "cookieBasedAffinity Disabled", "no session persistence"},
		azure.RowPolling:  {"/loadBalancers/octo-lb/loadBalancingRules/polling", "frontend port 10943 → backend pool port 10943", "one shared polling port"},
	}
	for id, r := range got {
		w, bad := want[id]
		if !bad {
			if r.Status != azure.Pass {
				t.Errorf("%s should still pass: %s (%s)", id, r.Status, r.Why)
			}
			continue
		}
		if r.Status != azure.Fail || !strings.HasSuffix(r.Resource, w.resource) || !strings.Contains(r.Value, w.value) || !strings.Contains(r.Why, w.why) {
			t.Errorf("%s: want FAIL on …%s with %q (%q), got %s on %s with %q (%q)", id, w.resource, w.value, w.why, r.Status, r.Resource, r.Value, r.Why)
		}
	}
}

func TestLoadBalancerOnly(t *testing.T) {
	spec := azuretest.Spec()
	spec.ApplicationGateway = nil
	got := rows(t, world(t, "testdata/good"), spec, settings)
	for _, id := range []string{azure.RowProbe, azure.RowTimeout, azure.RowWAF, azure.RowAffinity} {
		if got[id].Status != azure.Pass || !strings.Contains(got[id].Resource, "/loadBalancers/octo-lb") {
			t.Errorf("%s: %+v", id, got[id])
		}
	}
	if v := got[azure.RowEjection].Value; v != "interval 5s × threshold 2 = 10s" {
		t.Errorf("ejection %q", v)
	}
	got = rows(t, world(t, "testdata/good", "testdata/misconfigured"), spec, settings)
	if r := got[azure.RowAffinity]; r.Status != azure.Fail || r.Value != "loadDistribution Default" {
		t.Errorf("affinity: %+v", r)
	}
}

func TestMixedOSAndOtherRegionAndSingleDatabaseFail(t *testing.T) {
	w := world(t, "testdata/good")
	w.SetVMOS("octo2", "Linux")
	spec := azuretest.Spec()
	spec.SQL.FailoverGroup = ""
	spec.Storage.Account = "octoshare"
	got := rows(t, w, spec, settings)
	if r := got[azure.RowSameOS]; r.Status != azure.Fail || !strings.Contains(r.Value, "OCTO2 ← Linux") || !strings.Contains(r.Why, "Linux and Windows") {
		t.Errorf("same-os: %+v", r)
	}
	if r := got[azure.RowDatabase]; r.Status != azure.Fail || r.Value != "tier GeneralPurpose, zoneRedundant false, no failover group" || !strings.HasSuffix(r.Resource, "/databases/Octopus") {
		t.Errorf("database: %+v", r)
	}
}

func TestRequestTimeoutNeedsASizeAndRate(t *testing.T) {
	got := rows(t, world(t, "testdata/good"), azuretest.Spec(), azure.Settings{})
	if r := got[azure.RowTimeout]; r.Status != azure.NotRun || !strings.Contains(r.Why, "--max-package") {
		t.Errorf("timeout without settings: %+v", r)
	}
	// 3600 s at 1 MiB/s is 3.5 GiB: a 4 GiB package fails.
	got = rows(t, world(t, "testdata/good"), azuretest.Spec(), azure.Settings{MaxPackage: 4 * gib, UploadRate: 1 << 20})
	if r := got[azure.RowTimeout]; r.Status != azure.Fail || !strings.Contains(r.Value, "takes 1h8m16s") {
		t.Errorf("timeout: %+v", r)
	}
}

func TestMissingResourceFailsItsRow(t *testing.T) {
	spec := azuretest.Spec()
	spec.Storage.Share = "nope"
	got := rows(t, world(t, "testdata/good"), spec, settings)
	if r := got[azure.RowShareRegion]; r.Status != azure.NotRun || !strings.Contains(r.Why, "not found") || !strings.Contains(r.Why, "/shares/nope") {
		t.Errorf("share: %+v", r)
	}
}

func TestPermissionDeniedNamesTheRole(t *testing.T) {
	w := world(t, "testdata/good")
	w.DenyAll = true
	err := observe(t, w, azuretest.Spec()).Refused()
	if !errors.Is(err, azure.ErrPermission) || !strings.Contains(err.Error(), "needs the Reader role") || !strings.Contains(err.Error(), "AuthorizationFailed") {
		t.Fatalf("want a permission error naming Reader, got %v", err)
	}
}

func TestMissingCredentialIsExplained(t *testing.T) {
	w := world(t, "testdata/good")
	o := azuretest.Options(w, nil)
	cred := o.Credential.(interface{ SetError(error) })
	cred.SetError(&azidentity.AuthenticationFailedError{})
	c, err := azure.New(azuretest.Spec(), o)
	if err != nil {
		t.Fatal(err)
	}
	err = azure.Observe(context.Background(), c).Refused()
	if !errors.Is(err, azure.ErrCredential) || !strings.Contains(err.Error(), "az login") {
		t.Fatalf("want a credential error, got %v", err)
	}
	if w.Requests() != 0 {
		t.Errorf("%d requests reached ARM without a token", w.Requests())
	}
}

func TestThrottlingIsRetriedAfterRetryAfter(t *testing.T) {
	w := world(t, "testdata/good")
	w.Throttle, w.RetryAfter = 1, "1"
	start := time.Now()
	got := rows(t, w, azuretest.Spec(), settings)
	if took := time.Since(start); took < 900*time.Millisecond {
		t.Errorf("the 429's Retry-After: 1 was not waited (took %s)", took)
	}
	if got[azure.RowProbe].Status != azure.Pass {
		t.Errorf("probe after a throttled read: %+v", got[azure.RowProbe])
	}
	// More 429s than retries: the read fails saying so.
	w.Throttle, w.RetryAfter = 100, "0"
	o := observe(t, w, azuretest.Spec())
	if o.LBErr == nil && o.GatewayErr == nil || !strings.Contains(errors.Join(o.Errs()...).Error(), "429") {
		t.Errorf("want a 429 error, got %v", o.Errs())
	}
}

func TestValidate(t *testing.T) {
	if err := azuretest.Spec().Validate([]string{"OCTO1", "OCTO2", "OCTO3"}); err != nil {
		t.Fatal(err)
	}
	s := azuretest.Spec()
	s.Subscription = "my sub"
	s.Nodes = append(s.Nodes, azure.Node{Name: "OCTO4", VMSS: "ss"}, azure.Node{Name: "OCTO1", VM: "a/b"})
	s.LoadBalancer, s.ApplicationGateway = nil, nil
	err := s.Validate([]string{"OCTO1", "OCTO2", "OCTO3", "OCTO5"})
	for _, want := range []string{"subscription \"my sub\"", "vmss needs the instance ID", "node OCTO1 is listed twice", "\"a/b\" is not an Azure resource name", "external node OCTO5 has no VM", "OCTO4 is not a node under external.nodes", "loadBalancer or applicationGateway is required"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q in %v", want, err)
		}
	}
}
