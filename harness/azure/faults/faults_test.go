package faults_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v6"

	"github.com/octoha/octoha/harness/azure"
	"github.com/octoha/octoha/harness/azure/azuretest"
	"github.com/octoha/octoha/harness/azure/faults"
)

const nsg = "octo-nodes-nsg"

func setup(t *testing.T) (*azuretest.World, *faults.Injector) {
	t.Helper()
	w, err := azuretest.Load("../testdata/good")
	if err != nil {
		t.Fatal(err)
	}
	c, err := azure.New(azuretest.Spec(), azuretest.Options(w, nil))
	if err != nil {
		t.Fatal(err)
	}
	return w, faults.New(c)
}

func undo(t *testing.T, s *faults.Stack) {
	t.Helper()
	if err := s.UndoAll(context.Background(), 30*time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestPowerOffAndUndo(t *testing.T) {
	w, in := setup(t)
	var s faults.Stack
	if err := in.PowerOff(context.Background(), &s, "OCTO2"); err != nil {
		t.Fatal(err)
	}
	if !w.Stopped("octo2") || s.Len() != 1 {
		t.Fatalf("octo2 stopped %t, %d undos", w.Stopped("octo2"), s.Len())
	}
	undo(t, &s)
	if w.Stopped("octo2") {
		t.Fatal("undo did not start the VM")
	}
	if got := w.Mutations(); !slices.Equal(got, []string{"power off octo2", "start octo2"}) {
		t.Fatalf("mutations %v", got)
	}
}

func TestRestartVM(t *testing.T) {
	w, in := setup(t)
	var s faults.Stack
	if err := in.RestartVM(context.Background(), &s, "OCTO1"); err != nil {
		t.Fatal(err)
	}
	undo(t, &s)
	if got := w.Mutations(); !slices.Equal(got, []string{"restart octo1", "start octo1"}) {
		t.Fatalf("mutations %v", got)
	}
}

func TestServiceStopAndStartThroughRunCommand(t *testing.T) {
	w, in := setup(t)
	var s faults.Stack
	if err := in.StopService(context.Background(), &s, "OCTO3"); err != nil {
		t.Fatal(err)
	}
	if !w.ServiceStopped("octo3") {
		t.Fatal("service not stopped")
	}
	undo(t, &s)
	if w.ServiceStopped("octo3") {
		t.Fatal("undo did not start the service")
	}
	m := w.Mutations()
	if len(m) != 2 || m[0] != "run command on octo3: RunPowerShellScript Stop-Service -Name 'OctopusDeploy' -Force" || m[1] != "run command on octo3: RunPowerShellScript Start-Service -Name 'OctopusDeploy'" {
		t.Fatalf("mutations %v", m)
	}
	if in := faults.ServiceScript("Linux", "octopus-server", "stop"); *in.CommandID != "RunShellScript" || *in.Script[0] != "systemctl stop 'octopus-server'" {
		t.Fatalf("linux script %s %s", *in.CommandID, *in.Script[0])
	}
}

func TestDenyRulesAndUndo(t *testing.T) {
	w, in := setup(t)
	// An existing rule holds priority 100 outbound: the deny takes 101.
	p, out, allow := int32(100), armnetwork.SecurityRuleDirectionOutbound, armnetwork.SecurityRuleAccessAllow
	w.AddRule(nsg, "allow-sql", armnetwork.SecurityRule{Properties: &armnetwork.SecurityRulePropertiesFormat{Priority: &p, Direction: &out, Access: &allow}})
	var s faults.Stack
	for _, target := range []string{faults.TargetDB, faults.TargetShare, faults.TargetProbe} {
		if err := in.Deny(context.Background(), &s, "OCTO2", target); err != nil {
			t.Fatal(err)
		}
	}
	rules := w.Rules(nsg)
	db := rules[faults.RuleName("OCTO2", faults.TargetDB)].Properties
	if db == nil || *db.Priority != 101 || *db.Access != armnetwork.SecurityRuleAccessDeny || *db.SourceAddressPrefix != "10.0.1.5" || *db.DestinationAddressPrefix != "Sql" || *db.DestinationPortRanges[1] != "11000-11999" {
		t.Fatalf("db rule %+v", db)
	}
	share := rules[faults.RuleName("OCTO2", faults.TargetShare)].Properties
	if share == nil || *share.Priority != 102 || *share.DestinationAddressPrefix != "Storage" || *share.DestinationPortRange != "445" {
		t.Fatalf("share rule %+v", share)
	}
	probe := rules[faults.RuleName("OCTO2", faults.TargetProbe)].Properties
	if probe == nil || *probe.Priority != 100 || *probe.Direction != armnetwork.SecurityRuleDirectionInbound || *probe.SourceAddressPrefix != "AzureLoadBalancer" || *probe.DestinationAddressPrefix != "10.0.1.5" {
		t.Fatalf("probe rule %+v", probe)
	}
	undo(t, &s)
	if rules := w.Rules(nsg); len(rules) != 1 || rules["allow-sql"].Properties == nil {
		t.Fatalf("after undo: %v", rules)
	}
}

func TestFailoverAndFailback(t *testing.T) {
	w, in := setup(t)
	var s faults.Stack
	if err := in.Failover(context.Background(), &s); err != nil {
		t.Fatal(err)
	}
	if w.Primary() != "octo-sql-dr" {
		t.Fatalf("primary %s after failover", w.Primary())
	}
	undo(t, &s)
	if w.Primary() != "octo-sql" {
		t.Fatalf("primary %s after failback", w.Primary())
	}
	// Undo of a failover that never landed changes nothing.
	s.Push("failback", func(ctx context.Context) error {
		return in.Failback(ctx, mustID(t, azuretest.Spec().SQLServerID()))
	})
	before := len(w.Mutations())
	undo(t, &s)
	if len(w.Mutations()) != before {
		t.Fatalf("a failback to the primary failed over: %v", w.Mutations())
	}
}

// An interrupted run: the power-off lands, its answer never comes, the
// run's context is cancelled; the undo still starts the VM.
func TestInterruptedRunStillUndoes(t *testing.T) {
	w, in := setup(t)
	hold := make(chan struct{})
	w.HoldPowerOffs(hold)
	var s faults.Stack
	if err := in.Deny(context.Background(), &s, "OCTO1", faults.TargetDB); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.PowerOff(ctx, &s, "OCTO1") }()
	<-hold
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("power off: want context.Canceled, got %v", err)
	}
	if !w.Stopped("octo1") {
		t.Fatal("the power-off should have landed")
	}
	w.HoldPowerOffs(nil)
	if err := s.UndoAll(ctx, 30*time.Second); err != nil { // ctx is cancelled: UndoAll must not care
		t.Fatal(err)
	}
	if w.Stopped("octo1") || len(w.Rules(nsg)) != 0 {
		t.Fatalf("after undo: stopped %t, rules %v", w.Stopped("octo1"), w.Rules(nsg))
	}
}

