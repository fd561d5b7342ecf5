package azure

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v6"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v6"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/sql/armsql"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/storage/armstorage"
)

// Observed is what ARM says about the cluster's resources, each with the
// error of reading it (nil when it was read, or not named in the spec).
type Observed struct {
	LB         *armnetwork.LoadBalancer
	LBErr      error
	Gateway    *armnetwork.ApplicationGateway
	GatewayErr error
	// WAF is the gateway's WAF policy (nil: none linked, or the gateway
	// uses its inline webApplicationFirewallConfiguration).
	WAF    *armnetwork.WebApplicationFirewallPolicy
	WAFErr error
	VMs    []VM
	// FailoverGroup is read when the spec names one; Database always.
	FailoverGroup *armsql.FailoverGroup
	FGErr         error
	Database      *armsql.Database
	DBErr         error
	Account       *armstorage.Account
	AccountErr    error
	Share         *armstorage.FileShare
	ShareErr      error
}

// VM is one node's VM as far as the rows need it.
type VM struct {
	Node     string
	ID       string
	Location string
	// OSType is the storage profile's osDisk.osType (Windows or Linux);
	// Image the image reference (publisher:offer:sku), for when the OS
	// disk does not say.
	OSType string
	Image  string
	NICs   []*armnetwork.Interface
	Err    error
}

// Errs lists every read error.
func (o *Observed) Errs() []error {
	errs := []error{o.LBErr, o.GatewayErr, o.WAFErr, o.FGErr, o.DBErr, o.AccountErr, o.ShareErr}
	for _, v := range o.VMs {
		errs = append(errs, v.Err)
	}
	var out []error
	for _, e := range errs {
		if e != nil {
			out = append(out, e)
		}
	}
	return out
}

// Refused returns the first read ARM refused for want of a credential or
// a role: certification stops on it, naming the role, rather than
// reporting every row NOT RUN.
func (o *Observed) Refused() error {
	for _, e := range o.Errs() {
		if errors.Is(e, ErrPermission) || errors.Is(e, ErrCredential) {
			return e
		}
	}
	return nil
}

// Observe reads every resource the spec names (Reader is enough). Reads
// that fail are recorded, not fatal: their rows say NOT RUN and why.
func Observe(ctx context.Context, c *Clients) *Observed {
	s := c.Spec
	o := &Observed{}
	if s.LoadBalancer != nil {
		o.LBErr = c.Call(ctx, "read load balancer", s.LoadBalancerID(), RoleReader, func(ctx context.Context) error {
			r, err := c.LoadBalancers.Get(ctx, s.rg(s.LoadBalancer.ResourceGroup), s.LoadBalancer.Name, nil)
			o.LB = &r.LoadBalancer
			return err
		})
	}
	if s.ApplicationGateway != nil {
		o.GatewayErr = c.Call(ctx, "read application gateway", s.GatewayID(), RoleReader, func(ctx context.Context) error {
			r, err := c.Gateways.Get(ctx, s.rg(s.ApplicationGateway.ResourceGroup), s.ApplicationGateway.Name, nil)
			o.Gateway = &r.ApplicationGateway
			return err
		})
		o.readWAF(ctx, c)
	}
	for _, n := range s.Nodes {
		o.VMs = append(o.VMs, readVM(ctx, c, n))
	}
	if s.SQL != nil {
		if s.SQL.FailoverGroup != "" {
			o.FGErr = c.Call(ctx, "read failover group", s.FailoverGroupID(), RoleReader, func(ctx context.Context) error {
				r, err := c.FailoverGrps.Get(ctx, s.rg(s.SQL.ResourceGroup), s.SQL.Server, s.SQL.FailoverGroup, nil)
				o.FailoverGroup = &r.FailoverGroup
				return err
			})
		}
		o.DBErr = c.Call(ctx, "read database", s.DatabaseID(), RoleReader, func(ctx context.Context) error {
			r, err := c.Databases.Get(ctx, s.rg(s.SQL.ResourceGroup), s.SQL.Server, s.SQL.Database, nil)
			o.Database = &r.Database
			return err
		})
	}
	if s.Storage != nil {
		rg := s.rg(s.Storage.ResourceGroup)
		o.AccountErr = c.Call(ctx, "read storage account", s.StorageAccountID(), RoleReader, func(ctx context.Context) error {
			r, err := c.Accounts.GetProperties(ctx, rg, s.Storage.Account, nil)
			o.Account = &r.Account
			return err
		})
		o.ShareErr = c.Call(ctx, "read file share", s.ShareID(), RoleReader, func(ctx context.Context) error {
			r, err := c.Shares.Get(ctx, rg, s.Storage.Account, s.Storage.Share, nil)
			o.Share = &r.FileShare
			return err
		})
	}
	return o
}

