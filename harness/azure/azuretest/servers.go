package azuretest

import (
	"context"
	"net/http"
	"strings"

	azfake "github.com/Azure/azure-sdk-for-go/sdk/azcore/fake"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v6"
	computefake "github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v6/fake"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v6"
	netfake "github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v6/fake"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/sql/armsql"
	sqlfake "github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/sql/armsql/fake"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/storage/armstorage"
	storagefake "github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/storage/armstorage/fake"
)

func get[T any](w *World, m map[string]T, name string) (T, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	v, ok := m[strings.ToLower(name)]
	return v, ok
}

func (w *World) network() *netfake.ServerFactory {
	return &netfake.ServerFactory{
		LoadBalancersServer: netfake.LoadBalancersServer{
			Get: func(_ context.Context, _ string, name string, _ *armnetwork.LoadBalancersClientGetOptions) (r azfake.Responder[armnetwork.LoadBalancersClientGetResponse], e azfake.ErrorResponder) {
				if v, ok := get(w, w.lbs, name); ok {
					r.SetResponse(http.StatusOK, armnetwork.LoadBalancersClientGetResponse{LoadBalancer: v}, nil)
				} else {
					notFound(&e)
				}
				return
			},
		},
		ApplicationGatewaysServer: netfake.ApplicationGatewaysServer{
			Get: func(_ context.Context, _ string, name string, _ *armnetwork.ApplicationGatewaysClientGetOptions) (r azfake.Responder[armnetwork.ApplicationGatewaysClientGetResponse], e azfake.ErrorResponder) {
				if v, ok := get(w, w.gateways, name); ok {
					r.SetResponse(http.StatusOK, armnetwork.ApplicationGatewaysClientGetResponse{ApplicationGateway: v}, nil)
				} else {
					notFound(&e)
				}
				return
			},
		},
		WebApplicationFirewallPoliciesServer: netfake.WebApplicationFirewallPoliciesServer{
			Get: func(_ context.Context, _ string, name string, _ *armnetwork.WebApplicationFirewallPoliciesClientGetOptions) (r azfake.Responder[armnetwork.WebApplicationFirewallPoliciesClientGetResponse], e azfake.ErrorResponder) {
				if v, ok := get(w, w.wafs, name); ok {
					r.SetResponse(http.StatusOK, armnetwork.WebApplicationFirewallPoliciesClientGetResponse{WebApplicationFirewallPolicy: v}, nil)
				} else {
					notFound(&e)
				}
				return
			},
		},
		InterfacesServer: netfake.InterfacesServer{
			Get: func(_ context.Context, _ string, name string, _ *armnetwork.InterfacesClientGetOptions) (r azfake.Responder[armnetwork.InterfacesClientGetResponse], e azfake.ErrorResponder) {
				if v, ok := get(w, w.nics, name); ok {
					r.SetResponse(http.StatusOK, armnetwork.InterfacesClientGetResponse{Interface: v}, nil)
				} else {
					notFound(&e)
				}
				return
			},
		},
		SecurityRulesServer: netfake.SecurityRulesServer{
			NewListPager: func(_ string, nsg string, _ *armnetwork.SecurityRulesClientListOptions) (r azfake.PagerResponder[armnetwork.SecurityRulesClientListResponse]) {
				var page armnetwork.SecurityRuleListResult
				for _, v := range w.Rules(nsg) {
					v := v
					page.Value = append(page.Value, &v)
				}
				r.AddPage(http.StatusOK, armnetwork.SecurityRulesClientListResponse{SecurityRuleListResult: page}, nil)
				return
			},
			BeginCreateOrUpdate: func(_ context.Context, _ string, nsg, name string, rule armnetwork.SecurityRule, _ *armnetwork.SecurityRulesClientBeginCreateOrUpdateOptions) (r azfake.PollerResponder[armnetwork.SecurityRulesClientCreateOrUpdateResponse], e azfake.ErrorResponder) {
				w.AddRule(nsg, name, rule)
				w.mutate("add rule " + nsg + "/" + name)
				r.SetTerminalResponse(http.StatusOK, armnetwork.SecurityRulesClientCreateOrUpdateResponse{SecurityRule: rule}, nil)
				return
			},
			BeginDelete: func(_ context.Context, _ string, nsg, name string, _ *armnetwork.SecurityRulesClientBeginDeleteOptions) (r azfake.PollerResponder[armnetwork.SecurityRulesClientDeleteResponse], e azfake.ErrorResponder) {
				w.mu.Lock()
				delete(w.rules[nsg], name)
				w.mu.Unlock()
				w.mutate("delete rule " + nsg + "/" + name)
				r.SetTerminalResponse(http.StatusOK, armnetwork.SecurityRulesClientDeleteResponse{}, nil)
				return
			},
		},
	}
}

