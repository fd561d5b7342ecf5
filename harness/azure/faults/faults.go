// Package faults injects an Octopus HA cluster's faults through Azure's
// own API: restart, power off / start a node's VM, stop / start the
// Octopus service through Run Command, an NSG deny rule between a node
// and the database, the share or the load balancer's probe source, and a
// planned failover (and failback) of the SQL failover group. Every fault
// registers its undo before it is injected, and the undo runs even when
// the run's context is cancelled.
package faults

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v6"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v6"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/sql/armsql"

	"github.com/octoha/octoha/harness/azure"
)

// Undoer keeps recoveries (nemesis.Undoer has the same shape, so the
// runner's recovery stack serves here too).
type Undoer interface {
	Push(what string, undo func(ctx context.Context) error)
}

// Stack is an Undoer that runs its recoveries last-in first-out.
type Stack struct {
	mu    sync.Mutex
	items []undoItem
}

type undoItem struct {
	what string
	undo func(ctx context.Context) error
}

// Push implements Undoer.
func (s *Stack) Push(what string, undo func(ctx context.Context) error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.items = append(s.items, undoItem{what, undo})
}

// Len is how many recoveries wait.
func (s *Stack) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.items)
}

// UndoAll runs every recovery, newest first, whatever ctx's state: an
// interrupted run still removes its rules and starts its VMs. Each gets
// timeout; every failure is returned.
func (s *Stack) UndoAll(ctx context.Context, timeout time.Duration) error {
	s.mu.Lock()
	items := s.items
	s.items = nil
	s.mu.Unlock()
	ctx = context.WithoutCancel(ctx)
	var errs []error
	for i := len(items) - 1; i >= 0; i-- {
		uctx, cancel := context.WithTimeout(ctx, timeout)
		if err := items[i].undo(uctx); err != nil {
			errs = append(errs, fmt.Errorf("undo %s: %w", items[i].what, err))
		}
		cancel()
	}
	return errors.Join(errs...)
}

// Injector injects faults into the resources an azure.Spec names.
type Injector struct {
	c   *azure.Clients
	log *slog.Logger
	// UndoTimeout bounds each recovery; default 15 minutes (a VM start).
	UndoTimeout time.Duration
}

// New returns an injector over c.
func New(c *azure.Clients) *Injector {
	return &Injector{c: c, log: c.Log, UndoTimeout: 15 * time.Minute}
}

// Targets of an NSG deny rule.
const (
	TargetDB    = "db"
	TargetShare = "share"
	TargetProbe = "probe"
)

// ProbeSource is the address Azure's health probes come from (service tag
// AzureLoadBalancer); load-balancer-custom-probe-overview.md suggests an
// NSG rule denying it to simulate a probe failure.
const ProbeSource = "168.63.129.16"

// undo registers f under what, then (for Run) runs the fault. The
// recovery is registered first so an injection that lands but whose
// answer is lost (a cancelled context, a timeout) is still undone.
func (in *Injector) inject(ctx context.Context, u Undoer, what string, undo, do func(ctx context.Context) error) error {
	if u == nil {
		return errors.New("faults: an Undoer is required (the recovery is registered before the fault)")
	}
	u.Push(what, undo)
	in.log.Info("azure fault", "fault", what)
	return do(ctx)
}

func (in *Injector) node(name string) (azure.Node, error) {
	n, ok := in.c.Spec.Node(name)
	if !ok {
		return n, fmt.Errorf("faults: no node %q in azure.nodes", name)
	}
	return n, nil
}

func (in *Injector) poll() *runtime.PollUntilDoneOptions {
	return &runtime.PollUntilDoneOptions{Frequency: in.c.PollEvery()}
}

