package azure

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v6"
)

// pollingRow: one polling endpoint per node — an inbound NAT rule (or a
// port of a NAT pool range) per node to its own VM on the polling port, or
// a public address on each node's NIC. A load-balancing rule on the
// polling port sends each Tentacle to one node at random: the seed's
// unsupported layout.
func pollingRow(s *Spec, o *Observed) Row {
	port := int32(s.PollingPort())
	r := Row{ID: RowPolling, Requirement: fmt.Sprintf("Polling Tentacles reach every node: one polling endpoint per node (a NAT rule or frontend port per node to its own VM on %d, or a unique address)", port)}
	// Which node owns each NIC IP configuration.
	owner := map[string]string{}
	var vmErr error
	for _, v := range o.VMs {
		if v.Err != nil {
			vmErr = v.Err
			continue
		}
		for _, nic := range v.NICs {
			if nic.Properties == nil {
				continue
			}
			for _, ipc := range nic.Properties.IPConfigurations {
				if ipc != nil && ipc.ID != nil {
					owner[strings.ToLower(*ipc.ID)] = v.Node
				}
			}
		}
	}
	if vmErr != nil {
		r.Status, r.Why = NotRun, vmErr.Error()
		return r
	}
	if s.LoadBalancer != nil {
		r.Resource = s.LoadBalancerID()
		if o.LBErr != nil {
			r.Status, r.Why = NotRun, o.LBErr.Error()
			return r
		}
		if o.LB.Properties != nil {
			if row, ok := natRow(r, s, o.LB.Properties, owner, port); ok {
				return row
			}
		}
	}
	// No NAT layout: unique addresses, a public IP on each node's NIC.
	pubs := map[string]string{}
	var missing []string
	for _, v := range o.VMs {
		ip := ""
		for _, nic := range v.NICs {
			if nic.Properties == nil {
				continue
			}
			for _, ipc := range nic.Properties.IPConfigurations {
				if ipc != nil && ipc.Properties != nil && ipc.Properties.PublicIPAddress != nil && ip == "" {
					ip = deref(ipc.Properties.PublicIPAddress.ID)
				}
			}
		}
		if ip == "" {
			missing = append(missing, v.Node)
			continue
		}
		pubs[v.Node] = lastSegment(ip)
	}
	if len(missing) == 0 && len(pubs) == len(o.VMs) && len(o.VMs) > 0 && distinct(pubs) {
		r.Status = Pass
		if r.Resource == "" {
			r.Resource = o.VMs[0].ID
		}
		r.Value = "unique addresses: " + mapString(pubs)
		return r
	}
	r.Status = Fail
	if r.Resource == "" && len(o.VMs) > 0 {
		r.Resource = o.VMs[0].ID
	}
	r.Value = fmt.Sprintf("no inbound NAT rule to port %d; nodes without a public address: %s", port, strings.Join(missing, ", "))
	r.Why = "no endpoint reaches each node on its own: a polling Tentacle would poll only some nodes"
	return r
}

