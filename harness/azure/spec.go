// Package azure reads the configuration of an Octopus HA cluster that runs
// on Azure (its load balancer or Application Gateway, WAF policy, VMs,
// Azure SQL and Azure Files) through Azure Resource Manager, and judges it
// against the seed's advice: the certificate's configuration rows. It
// changes nothing; the faults are in the faults subpackage.
package azure

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Spec is the azure: section of a cluster YAML: where each part of the
// cluster lives. Nothing in it is secret; credentials come from
// azidentity's default chain (environment, managed identity, Azure CLI).
type Spec struct {
	Subscription  string `yaml:"subscription"`
	ResourceGroup string `yaml:"resourceGroup"`
	// Nodes maps each Octopus node (by its name under external.nodes) to
	// its VM or VMSS instance.
	Nodes []Node `yaml:"nodes"`
	// LoadBalancer and/or ApplicationGateway: the HTTP rows judge the
	// gateway when there is one, else the load balancer; the polling row
	// judges the load balancer's inbound NAT rules.
	LoadBalancer       *Balancer `yaml:"loadBalancer,omitempty"`
	ApplicationGateway *Balancer `yaml:"applicationGateway,omitempty"`
	// WAFPolicy names the gateway's WAF policy when it is not the one the
	// gateway links (firewallPolicy); usually left empty.
	WAFPolicy string    `yaml:"wafPolicy,omitempty"`
	SQL       *SQL      `yaml:"sql,omitempty"`
	Storage   *Storage  `yaml:"storage,omitempty"`
	NSG       string    `yaml:"nsg,omitempty"` // the nodes' NSG (subnet or NIC), where deny rules go
	Polling   *Polling  `yaml:"polling,omitempty"`
	Faults    *FaultCfg `yaml:"faults,omitempty"`
}

// Node is one Octopus node's VM: a VM name, or a scale set and instance.
type Node struct {
	Name     string `yaml:"name"`
	VM       string `yaml:"vm,omitempty"`
	VMSS     string `yaml:"vmss,omitempty"`
	Instance string `yaml:"instance,omitempty"`
	// NSG overrides Spec.NSG for this node (an NSG on its NIC).
	NSG string `yaml:"nsg,omitempty"`
}

// Balancer names a load balancer or gateway and the backend pool the
// nodes are in.
type Balancer struct {
	Name        string `yaml:"name"`
	BackendPool string `yaml:"backendPool"`
	// ResourceGroup, when the balancer lives elsewhere.
	ResourceGroup string `yaml:"resourceGroup,omitempty"`
}

// SQL names the Azure SQL server, database and (optional) failover group.
type SQL struct {
	Server        string `yaml:"server"`
	Database      string `yaml:"database"`
	FailoverGroup string `yaml:"failoverGroup,omitempty"`
	// Address is what the NSG deny rule blocks (CIDR or IP of a private
	// endpoint); default the service tag Sql.
	Address       string `yaml:"address,omitempty"`
	ResourceGroup string `yaml:"resourceGroup,omitempty"`
}

// Storage names the storage account and the Azure Files share.
type Storage struct {
	Account       string `yaml:"account"`
	Share         string `yaml:"share"`
	Address       string `yaml:"address,omitempty"` // default the service tag Storage
	ResourceGroup string `yaml:"resourceGroup,omitempty"`
}

// Polling is the Tentacle polling port the nodes listen on (10943 by
// Octopus's default).
type Polling struct {
	Port int `yaml:"port"`
}

// FaultCfg configures the Run Command faults.
type FaultCfg struct {
	// Service is the Octopus Server's service name on the VMs (Windows:
	// OctopusDeploy; Linux: octopus-server or your unit's name).
	Service string `yaml:"service,omitempty"`
}

// DefaultPollingPort is Octopus's polling (Tentacle) port.
const DefaultPollingPort = 10943