// RestartVM restarts a node's VM (a reboot: the service comes back by
// itself). Its undo starts the VM should the restart have left it off.
func (in *Injector) RestartVM(ctx context.Context, u Undoer, node string) error {
	n, err := in.node(node)
	if err != nil {
		return err
	}
	return in.inject(ctx, u, "restart VM "+in.c.Spec.VMID(n),
		func(ctx context.Context) error { return in.StartVM(ctx, node) },
		func(ctx context.Context) error {
			return in.c.Call(ctx, "restart VM", in.c.Spec.VMID(n), azure.RoleVMContributor, func(ctx context.Context) error {
				if n.VMSS != "" {
					p, err := in.c.ScaleSetVMs.BeginRestart(ctx, in.c.Spec.ResourceGroup, n.VMSS, n.Instance, nil)
					if err != nil {
						return err
					}
					_, err = p.PollUntilDone(ctx, in.poll())
					return err
				}
				p, err := in.c.VMs.BeginRestart(ctx, in.c.Spec.ResourceGroup, n.VM, nil)
				if err != nil {
					return err
				}
				_, err = p.PollUntilDone(ctx, in.poll())
				return err
			})
		})
}

// PowerOff powers a node's VM off without a graceful shutdown (a crash;
// the VM stays allocated, so it starts again quickly). Undo: StartVM.
func (in *Injector) PowerOff(ctx context.Context, u Undoer, node string) error {
	n, err := in.node(node)
	if err != nil {
		return err
	}
	skip := true
	return in.inject(ctx, u, "power off VM "+in.c.Spec.VMID(n),
		func(ctx context.Context) error { return in.StartVM(ctx, node) },
		func(ctx context.Context) error {
			return in.c.Call(ctx, "power off VM", in.c.Spec.VMID(n), azure.RoleVMContributor, func(ctx context.Context) error {
				if n.VMSS != "" {
					p, err := in.c.ScaleSetVMs.BeginPowerOff(ctx, in.c.Spec.ResourceGroup, n.VMSS, n.Instance, &armcompute.VirtualMachineScaleSetVMsClientBeginPowerOffOptions{SkipShutdown: &skip})
					if err != nil {
						return err
					}
					_, err = p.PollUntilDone(ctx, in.poll())
					return err
				}
				p, err := in.c.VMs.BeginPowerOff(ctx, in.c.Spec.ResourceGroup, n.VM, &armcompute.VirtualMachinesClientBeginPowerOffOptions{SkipShutdown: &skip})
				if err != nil {
					return err
				}
				_, err = p.PollUntilDone(ctx, in.poll())
				return err
			})
		})
}

// StartVM starts a node's VM (a no-op on a running VM).
func (in *Injector) StartVM(ctx context.Context, node string) error {
	n, err := in.node(node)
	if err != nil {
		return err
	}
	return in.c.Call(ctx, "start VM", in.c.Spec.VMID(n), azure.RoleVMContributor, func(ctx context.Context) error {
		if n.VMSS != "" {
			p, err := in.c.ScaleSetVMs.BeginStart(ctx, in.c.Spec.ResourceGroup, n.VMSS, n.Instance, nil)
			if err != nil {
				return err
			}
			_, err = p.PollUntilDone(ctx, in.poll())
			return err
		}
		p, err := in.c.VMs.BeginStart(ctx, in.c.Spec.ResourceGroup, n.VM, nil)
		if err != nil {
			return err
		}
		_, err = p.PollUntilDone(ctx, in.poll())
		return err
	})
}

// StopService stops the Octopus service on a node through Run Command
// (what Chaos Studio's service-stop fault does with its agent). Undo:
// StartService.
func (in *Injector) StopService(ctx context.Context, u Undoer, node string) error {
	if _, err := in.node(node); err != nil {
		return err
	}
	return in.inject(ctx, u, "stop service "+in.c.Spec.Service()+" on "+node,
		func(ctx context.Context) error { return in.StartService(ctx, node) },
		func(ctx context.Context) error { return in.runService(ctx, node, "stop") })
}