// natRow judges the load balancer's NAT rules and rules on the polling
// port; ok is false when there are none at all.
func natRow(r Row, s *Spec, props *armnetwork.LoadBalancerPropertiesFormat, owner map[string]string, port int32) (Row, bool) {
	for _, rule := range props.LoadBalancingRules {
		if rule != nil && rule.Properties != nil && deref(rule.Properties.BackendPort) == port {
			r.Resource = deref(rule.ID)
			r.Status = Fail
			r.Value = fmt.Sprintf("load-balancing rule %s: frontend port %d → backend pool port %d", deref(rule.Name), deref(rule.Properties.FrontendPort), port)
			r.Why = "one shared polling port: the load balancer sends each polling connection to one node of the pool, so a Tentacle polls only that node"
			return r, true
		}
	}
	byNode := map[string]string{}
	frontends := map[string]string{} // frontend ip+port → rule
	var problems []string
	found := false
	for _, nat := range props.InboundNatRules {
		if nat == nil || nat.Properties == nil || deref(nat.Properties.BackendPort) != port {
			continue
		}
		found = true
		np := nat.Properties
		if np.BackendAddressPool != nil && np.FrontendPortRangeStart != nil {
			// A NAT rule v2 over a pool: a frontend port per instance.
			n := int(deref(np.FrontendPortRangeEnd) - deref(np.FrontendPortRangeStart) + 1)
			if n >= len(s.Nodes) {
				r.Resource, r.Status = deref(nat.ID), Pass
				r.Value = fmt.Sprintf("NAT rule %s: frontend ports %d–%d, one per instance of the pool, → %d", deref(nat.Name), deref(np.FrontendPortRangeStart), deref(np.FrontendPortRangeEnd), port)
				return r, true
			}
			problems = append(problems, fmt.Sprintf("NAT rule %s has %d ports for %d nodes", deref(nat.Name), n, len(s.Nodes)))
			continue
		}
		fe := fmt.Sprintf("%s:%d", lastSegment(idOf(np.FrontendIPConfiguration)), deref(np.FrontendPort))
		if prev, dup := frontends[fe]; dup {
			problems = append(problems, fmt.Sprintf("NAT rules %s and %s share frontend %s", prev, deref(nat.Name), fe))
		}
		frontends[fe] = deref(nat.Name)
		node := ""
		if np.BackendIPConfiguration != nil {
			node = owner[strings.ToLower(deref(np.BackendIPConfiguration.ID))]
		}
		if node == "" {
			problems = append(problems, fmt.Sprintf("NAT rule %s reaches no node's VM", deref(nat.Name)))
			continue
		}
		if prev, dup := byNode[node]; dup && prev != fe {
			continue // a second endpoint for a node is harmless
		}
		byNode[node] = fe
	}
	if !found {
		return r, false
	}
	var missing []string
	for _, n := range s.Nodes {
		if _, ok := byNode[n.Name]; !ok {
			missing = append(missing, n.Name)
		}
	}
	r.Value = "NAT rules to " + fmt.Sprint(port) + ": " + mapString(byNode)
	switch {
	case len(problems) > 0:
		r.Status, r.Why = Fail, strings.Join(problems, "; ")
	case len(missing) > 0:
		r.Status, r.Why = Fail, "no NAT rule reaches "+strings.Join(missing, ", ")
	default:
		r.Status = Pass
	}
	return r, true
}

func idOf(sr *armnetwork.SubResource) string {
	if sr == nil {
		return ""
	}
	return deref(sr.ID)
}

func distinct(m map[string]string) bool {
	seen := map[string]bool{}
	for _, v := range m {
		if seen[v] {
			return false
		}
		seen[v] = true
	}
	return true
}

func mapString(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + " ← " + m[k]
	}
	return strings.Join(parts, ", ")
}

// osFamily is a VM's OS family: the OS disk's osType, else what its
// image's publisher says (Windows images come from MicrosoftWindows*).
func osFamily(v VM) string {
	switch {
	case v.OSType != "":
		return v.OSType
	case strings.Contains(strings.ToLower(v.Image), "windows"):
		return "Windows"
	case v.Image != "":
		return "Linux"
	}
	return ""
}

func sameOSRow(o *Observed) Row {
	r := Row{ID: RowSameOS, Requirement: "Every node VM runs the same OS family (the seed: no mixing Windows and Linux nodes; BLOB paths are stored in each OS's form)"}
	fams := map[string]string{}
	var unknown []string
	for _, v := range o.VMs {
		if v.Err != nil {
			r.Status, r.Resource, r.Why = NotRun, v.ID, v.Err.Error()
			return r
		}
		f := osFamily(v)
		if f == "" {
			unknown = append(unknown, v.Node)
			continue
		}
		fams[v.Node] = f
	}
	if len(o.VMs) > 0 {
		r.Resource = o.VMs[0].ID
	}
	r.Value = mapString(fams)
	vals := slices.Compact(slices.Sorted(mapValues(fams)))
	switch {
	case len(vals) > 1:
		r.Status, r.Why = Fail, "the nodes mix "+strings.Join(vals, " and ")
	case len(unknown) > 0:
		r.Status, r.Why = NotRun, "the storage profile of "+strings.Join(unknown, ", ")+" names no OS type or image"
	case len(vals) == 0:
		r.Status, r.Why = NotRun, "no node VM listed"
	default:
		r.Status = Pass
	}
	return r
}