// DefaultService is the Windows service name of Octopus Server.
const DefaultService = "OctopusDeploy"

var (
	guidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	// Azure resource names: letters, digits, '.', '_', '-', '(' and ')';
	// anything else (a space, a slash) would change the resource ID.
	nameRE    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._()-]{0,89}$`)
	serviceRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,79}$`)
)

// Validate checks the section; nodes are the names under external.nodes
// (nil: not checked). Every problem is reported, each naming its field.
func (s *Spec) Validate(nodes []string) error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("azure."+format, args...)) }
	name := func(field, v string, required bool) {
		switch {
		case v == "" && required:
			bad("%s is required", field)
		case v != "" && !nameRE.MatchString(v):
			bad("%s %q is not an Azure resource name", field, v)
		}
	}
	if !guidRE.MatchString(s.Subscription) {
		bad("subscription %q: want the subscription ID (a GUID), not its display name", s.Subscription)
	}
	name("resourceGroup", s.ResourceGroup, true)
	if len(s.Nodes) == 0 {
		bad("nodes: list each Octopus node's VM (name and vm, or vmss and instance)")
	}
	seen := map[string]bool{}
	for i, n := range s.Nodes {
		f := fmt.Sprintf("nodes[%d]", i)
		if n.Name == "" {
			bad("%s needs the node's name (as under external.nodes)", f)
		} else if seen[n.Name] {
			bad("%s: node %s is listed twice", f, n.Name)
		}
		seen[n.Name] = true
		switch {
		case n.VM != "" && n.VMSS != "":
			bad("%s (%s): give vm or vmss+instance, not both", f, n.Name)
		case n.VM == "" && n.VMSS == "":
			bad("%s (%s): needs vm (or vmss and instance)", f, n.Name)
		case n.VMSS != "" && n.Instance == "":
			bad("%s (%s): vmss needs the instance ID", f, n.Name)
		}
		name(f+".vm", n.VM, false)
		name(f+".vmss", n.VMSS, false)
		name(f+".nsg", n.NSG, false)
		if n.Instance != "" && strings.ContainsAny(n.Instance, "/?#") {
			bad("%s.instance %q is not a VMSS instance ID", f, n.Instance)
		}
	}
	if nodes != nil {
		for _, want := range nodes {
			if !seen[want] {
				bad("nodes: external node %s has no VM here", want)
			}
		}
		for _, n := range s.Nodes {
			if n.Name != "" && !contains(nodes, n.Name) {
				bad("nodes: %s is not a node under external.nodes", n.Name)
			}
		}
	}
	if s.LoadBalancer == nil && s.ApplicationGateway == nil {
		bad("loadBalancer or applicationGateway is required (name and backendPool)")
	}
	for field, b := range map[string]*Balancer{"loadBalancer": s.LoadBalancer, "applicationGateway": s.ApplicationGateway} {
		if b == nil {
			continue
		}
		name(field+".name", b.Name, true)
		name(field+".backendPool", b.BackendPool, true)
		name(field+".resourceGroup", b.ResourceGroup, false)
	}
	name("wafPolicy", s.WAFPolicy, false)
	name("nsg", s.NSG, false)
	if s.SQL != nil {
		name("sql.server", s.SQL.Server, true)
		name("sql.database", s.SQL.Database, true)
		name("sql.failoverGroup", s.SQL.FailoverGroup, false)
		name("sql.resourceGroup", s.SQL.ResourceGroup, false)
	}
	if s.Storage != nil {
		name("storage.account", s.Storage.Account, true)
		name("storage.share", s.Storage.Share, true)
		name("storage.resourceGroup", s.Storage.ResourceGroup, false)
	}
	if s.Polling != nil && (s.Polling.Port < 1 || s.Polling.Port > 65535) {
		bad("polling.port %d out of range", s.Polling.Port)
	}
	if s.Faults != nil && s.Faults.Service != "" && !serviceRE.MatchString(s.Faults.Service) {
		bad("faults.service %q is not a service name (letters, digits, '.', '_', '@', '-')", s.Faults.Service)
	}
	return errors.Join(errs...)
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// PollingPort is the nodes' polling port.
func (s *Spec) PollingPort() int {
	if s.Polling != nil && s.Polling.Port > 0 {
		return s.Polling.Port
	}
	return DefaultPollingPort
}

