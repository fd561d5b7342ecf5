// Package azcert joins Azure to certification: the configuration rows of
// an azure: section as certificate rows (and the ejection bound they
// read, which the dynamic rows then measure against), and the plan of
// what a run would read and which Azure faults it would inject where.
package azcert

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/octoha/octoha/harness/azure"
	"github.com/octoha/octoha/harness/azure/faults"
	"github.com/octoha/octoha/harness/certificate"
	"github.com/octoha/octoha/harness/cluster"
)

// ErrNoAzure is returned for a spec without an azure: section.
var ErrNoAzure = errors.New("the cluster YAML has no azure: section")

// Rows reads the configuration of spec's Azure resources, judges it, and
// sets spec.LB.Interval and Fall to the probe's interval and threshold
// (replacing any hand-written lb: timing). A credential that is missing
// or lacks Reader stops it, with the role named.
func Rows(ctx context.Context, spec *cluster.Spec, set azure.Settings, o azure.Options) ([]certificate.Row, error) {
	if spec.Azure == nil {
		return nil, ErrNoAzure
	}
	c, err := azure.New(spec.Azure, o)
	if err != nil {
		return nil, err
	}
	obs := azure.Observe(ctx, c)
	if err := obs.Refused(); err != nil {
		return nil, err
	}
	if iv, th, ok := azure.EjectionBound(spec.Azure, obs); ok {
		spec.LB.Interval, spec.LB.Fall = iv, th
	}
	// Each node's OS comes from its VM, not from a hand-written os:.
	if spec.External != nil {
		for _, v := range obs.VMs {
			for i := range spec.External.Nodes {
				if spec.External.Nodes[i].Name == v.Node && v.OSType != "" {
					spec.External.Nodes[i].OS = strings.ToLower(v.OSType)
				}
			}
		}
	}
	var out []certificate.Row
	for _, r := range azure.Judge(spec.Azure, obs, set) {
		out = append(out, Row(r))
	}
	return out, nil
}

// Row is a configuration row as a certificate row: its why says the
// resource and the value seen, so the table names both.
func Row(r azure.Row) certificate.Row {
	why := r.Why
	if why == "" {
		why = "seen: " + r.Value
	} else if r.Value != "" {
		why = r.Value + " — " + why
	}
	if r.Resource != "" {
		why += " [" + r.Resource + "]"
	}
	cr := certificate.Row{ID: r.ID, Requirement: r.Requirement, Status: r.Status, Why: why, Resource: r.Resource, Value: r.Value, Scenarios: []string{}}
	if r.Resource != "" {
		cr.Evidence = append(cr.Evidence, "resource: "+r.Resource)
	}
	if r.Value != "" {
		cr.Evidence = append(cr.Evidence, "seen: "+r.Value)
	}
	return cr
}

// Plan prints what a certification of spec would read from Azure and
// which Azure faults it would inject against which resource. It touches
// nothing and needs no credential.
func Plan(w io.Writer, spec cluster.Spec, allowDestructive bool) error {
	a := spec.Azure
	if a == nil {
		return ErrNoAzure
	}
	var names []string
	if spec.External != nil {
		for _, n := range spec.External.Nodes {
			names = append(names, n.Name)
		}
	}
	if err := a.Validate(names); err != nil {
		return err
	}
	fmt.Fprintf(w, "Plan for %s (subscription %s, resource group %s): nothing is read or changed now.\n", spec.Name, a.Subscription, a.ResourceGroup)
	fmt.Fprintf(w, "\nReads (role Reader), for the configuration rows:\n")
	read := func(what, id string, rows ...string) {
		fmt.Fprintf(w, "  GET %-22s %s\n      → %s\n", what, id, strings.Join(rows, ", "))
	}
	httpRows := []string{azure.RowProbe, azure.RowEjection, azure.RowTimeout, azure.RowWAF, azure.RowAffinity}
	if a.ApplicationGateway != nil {
		read("application gateway", a.GatewayID(), httpRows...)
		if a.WAFPolicy != "" {
			read("WAF policy", a.WAFPolicyID(), azure.RowWAF)
		} else {
			fmt.Fprintf(w, "  GET %-22s the policy the gateway links (firewallPolicy), if any\n      → %s\n", "WAF policy", azure.RowWAF)
		}
	}
	if a.LoadBalancer != nil {
		rows := []string{azure.RowPolling}
		if a.ApplicationGateway == nil {
			rows = append(httpRows, rows...)
		}
		read("load balancer", a.LoadBalancerID(), rows...)
	}
	for _, n := range a.Nodes {
		read("VM ("+n.Name+")", a.VMID(n), azure.RowSameOS, azure.RowShareRegion, azure.RowPolling)
		fmt.Fprintf(w, "  GET %-22s the VM's network interfaces (addresses, NAT rules)\n", "NICs ("+n.Name+")")
	}
	if a.SQL != nil {
		if a.SQL.FailoverGroup != "" {
			read("failover group", a.FailoverGroupID(), azure.RowDatabase)
		}
		read("database", a.DatabaseID(), azure.RowDatabase)
	}
	if a.Storage != nil {
		read("storage account", a.StorageAccountID(), azure.RowShareRegion)
		read("file share", a.ShareID(), azure.RowShareRegion)
	}
	fmt.Fprintf(w, "\nThe probe's interval × threshold becomes the ejection bound the drain and failover rows measure against (lb.interval/fall in the YAML are replaced).\n")
	fmt.Fprintf(w, "\nAzure faults (each registers its undo first; an interrupted run still undoes it):\n")
	if !allowDestructive {
		fmt.Fprintf(w, "  none: destructive faults need --allow-destructive (and confirmation, or --yes). With it:\n")
	}
	for _, n := range a.Nodes {
		id := a.VMID(n)
		fmt.Fprintf(w, "  kill %-8s power off (skip shutdown) %s; undo: start it          [%s]\n", n.Name, id, azure.RoleVMContributor)
		fmt.Fprintf(w, "  restart %-5s Run Command: stop service %s on %s; undo: start it  [%s]\n", n.Name, a.Service(), lastSeg(id), azure.RoleVMContributor)
		if nsg := a.NSGOf(n); nsg != "" {
			for _, t := range []string{faults.TargetDB, faults.TargetShare, faults.TargetProbe} {
				fmt.Fprintf(w, "  deny %-5s %-5s NSG rule %s/securityRules/%s; undo: delete it  [%s]\n", t, n.Name, a.NSGID(nsg), faults.RuleName(n.Name, t), azure.RoleNetworkContrib)
			}
		} else {
			fmt.Fprintf(w, "  deny db|share|probe %s: not possible (no azure.nsg for this node)\n", n.Name)
		}
	}
	if a.SQL != nil && a.SQL.FailoverGroup != "" {
		fmt.Fprintf(w, "  failover      planned failover of %s to its secondary; undo: failback  [%s]\n", a.FailoverGroupID(), azure.RoleSQLServerContrib)
	}
	fmt.Fprintf(w, "  drain/undrain stay on Octopus's API (the API key), never on Azure.\n")
	return nil
}

func lastSeg(id string) string {
	if i := strings.LastIndexByte(id, '/'); i >= 0 {
		return id[i+1:]
	}
	return id
}