// readWAF reads the WAF policy the gateway links (or the one the spec
// names); a gateway without one has at most an inline configuration.
func (o *Observed) readWAF(ctx context.Context, c *Clients) {
	s := c.Spec
	id := ""
	switch {
	case s.WAFPolicy != "":
		id = s.WAFPolicyID()
	case o.Gateway != nil && o.Gateway.Properties != nil && o.Gateway.Properties.FirewallPolicy != nil && o.Gateway.Properties.FirewallPolicy.ID != nil:
		id = *o.Gateway.Properties.FirewallPolicy.ID
	default:
		return
	}
	rid, err := arm.ParseResourceID(id)
	if err != nil {
		o.WAFErr = fmt.Errorf("azure: the gateway's firewallPolicy %q is not a resource ID: %w", id, err)
		return
	}
	o.WAFErr = c.Call(ctx, "read WAF policy", id, RoleReader, func(ctx context.Context) error {
		r, err := c.WAFPolicies.Get(ctx, rid.ResourceGroupName, rid.Name, nil)
		o.WAF = &r.WebApplicationFirewallPolicy
		return err
	})
}

func readVM(ctx context.Context, c *Clients, n Node) VM {
	s := c.Spec
	v := VM{Node: n.Name, ID: s.VMID(n)}
	var storage *armcompute.StorageProfile
	var nics []*armcompute.NetworkInterfaceReference
	v.Err = c.Call(ctx, "read VM", v.ID, RoleReader, func(ctx context.Context) error {
		if n.VMSS != "" {
			r, err := c.ScaleSetVMs.Get(ctx, s.ResourceGroup, n.VMSS, n.Instance, nil)
			if err != nil {
				return err
			}
			v.Location = deref(r.Location)
			if p := r.Properties; p != nil {
				storage = p.StorageProfile
				if p.NetworkProfile != nil {
					nics = p.NetworkProfile.NetworkInterfaces
				}
			}
			return nil
		}
		r, err := c.VMs.Get(ctx, s.ResourceGroup, n.VM, nil)
		if err != nil {
			return err
		}
		v.Location = deref(r.Location)
		if p := r.Properties; p != nil {
			storage = p.StorageProfile
			if p.NetworkProfile != nil {
				nics = p.NetworkProfile.NetworkInterfaces
			}
		}
		return nil
	})
	if v.Err != nil {
		return v
	}
	if storage != nil {
		if storage.OSDisk != nil && storage.OSDisk.OSType != nil {
			v.OSType = string(*storage.OSDisk.OSType)
		}
		if im := storage.ImageReference; im != nil {
			v.Image = strings.Trim(deref(im.Publisher)+":"+deref(im.Offer)+":"+deref(im.SKU), ":")
		}
	}
	for _, ref := range nics {
		if ref == nil || ref.ID == nil {
			continue
		}
		nic, err := readNIC(ctx, c, n, *ref.ID)
		if err != nil {
			v.Err = err
			return v
		}
		v.NICs = append(v.NICs, nic)
	}
	return v
}

func readNIC(ctx context.Context, c *Clients, n Node, id string) (*armnetwork.Interface, error) {
	rid, err := arm.ParseResourceID(id)
	if err != nil {
		return nil, fmt.Errorf("azure: VM %s names a NIC %q that is not a resource ID: %w", n.Name, id, err)
	}
	var nic armnetwork.Interface
	err = c.Call(ctx, "read NIC", id, RoleReader, func(ctx context.Context) error {
		if n.VMSS != "" {
			r, err := c.Interfaces.GetVirtualMachineScaleSetNetworkInterface(ctx, rid.ResourceGroupName, n.VMSS, n.Instance, rid.Name, nil)
			nic = r.Interface
			return err
		}
		r, err := c.Interfaces.Get(ctx, rid.ResourceGroupName, rid.Name, nil)
		nic = r.Interface
		return err
	})
	return &nic, err
}

// PrivateIP is the primary private address of a VM's first NIC.
func (v VM) PrivateIP() string {
	for _, nic := range v.NICs {
		if nic == nil || nic.Properties == nil {
			continue
		}
		for _, ipc := range nic.Properties.IPConfigurations {
			if ipc != nil && ipc.Properties != nil && ipc.Properties.PrivateIPAddress != nil {
				return *ipc.Properties.PrivateIPAddress
			}
		}
	}
	return ""
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// ReadVM reads one node's VM and its NICs (Reader).
func ReadVM(ctx context.Context, c *Clients, n Node) VM { return readVM(ctx, c, n) }
