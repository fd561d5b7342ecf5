package azuretest

import (
	"io"
	"log/slog"
	"time"

	azfake "github.com/Azure/azure-sdk-for-go/sdk/azcore/fake"

	"github.com/octoha/octoha/harness/azure"
)

// Subscription and ResourceGroup of the test data.
const (
	Subscription  = "11111111-2222-3333-4444-555555555555"
	ResourceGroup = "octopus-ha"
)

// Spec is the azure: section that describes the test data's cluster:
// three Windows VMs behind an Application Gateway (HTTP) and a load
// balancer (polling NAT rules), a failover group and a Files share.
func Spec() *azure.Spec {
	return &azure.Spec{
		Subscription: Subscription, ResourceGroup: ResourceGroup,
		Nodes: []azure.Node{
			{Name: "OCTO1", VM: "octo1"}, {Name: "OCTO2", VM: "octo2"}, {Name: "OCTO3", VM: "octo3"},
		},
		LoadBalancer:       &azure.Balancer{Name: "octo-lb", BackendPool: "octo-pool"},
		ApplicationGateway: &azure.Balancer{Name: "octo-agw", BackendPool: "octo-pool"},
		SQL:                &azure.SQL{Server: "octo-sql", Database: "Octopus", FailoverGroup: "octo-fg"},
		Storage:            &azure.Storage{Account: "octoshare", Share: "octopus"},
		NSG:                "octo-nodes-nsg",
	}
}

// Options are client options that reach w with a fake token, fast
// polling and retries, and a silent log (nil logger: discard).
func Options(w *World, log *slog.Logger) azure.Options {
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return azure.Options{
		Credential: &azfake.TokenCredential{}, Transport: w.Transport(),
		CallTimeout: 30 * time.Second, RetryDelay: 10 * time.Millisecond, MaxRetries: 3,
		PollEvery: 10 * time.Millisecond, Logger: log,
	}
}