// StartService starts the Octopus service on a node through Run Command.
func (in *Injector) StartService(ctx context.Context, node string) error {
	return in.runService(ctx, node, "start")
}

// ServiceScript is the Run Command input that stops or starts service on
// a VM of osType (Windows: PowerShell; Linux: systemctl). The service name
// was validated (azure.Spec.Validate) and is quoted anyway.
func ServiceScript(osType, service, verb string) armcompute.RunCommandInput {
	q := "'" + strings.ReplaceAll(service, "'", "") + "'"
	if strings.EqualFold(osType, "Linux") {
		id := "RunShellScript"
		script := "systemctl " + verb + " " + q
		return armcompute.RunCommandInput{CommandID: &id, Script: []*string{&script}}
	}
	id := "RunPowerShellScript"
	script := "Start-Service -Name " + q
	if verb == "stop" {
		script = "Stop-Service -Name " + q + " -Force"
	}
	return armcompute.RunCommandInput{CommandID: &id, Script: []*string{&script}}
}

func (in *Injector) runService(ctx context.Context, node, verb string) error {
	n, err := in.node(node)
	if err != nil {
		return err
	}
	vm := azure.ReadVM(ctx, in.c, n)
	if vm.Err != nil {
		return vm.Err
	}
	input := ServiceScript(vm.OSType, in.c.Spec.Service(), verb)
	return in.c.Call(ctx, "run command ("+verb+" "+in.c.Spec.Service()+")", vm.ID, azure.RoleVMContributor, func(ctx context.Context) error {
		if n.VMSS != "" {
			p, err := in.c.ScaleSetVMs.BeginRunCommand(ctx, in.c.Spec.ResourceGroup, n.VMSS, n.Instance, input, nil)
			if err != nil {
				return err
			}
			_, err = p.PollUntilDone(ctx, in.poll())
			return err
		}
		p, err := in.c.VMs.BeginRunCommand(ctx, in.c.Spec.ResourceGroup, n.VM, input, nil)
		if err != nil {
			return err
		}
		_, err = p.PollUntilDone(ctx, in.poll())
		return err
	})
}

// RuleName is the deny rule's name for node and target: fixed, so that an
// undo (or an operator after a crash) finds it by name.
func RuleName(node, target string) string { return "octoha-deny-" + target + "-" + node }

// DenyRule is the NSG rule that cuts node off target: outbound from the
// node's address to the database (1433 and the redirect range
// 11000–11999) or the share (445); inbound from the probe source.
func DenyRule(s *azure.Spec, nodeIP, target string, priority int32) (armnetwork.SecurityRule, error) {
	str := func(v string) *string { return &v }
	deny, tcp, any := armnetwork.SecurityRuleAccessDeny, armnetwork.SecurityRuleProtocolTCP, armnetwork.SecurityRuleProtocolAsterisk
	p := &armnetwork.SecurityRulePropertiesFormat{Access: &deny, Priority: &priority, SourcePortRange: str("*"),
		Description: str("octoha fault: deny " + target + " (removed on undo)")}
	out, inb := armnetwork.SecurityRuleDirectionOutbound, armnetwork.SecurityRuleDirectionInbound
	switch target {
	case TargetDB:
		// Azure SQL's redirect connection policy moves a session from
		// 1433 to 11000–11999 (connectivity-architecture.md).
		dest := "Sql"
		if s.SQL != nil && s.SQL.Address != "" {
			dest = s.SQL.Address
		}
		p.Direction, p.Protocol = &out, &tcp
		p.SourceAddressPrefix, p.DestinationAddressPrefix = str(nodeIP), str(dest)
		p.DestinationPortRanges = []*string{str("1433"), str("11000-11999")}
	case TargetShare:
		dest := "Storage"
		if s.Storage != nil && s.Storage.Address != "" {
			dest = s.Storage.Address
		}
		p.Direction, p.Protocol = &out, &tcp
		p.SourceAddressPrefix, p.DestinationAddressPrefix = str(nodeIP), str(dest)
		p.DestinationPortRange = str("445")
	case TargetProbe:
		p.Direction, p.Protocol = &inb, &any
		p.SourceAddressPrefix, p.DestinationAddressPrefix = str("AzureLoadBalancer"), str(nodeIP)
		p.DestinationPortRange = str("*")
	default:
		return armnetwork.SecurityRule{}, fmt.Errorf("faults: deny target %q: want %s, %s or %s", target, TargetDB, TargetShare, TargetProbe)
	}
	return armnetwork.SecurityRule{Properties: p}, nil
}