func (w *World) compute() *computefake.ServerFactory {
	return &computefake.ServerFactory{
		VirtualMachinesServer: computefake.VirtualMachinesServer{
			Get: func(_ context.Context, _ string, name string, _ *armcompute.VirtualMachinesClientGetOptions) (r azfake.Responder[armcompute.VirtualMachinesClientGetResponse], e azfake.ErrorResponder) {
				if v, ok := get(w, w.vms, name); ok {
					r.SetResponse(http.StatusOK, armcompute.VirtualMachinesClientGetResponse{VirtualMachine: v}, nil)
				} else {
					notFound(&e)
				}
				return
			},
			BeginRestart: func(_ context.Context, _ string, name string, _ *armcompute.VirtualMachinesClientBeginRestartOptions) (r azfake.PollerResponder[armcompute.VirtualMachinesClientRestartResponse], e azfake.ErrorResponder) {
				if _, ok := get(w, w.vms, name); !ok {
					notFound(&e)
					return
				}
				w.mutate("restart " + name)
				r.AddNonTerminalResponse(http.StatusAccepted, nil)
				r.SetTerminalResponse(http.StatusOK, armcompute.VirtualMachinesClientRestartResponse{}, nil)
				return
			},
			BeginPowerOff: func(_ context.Context, _ string, name string, _ *armcompute.VirtualMachinesClientBeginPowerOffOptions) (r azfake.PollerResponder[armcompute.VirtualMachinesClientPowerOffResponse], e azfake.ErrorResponder) {
				if _, ok := get(w, w.vms, name); !ok {
					notFound(&e)
					return
				}
				w.mu.Lock()
				w.stopped[strings.ToLower(name)] = true
				w.mu.Unlock()
				w.mutate("power off " + name)
				r.AddNonTerminalResponse(http.StatusAccepted, nil)
				r.SetTerminalResponse(http.StatusOK, armcompute.VirtualMachinesClientPowerOffResponse{}, nil)
				return
			},
			BeginStart: func(_ context.Context, _ string, name string, _ *armcompute.VirtualMachinesClientBeginStartOptions) (r azfake.PollerResponder[armcompute.VirtualMachinesClientStartResponse], e azfake.ErrorResponder) {
				if _, ok := get(w, w.vms, name); !ok {
					notFound(&e)
					return
				}
				w.mu.Lock()
				delete(w.stopped, strings.ToLower(name))
				w.mu.Unlock()
				w.mutate("start " + name)
				r.SetTerminalResponse(http.StatusOK, armcompute.VirtualMachinesClientStartResponse{}, nil)
				return
			},
			BeginRunCommand: func(_ context.Context, _ string, name string, in armcompute.RunCommandInput, _ *armcompute.VirtualMachinesClientBeginRunCommandOptions) (r azfake.PollerResponder[armcompute.VirtualMachinesClientRunCommandResponse], e azfake.ErrorResponder) {
				if _, ok := get(w, w.vms, name); !ok {
					notFound(&e)
					return
				}
				script := ""
				if len(in.Script) > 0 && in.Script[0] != nil {
					script = *in.Script[0]
				}
				w.mu.Lock()
				switch {
				case strings.HasPrefix(script, "Stop-Service"), strings.HasPrefix(script, "systemctl stop"):
					w.services[strings.ToLower(name)] = true
				case strings.HasPrefix(script, "Start-Service"), strings.HasPrefix(script, "systemctl start"):
					delete(w.services, strings.ToLower(name))
				}
				w.mu.Unlock()
				w.mutate("run command on " + name + ": " + deref(in.CommandID) + " " + script)
				msg := "Enable succeeded"
				r.SetTerminalResponse(http.StatusOK, armcompute.VirtualMachinesClientRunCommandResponse{RunCommandResult: armcompute.RunCommandResult{Value: []*armcompute.InstanceViewStatus{{Message: &msg}}}}, nil)
				return
			},
		},
	}
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func (w *World) sql() *sqlfake.ServerFactory {
	return &sqlfake.ServerFactory{
		FailoverGroupsServer: sqlfake.FailoverGroupsServer{
			Get: func(_ context.Context, _ string, server, name string, _ *armsql.FailoverGroupsClientGetOptions) (r azfake.Responder[armsql.FailoverGroupsClientGetResponse], e azfake.ErrorResponder) {
				v, ok := get(w, w.fgs, name)
				if !ok {
					notFound(&e)
					return
				}
				// The group as seen from server: its role, and its partner.
				w.mu.Lock()
				primary := w.primary
				w.mu.Unlock()
				role := armsql.FailoverGroupReplicationRoleSecondary
				if strings.EqualFold(server, primary) {
					role = armsql.FailoverGroupReplicationRolePrimary
				}
				cp := v
				props := *v.Properties
				props.ReplicationRole = &role
				cp.Properties = &props
				r.SetResponse(http.StatusOK, armsql.FailoverGroupsClientGetResponse{FailoverGroup: cp}, nil)
				return
			},
			BeginFailover: func(_ context.Context, _ string, server, name string, _ *armsql.FailoverGroupsClientBeginFailoverOptions) (r azfake.PollerResponder[armsql.FailoverGroupsClientFailoverResponse], e azfake.ErrorResponder) {
				if _, ok := get(w, w.fgs, name); !ok {
					notFound(&e)
					return
				}
				w.mu.Lock()
				w.primary = strings.ToLower(server)
				w.mu.Unlock()
				w.mutate("failover " + name + " to " + server)
				r.AddNonTerminalResponse(http.StatusAccepted, nil)
				r.SetTerminalResponse(http.StatusOK, armsql.FailoverGroupsClientFailoverResponse{}, nil)
				return
			},
		},
		DatabasesServer: sqlfake.DatabasesServer{
			Get: func(_ context.Context, _ string, _, name string, _ *armsql.DatabasesClientGetOptions) (r azfake.Responder[armsql.DatabasesClientGetResponse], e azfake.ErrorResponder) {
				if v, ok := get(w, w.dbs, name); ok {
					r.SetResponse(http.StatusOK, armsql.DatabasesClientGetResponse{Database: v}, nil)
				} else {
					notFound(&e)
				}
				return
			},
		},
	}
}

func (w *World) storage() *storagefake.ServerFactory {
	return &storagefake.ServerFactory{
		AccountsServer: storagefake.AccountsServer{
			GetProperties: func(_ context.Context, _ string, name string, _ *armstorage.AccountsClientGetPropertiesOptions) (r azfake.Responder[armstorage.AccountsClientGetPropertiesResponse], e azfake.ErrorResponder) {
				if v, ok := get(w, w.accounts, name); ok {
					r.SetResponse(http.StatusOK, armstorage.AccountsClientGetPropertiesResponse{Account: v}, nil)
				} else {
					notFound(&e)
				}
				return
			},
		},
		FileSharesServer: storagefake.FileSharesServer{
			Get: func(_ context.Context, _ string, _ string, name string, _ *armstorage.FileSharesClientGetOptions) (r azfake.Responder[armstorage.FileSharesClientGetResponse], e azfake.ErrorResponder) {
				if v, ok := get(w, w.shares, name); ok {
					r.SetResponse(http.StatusOK, armstorage.FileSharesClientGetResponse{FileShare: v}, nil)
				} else {
					notFound(&e)
				}
				return
			},
		},
	}
}
