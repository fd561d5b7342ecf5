package external

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	azfake "github.com/Azure/azure-sdk-for-go/sdk/azcore/fake"

	"github.com/octoha/octoha/harness/azure"
	"github.com/octoha/octoha/harness/azure/azuretest"
	"github.com/octoha/octoha/harness/azure/faults"
	"github.com/octoha/octoha/harness/cluster"
)

func azureSpec(allow bool) cluster.Spec {
	return cluster.Spec{Provider: cluster.ProviderExternal, Azure: azuretest.Spec(),
		External: &cluster.ExternalSpec{LBURL: "http://127.0.0.1:1", AllowDestructive: allow}}
}

func TestAzureKillAndRestartNeedOnlyAllowDestructive(t *testing.T) {
	for _, cp := range []cluster.Capability{cluster.CapKill, cluster.CapRestart} {
		if err := CanSpec(azureSpec(true), cp); err != nil {
			t.Errorf("%s with azure and --allow-destructive: %v", cp, err)
		}
		if err := CanSpec(azureSpec(false), cp); err == nil {
			t.Errorf("%s without --allow-destructive was allowed", cp)
		}
	}
	if err := CanSpec(azureSpec(true), cluster.CapPause); err == nil {
		t.Error("pause has no Azure fault and no hook: it must be refused")
	}
}

// KillNode powers the VM off and StartNode starts that VM again; StopNode
// stops the service and StartNode starts the service (the ping wait is
// the hook path's, exercised in external_test.go).
func TestAzureNodeFaultsAndTheirStart(t *testing.T) {
	w, err := azuretest.Load("../../azure/testdata/good")
	if err != nil {
		t.Fatal(err)
	}
	spec := azureSpec(true)
	o := azuretest.Options(w, nil)
	o.Credential = &azfake.TokenCredential{}
	azc, err := azure.New(spec.Azure, o)
	if err != nil {
		t.Fatal(err)
	}
	c := &Cluster{spec: spec, allow: true, log: slog.New(slog.NewTextHandler(io.Discard, nil)), hookTO: time.Minute, az: faults.New(azc), azDone: map[string]string{}}
	ctx := context.Background()
	if err := c.KillNode(ctx, "OCTO1"); err != nil {
		t.Fatal(err)
	}
	if err := c.StopNode(ctx, "OCTO2"); err != nil {
		t.Fatal(err)
	}
	if !w.Stopped("octo1") || !w.ServiceStopped("octo2") {
		t.Fatal("faults did not land")
	}
	for _, n := range []string{"OCTO1", "OCTO2"} {
		if err := c.start(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	if w.Stopped("octo1") || w.ServiceStopped("octo2") {
		t.Fatal("start did not undo")
	}
	if got := len(w.Mutations()); got != 4 {
		t.Fatalf("want 4 changes (power off, stop, start, start service), got %v", w.Mutations())
	}
}