func mapValues(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for _, v := range m {
			if !yield(v) {
				return
			}
		}
	}
}

func databaseRow(s *Spec, o *Observed) Row {
	r := Row{ID: RowDatabase, Requirement: "The database survives a zone or server loss: a failover group, or a zone-redundant or Business Critical database"}
	if s.SQL == nil {
		r.Status, r.Why = NotRun, "no azure.sql section"
		return r
	}
	if s.SQL.FailoverGroup != "" {
		r.Resource = s.FailoverGroupID()
		if o.FGErr != nil {
			r.Status, r.Why = NotRun, o.FGErr.Error()
			return r
		}
		if fg := o.FailoverGroup; fg != nil && fg.Properties != nil && len(fg.Properties.PartnerServers) > 0 {
			fp := fg.Properties
			var partners []string
			for _, p := range fp.PartnerServers {
				if p != nil {
					partners = append(partners, lastSegment(deref(p.ID))+" ("+deref(p.Location)+")")
				}
			}
			policy := ""
			if fp.ReadWriteEndpoint != nil {
				policy = string(deref(fp.ReadWriteEndpoint.FailoverPolicy))
			}
			r.Status = Pass
			r.Value = fmt.Sprintf("failover group %s: role %s, partner %s, failover policy %s", deref(fg.Name), deref(fp.ReplicationRole), strings.Join(partners, ", "), policy)
			return r
		}
		r.Status, r.Why = Fail, "the failover group has no partner server"
		return r
	}
	r.Resource = s.DatabaseID()
	if o.DBErr != nil {
		r.Status, r.Why = NotRun, o.DBErr.Error()
		return r
	}
	tier, zr := "", false
	if db := o.Database; db != nil {
		if db.SKU != nil {
			tier = deref(db.SKU.Tier)
		}
		if db.Properties != nil {
			zr = deref(db.Properties.ZoneRedundant)
		}
	}
	r.Value = fmt.Sprintf("tier %s, zoneRedundant %t, no failover group", tier, zr)
	switch {
	case zr:
		r.Status = Pass
	case strings.EqualFold(tier, "BusinessCritical") || strings.EqualFold(tier, "Premium"):
		// Business Critical and Premium keep Always On replicas.
		r.Status = Pass
	default:
		r.Status, r.Why = Fail, "a single database without zone redundancy or a failover group: losing its zone or server stops every node"
	}
	return r
}

func shareRow(s *Spec, o *Observed) Row {
	r := Row{ID: RowShareRegion, Requirement: "The shared storage is an Azure Files share in the same region as the node VMs"}
	if s.Storage == nil {
		r.Status, r.Why = NotRun, "no azure.storage section"
		return r
	}
	r.Resource = s.ShareID()
	for _, e := range []error{o.AccountErr, o.ShareErr} {
		if e != nil {
			r.Status, r.Why = NotRun, e.Error()
			return r
		}
	}
	loc := normRegion(deref(o.Account.Location))
	var other []string
	for _, v := range o.VMs {
		if v.Err == nil && normRegion(v.Location) != loc {
			other = append(other, v.Node+" in "+v.Location)
		}
	}
	quota := ""
	if o.Share.FileShareProperties != nil && o.Share.FileShareProperties.ShareQuota != nil {
		quota = fmt.Sprintf(", quota %d GiB", *o.Share.FileShareProperties.ShareQuota)
	}
	r.Value = fmt.Sprintf("share %s in account %s, region %s%s", s.Storage.Share, s.Storage.Account, deref(o.Account.Location), quota)
	if len(other) > 0 {
		r.Status, r.Why = Fail, "the share is in another region than "+strings.Join(other, ", ")+": every package read crosses regions"
		return r
	}
	r.Status = Pass
	return r
}

func normRegion(s string) string { return strings.ToLower(strings.ReplaceAll(s, " ", "")) }