// Service is the Octopus Server service name the Run Command faults stop.
func (s *Spec) Service() string {
	if s.Faults != nil && s.Faults.Service != "" {
		return s.Faults.Service
	}
	return DefaultService
}

// Node returns the node named name.
func (s *Spec) Node(name string) (Node, bool) {
	for _, n := range s.Nodes {
		if n.Name == name {
			return n, true
		}
	}
	return Node{}, false
}

// NSGOf is the NSG deny rules for node go into ("" when none is named).
func (s *Spec) NSGOf(n Node) string {
	if n.NSG != "" {
		return n.NSG
	}
	return s.NSG
}

func (s *Spec) rg(override string) string {
	if override != "" {
		return override
	}
	return s.ResourceGroup
}

// Resource IDs, as ARM names them (for logs, rows and the plan).

func (s *Spec) base(rg string) string {
	return "/subscriptions/" + s.Subscription + "/resourceGroups/" + rg
}

// VMID is the resource ID of n's VM (or VMSS instance).
func (s *Spec) VMID(n Node) string {
	if n.VMSS != "" {
		return s.base(s.ResourceGroup) + "/providers/Microsoft.Compute/virtualMachineScaleSets/" + n.VMSS + "/virtualMachines/" + n.Instance
	}
	return s.base(s.ResourceGroup) + "/providers/Microsoft.Compute/virtualMachines/" + n.VM
}

// LoadBalancerID is the load balancer's resource ID.
func (s *Spec) LoadBalancerID() string {
	return s.base(s.rg(s.LoadBalancer.ResourceGroup)) + "/providers/Microsoft.Network/loadBalancers/" + s.LoadBalancer.Name
}

// GatewayID is the Application Gateway's resource ID.
func (s *Spec) GatewayID() string {
	return s.base(s.rg(s.ApplicationGateway.ResourceGroup)) + "/providers/Microsoft.Network/applicationGateways/" + s.ApplicationGateway.Name
}

// NSGID is an NSG's resource ID.
func (s *Spec) NSGID(name string) string {
	return s.base(s.ResourceGroup) + "/providers/Microsoft.Network/networkSecurityGroups/" + name
}

// SQLServerID is the SQL server's resource ID.
func (s *Spec) SQLServerID() string {
	return s.base(s.rg(s.SQL.ResourceGroup)) + "/providers/Microsoft.Sql/servers/" + s.SQL.Server
}

// FailoverGroupID is the failover group's resource ID.
func (s *Spec) FailoverGroupID() string {
	return s.SQLServerID() + "/failoverGroups/" + s.SQL.FailoverGroup
}

// DatabaseID is the database's resource ID.
func (s *Spec) DatabaseID() string { return s.SQLServerID() + "/databases/" + s.SQL.Database }

// StorageAccountID is the storage account's resource ID.
func (s *Spec) StorageAccountID() string {
	return s.base(s.rg(s.Storage.ResourceGroup)) + "/providers/Microsoft.Storage/storageAccounts/" + s.Storage.Account
}

// ShareID is the file share's resource ID.
func (s *Spec) ShareID() string {
	return s.StorageAccountID() + "/fileServices/default/shares/" + s.Storage.Share
}

// WAFPolicyID is the resource ID of a WAF policy named in the spec.
func (s *Spec) WAFPolicyID() string {
	return s.base(s.ResourceGroup) + "/providers/Microsoft.Network/ApplicationGatewayWebApplicationFirewallPolicies/" + s.WAFPolicy
}
