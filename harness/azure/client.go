package azure

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v6"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v6"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/sql/armsql"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/storage/armstorage"
)

// Options configures the ARM clients.
type Options struct {
	// Credential; nil: azidentity.NewDefaultAzureCredential (environment,
	// workload identity, managed identity, Azure CLI, …).
	Credential azcore.TokenCredential
	// Transport replaces the HTTP client (tests: the SDK's fake servers).
	Transport policy.Transporter
	// CallTimeout bounds each ARM call, a long-running one included (its
	// polling too); default 10 minutes, since a VM start may take minutes.
	CallTimeout time.Duration
	// MaxRetries on throttling (429) and transient errors; default 5.
	// azcore's retry policy waits what Retry-After says (up to
	// MaxRetryDelay), else backs off exponentially from RetryDelay.
	MaxRetries    int32
	RetryDelay    time.Duration // default 2s
	MaxRetryDelay time.Duration // default 2 minutes: ARM's throttling windows are minutes long
	// PollEvery is how often long-running operations are polled when
	// ARM sends no Retry-After; default 5s.
	PollEvery time.Duration
	Logger    *slog.Logger
}

// Clients are the ARM clients certification and the faults use.
type Clients struct {
	Spec          *Spec
	Log           *slog.Logger
	callTimeout   time.Duration
	pollEvery     time.Duration
	LoadBalancers *armnetwork.LoadBalancersClient
	Gateways      *armnetwork.ApplicationGatewaysClient
	WAFPolicies   *armnetwork.WebApplicationFirewallPoliciesClient
	Interfaces    *armnetwork.InterfacesClient
	SecurityRules *armnetwork.SecurityRulesClient
	NSGs          *armnetwork.SecurityGroupsClient
	VMs           *armcompute.VirtualMachinesClient
	ScaleSetVMs   *armcompute.VirtualMachineScaleSetVMsClient
	FailoverGrps  *armsql.FailoverGroupsClient
	Databases     *armsql.DatabasesClient
	Accounts      *armstorage.AccountsClient
	Shares        *armstorage.FileSharesClient
}