func TestPermissionDeniedInjectsNothing(t *testing.T) {
	w, in := setup(t)
	w.DenyWrites = true
	var s faults.Stack
	for name, f := range map[string]func() error{
		"power off": func() error { return in.PowerOff(context.Background(), &s, "OCTO1") },
		"deny":      func() error { return in.Deny(context.Background(), &s, "OCTO1", faults.TargetShare) },
		"failover":  func() error { return in.Failover(context.Background(), &s) },
	} {
		err := f()
		if !errors.Is(err, azure.ErrPermission) {
			t.Fatalf("%s: want a permission error, got %v", name, err)
		}
		role := map[string]string{"power off": azure.RoleVMContributor, "deny": azure.RoleNetworkContrib, "failover": azure.RoleSQLServerContrib}[name]
		if !strings.Contains(err.Error(), "needs the "+role+" role") {
			t.Errorf("%s: the error does not name %s: %v", name, role, err)
		}
	}
	_ = s.UndoAll(context.Background(), 5*time.Second) // refused too: nothing to undo
	if m := w.Mutations(); len(m) != 0 {
		t.Fatalf("something was injected: %v", m)
	}
	if w.Stopped("octo1") || len(w.Rules(nsg)) != 0 || w.Primary() != "octo-sql" {
		t.Fatal("state changed")
	}
}

func TestThrottledInjectionIsRetried(t *testing.T) {
	w, in := setup(t)
	w.Throttle, w.RetryAfter = 2, "0"
	var s faults.Stack
	if err := in.PowerOff(context.Background(), &s, "OCTO1"); err != nil {
		t.Fatal(err)
	}
	undo(t, &s)
	if w.Stopped("octo1") {
		t.Fatal("not started")
	}
}

func TestUnknownNodeAndTarget(t *testing.T) {
	_, in := setup(t)
	var s faults.Stack
	if err := in.PowerOff(context.Background(), &s, "OCTO9"); err == nil || !strings.Contains(err.Error(), `no node "OCTO9"`) {
		t.Fatal(err)
	}
	if err := in.Deny(context.Background(), &s, "OCTO1", "lb"); err == nil || !strings.Contains(err.Error(), "want db, share or probe") {
		t.Fatal(err)
	}
	if s.Len() != 0 {
		t.Fatal("a refused fault registered an undo")
	}
}

func mustID(t *testing.T, id string) *arm.ResourceID {
	t.Helper()
	r, err := arm.ParseResourceID(id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