// Deny adds an NSG deny rule between node and target (db, share or
// probe) at the highest priority free in the NSG. Undo: Allow.
func (in *Injector) Deny(ctx context.Context, u Undoer, node, target string) error {
	n, err := in.node(node)
	if err != nil {
		return err
	}
	nsg := in.c.Spec.NSGOf(n)
	if nsg == "" {
		return fmt.Errorf("faults: node %s has no NSG (azure.nsg or azure.nodes[].nsg) to add a deny rule to", node)
	}
	if _, err := DenyRule(in.c.Spec, "0.0.0.0", target, 100); err != nil {
		return err
	}
	vm := azure.ReadVM(ctx, in.c, n)
	if vm.Err != nil {
		return vm.Err
	}
	ip := vm.PrivateIP()
	if ip == "" {
		return fmt.Errorf("faults: VM %s has no private address on its NIC", vm.ID)
	}
	name := RuleName(node, target)
	ruleID := in.c.Spec.NSGID(nsg) + "/securityRules/" + name
	prio, err := in.freePriority(ctx, nsg, target == TargetProbe)
	if err != nil {
		return err
	}
	rule, _ := DenyRule(in.c.Spec, ip, target, prio)
	return in.inject(ctx, u, "NSG deny rule "+ruleID,
		func(ctx context.Context) error { return in.Allow(ctx, node, target) },
		func(ctx context.Context) error {
			return in.c.Call(ctx, fmt.Sprintf("add deny rule (priority %d)", prio), ruleID, azure.RoleNetworkContrib, func(ctx context.Context) error {
				p, err := in.c.SecurityRules.BeginCreateOrUpdate(ctx, in.c.Spec.ResourceGroup, nsg, name, rule, nil)
				if err != nil {
					return err
				}
				_, err = p.PollUntilDone(ctx, in.poll())
				return err
			})
		})
}