// New builds the clients for spec's subscription. No request is made:
// a missing credential shows on the first call (see Explain).
func New(spec *Spec, o Options) (*Clients, error) {
	cred := o.Credential
	if cred == nil {
		c, err := azidentity.NewDefaultAzureCredential(nil)
		if err != nil {
			return nil, fmt.Errorf("azure: no credential: %w (log in with `az login`, set AZURE_TENANT_ID/AZURE_CLIENT_ID and a secret or certificate, or run where a managed identity is assigned)", err)
		}
		cred = c
	}
	if o.CallTimeout <= 0 {
		o.CallTimeout = 10 * time.Minute
	}
	if o.MaxRetries == 0 {
		o.MaxRetries = 5
	}
	if o.RetryDelay <= 0 {
		o.RetryDelay = 2 * time.Second
	}
	if o.MaxRetryDelay <= 0 {
		o.MaxRetryDelay = 2 * time.Minute
	}
	if o.PollEvery <= 0 {
		o.PollEvery = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	co := &arm.ClientOptions{ClientOptions: azcore.ClientOptions{
		Retry: policy.RetryOptions{
			MaxRetries: o.MaxRetries, RetryDelay: o.RetryDelay, MaxRetryDelay: o.MaxRetryDelay,
			// Each try is bounded too, so a hung connection is retried
			// rather than waited on until CallTimeout.
			TryTimeout: 2 * time.Minute,
			// azcore's defaults (408, 429, 500, 502, 503, 504) spelled out:
			// 429 is ARM's throttling answer, with Retry-After.
			StatusCodes: []int{http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout},
		},
	}}
	if o.Transport != nil {
		co.Transport = o.Transport
	}
	c := &Clients{Spec: spec, Log: o.Logger, callTimeout: o.CallTimeout, pollEvery: o.PollEvery}
	sub := spec.Subscription
	net, err := armnetwork.NewClientFactory(sub, cred, co)
	if err != nil {
		return nil, fmt.Errorf("azure: network clients: %w", err)
	}
	comp, err := armcompute.NewClientFactory(sub, cred, co)
	if err != nil {
		return nil, fmt.Errorf("azure: compute clients: %w", err)
	}
	sql, err := armsql.NewClientFactory(sub, cred, co)
	if err != nil {
		return nil, fmt.Errorf("azure: sql clients: %w", err)
	}
	st, err := armstorage.NewClientFactory(sub, cred, co)
	if err != nil {
		return nil, fmt.Errorf("azure: storage clients: %w", err)
	}
	c.LoadBalancers = net.NewLoadBalancersClient()
	c.Gateways = net.NewApplicationGatewaysClient()
	c.WAFPolicies = net.NewWebApplicationFirewallPoliciesClient()
	c.Interfaces = net.NewInterfacesClient()
	c.SecurityRules = net.NewSecurityRulesClient()
	c.NSGs = net.NewSecurityGroupsClient()
	c.VMs = comp.NewVirtualMachinesClient()
	c.ScaleSetVMs = comp.NewVirtualMachineScaleSetVMsClient()
	c.FailoverGrps = sql.NewFailoverGroupsClient()
	c.Databases = sql.NewDatabasesClient()
	c.Accounts = st.NewAccountsClient()
	c.Shares = st.NewFileSharesClient()
	return c, nil
}

// PollEvery is how often long-running operations are polled.
func (c *Clients) PollEvery() time.Duration { return c.pollEvery }

// Call runs one ARM call bounded by the call timeout, logs it with its
// resource ID, and explains a failure (see Explain). role is the built-in
// role the call needs, named when ARM refuses it.
func (c *Clients) Call(ctx context.Context, op, resourceID, role string, f func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, c.callTimeout)
	defer cancel()
	start := time.Now()
	err := f(ctx)
	if err != nil {
		err = Explain(op, resourceID, role, err)
		c.Log.Warn("azure call failed", "op", op, "resource", resourceID, "took", time.Since(start).Round(time.Millisecond), "err", err)
		return err
	}
	c.Log.Info("azure call", "op", op, "resource", resourceID, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// ErrPermission is wrapped when ARM refuses a call (403), and
// ErrCredential when no credential could be had.
var (
	ErrPermission = errors.New("permission denied")
	ErrCredential = errors.New("no Azure credential")
	ErrNotFound   = errors.New("not found")
)

// Explain turns an ARM failure into what an operator acts on: the role
// missing, the login missing, the resource not there.
func Explain(op, resourceID, role string, err error) error {
	var re *azcore.ResponseError
	var af *azidentity.AuthenticationFailedError
	switch {
	case errors.As(err, &re) && re.StatusCode == http.StatusForbidden:
		return fmt.Errorf("azure: %s %s: %w (%s): the identity needs the %s role on it (or its resource group): %v", op, resourceID, ErrPermission, re.ErrorCode, role, err)
	case errors.As(err, &re) && re.StatusCode == http.StatusUnauthorized:
		return fmt.Errorf("azure: %s %s: %w: ARM refused the token (%s): log in again (`az login`) or check AZURE_TENANT_ID", op, resourceID, ErrCredential, re.ErrorCode)
	case errors.As(err, &re) && re.StatusCode == http.StatusNotFound:
		return fmt.Errorf("azure: %s %s: %w (%s): check the name in the azure: section", op, resourceID, ErrNotFound, re.ErrorCode)
	case errors.As(err, &af):
		return fmt.Errorf("azure: %s %s: %w: %v (log in with `az login`, set AZURE_TENANT_ID/AZURE_CLIENT_ID and a secret or certificate, or run where a managed identity is assigned)", op, resourceID, ErrCredential, firstLine(err.Error()))
	case isCredentialErr(err):
		return fmt.Errorf("azure: %s %s: %w: %v (log in with `az login`, or set AZURE_TENANT_ID/AZURE_CLIENT_ID and a secret)", op, resourceID, ErrCredential, firstLine(err.Error()))
	}
	return fmt.Errorf("azure: %s %s: %w", op, resourceID, err)
}

// isCredentialErr recognises azidentity's "credential unavailable"
// errors, which it does not export as a type.
func isCredentialErr(err error) bool {
	s := err.Error()
	return strings.Contains(s, "DefaultAzureCredential") || strings.Contains(s, "CredentialUnavailable") || strings.Contains(s, "credential unavailable")
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// Roles named in permission errors and in docs/azure-certify.md.
const (
	RoleReader            = "Reader"
	RoleVMContributor     = "Virtual Machine Contributor"
	RoleNetworkContrib    = "Network Contributor"
	RoleSQLServerContrib  = "SQL Server Contributor"
	RoleStorageAcctReader = "Reader" // the share's properties need only Reader (no keys are listed)
)