// freePriority is the lowest priority (100 is the highest precedence an
// NSG rule can have) no rule of the direction holds.
func (in *Injector) freePriority(ctx context.Context, nsg string, inbound bool) (int32, error) {
	var used []int32
	err := in.c.Call(ctx, "list security rules", in.c.Spec.NSGID(nsg), azure.RoleReader, func(ctx context.Context) error {
		pager := in.c.SecurityRules.NewListPager(in.c.Spec.ResourceGroup, nsg, nil)
		for pager.More() {
			page, err := pager.NextPage(ctx)
			if err != nil {
				return err
			}
			for _, r := range page.Value {
				if r == nil || r.Properties == nil || r.Properties.Priority == nil {
					continue
				}
				isIn := r.Properties.Direction != nil && *r.Properties.Direction == armnetwork.SecurityRuleDirectionInbound
				if isIn == inbound {
					used = append(used, *r.Properties.Priority)
				}
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for p := int32(100); p <= 4096; p++ {
		if !slices.Contains(used, p) {
			return p, nil
		}
	}
	return 0, fmt.Errorf("faults: NSG %s has no free priority", nsg)
}

// Allow removes the deny rule Deny added (none there: nothing to do).
func (in *Injector) Allow(ctx context.Context, node, target string) error {
	n, err := in.node(node)
	if err != nil {
		return err
	}
	nsg := in.c.Spec.NSGOf(n)
	name := RuleName(node, target)
	ruleID := in.c.Spec.NSGID(nsg) + "/securityRules/" + name
	return in.c.Call(ctx, "remove deny rule", ruleID, azure.RoleNetworkContrib, func(ctx context.Context) error {
		p, err := in.c.SecurityRules.BeginDelete(ctx, in.c.Spec.ResourceGroup, nsg, name, nil)
		if err != nil {
			return err
		}
		_, err = p.PollUntilDone(ctx, in.poll())
		return err
	})
}

// Failover makes the failover group's secondary the primary: a planned
// failover, which loses nothing (it is issued on the secondary server).
// Undo: Failback, a planned failover back to the server that was primary.
func (in *Injector) Failover(ctx context.Context, u Undoer) error {
	s := in.c.Spec
	if s.SQL == nil || s.SQL.FailoverGroup == "" {
		return errors.New("faults: no azure.sql.failoverGroup to fail over")
	}
	primary, secondary, err := in.roles(ctx)
	if err != nil {
		return err
	}
	return in.inject(ctx, u, "failover group "+s.FailoverGroupID()+" to "+secondary.ResourceGroupName+"/"+secondary.Name,
		func(ctx context.Context) error { return in.Failback(ctx, primary) },
		func(ctx context.Context) error { return in.failoverTo(ctx, secondary) })
}

// Failback makes server the primary again, unless it already is (the
// failover never landed).
func (in *Injector) Failback(ctx context.Context, server *arm.ResourceID) error {
	now, _, err := in.roles(ctx)
	if err != nil {
		return err
	}
	if strings.EqualFold(now.String(), server.String()) {
		in.log.Info("failover group already has its primary back", "server", server.String())
		return nil
	}
	return in.failoverTo(ctx, server)
}

// roles reads the failover group and returns its primary and secondary
// servers.
func (in *Injector) roles(ctx context.Context) (primary, secondary *arm.ResourceID, err error) {
	s := in.c.Spec
	rg := s.ResourceGroup
	if s.SQL.ResourceGroup != "" {
		rg = s.SQL.ResourceGroup
	}
	var fg armsql.FailoverGroup
	err = in.c.Call(ctx, "read failover group", s.FailoverGroupID(), azure.RoleReader, func(ctx context.Context) error {
		r, err := in.c.FailoverGrps.Get(ctx, rg, s.SQL.Server, s.SQL.FailoverGroup, nil)
		fg = r.FailoverGroup
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	self, err := arm.ParseResourceID(s.SQLServerID())
	if err != nil {
		return nil, nil, err
	}
	if fg.Properties == nil || len(fg.Properties.PartnerServers) == 0 || fg.Properties.PartnerServers[0].ID == nil {
		return nil, nil, fmt.Errorf("faults: failover group %s has no partner server", s.FailoverGroupID())
	}
	partner, err := arm.ParseResourceID(*fg.Properties.PartnerServers[0].ID)
	if err != nil {
		return nil, nil, fmt.Errorf("faults: partner of %s: %w", s.FailoverGroupID(), err)
	}
	if fg.Properties.ReplicationRole != nil && *fg.Properties.ReplicationRole == armsql.FailoverGroupReplicationRoleSecondary {
		return partner, self, nil
	}
	return self, partner, nil
}

// failoverTo makes server the failover group's primary (nothing to do
// when it is already).
func (in *Injector) failoverTo(ctx context.Context, server *arm.ResourceID) error {
	fg := in.c.Spec.SQL.FailoverGroup
	id := server.String() + "/failoverGroups/" + fg
	return in.c.Call(ctx, "planned failover", id, azure.RoleSQLServerContrib, func(ctx context.Context) error {
		p, err := in.c.FailoverGrps.BeginFailover(ctx, server.ResourceGroupName, server.Name, fg, nil)
		if err != nil {
			return err
		}
		_, err = p.PollUntilDone(ctx, in.poll())
		return err
	})
}
