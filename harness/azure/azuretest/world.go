// Package azuretest serves a fake Azure subscription to the real ARM
// clients: the SDK's own fake servers (the fake packages of armnetwork,
// armcompute, armsql and armstorage) answer from ARM JSON documents (test
// data modelled on Microsoft's published examples) and keep the state the
// faults change: power states, services, NSG rules, the failover group's
// primary. It also throttles (429 with Retry-After) and refuses (403
// AuthorizationFailed) on demand.
package azuretest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"

	azfake "github.com/Azure/azure-sdk-for-go/sdk/azcore/fake"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v6"
	computefake "github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v6/fake"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v6"
	netfake "github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v6/fake"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/sql/armsql"
	sqlfake "github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/sql/armsql/fake"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/storage/armstorage"
	storagefake "github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/storage/armstorage/fake"
)

// World is a fake subscription.
type World struct {
	mu        sync.Mutex
	lbs       map[string]armnetwork.LoadBalancer
	gateways  map[string]armnetwork.ApplicationGateway
	wafs      map[string]armnetwork.WebApplicationFirewallPolicy
	nics      map[string]armnetwork.Interface
	vms       map[string]armcompute.VirtualMachine
	fgs       map[string]armsql.FailoverGroup
	dbs       map[string]armsql.Database
	accounts  map[string]armstorage.Account
	shares    map[string]armstorage.FileShare
	stopped   map[string]bool // VMs powered off
	services  map[string]bool // VMs whose Octopus service is stopped
	rules     map[string]map[string]armnetwork.SecurityRule
	primary   string // failover group's primary server
	mutations []string

	// Throttle answers the next N requests 429 with RetryAfter.
	Throttle   int
	RetryAfter string
	// DenyWrites answers every change 403 AuthorizationFailed; DenyAll
	// every request.
	DenyWrites, DenyAll bool
	// HoldPowerOff, when set, makes a power-off land and its answer wait
	// until the request is cancelled (an interrupted run); it is closed
	// when the power-off has landed. Set it before the world is used.
	HoldPowerOff chan struct{}
	requests     int
}

// Load reads the ARM documents of dirs, later ones replacing earlier
// ones of the same type and name.
func Load(dirs ...string) (*World, error) {
	w := &World{lbs: map[string]armnetwork.LoadBalancer{}, gateways: map[string]armnetwork.ApplicationGateway{}, wafs: map[string]armnetwork.WebApplicationFirewallPolicy{},
		nics: map[string]armnetwork.Interface{}, vms: map[string]armcompute.VirtualMachine{}, fgs: map[string]armsql.FailoverGroup{}, dbs: map[string]armsql.Database{},
		accounts: map[string]armstorage.Account{}, shares: map[string]armstorage.FileShare{}, stopped: map[string]bool{}, services: map[string]bool{},
		rules: map[string]map[string]armnetwork.SecurityRule{}, RetryAfter: "1"}
	for _, dir := range dirs {
		files, err := filepath.Glob(filepath.Join(dir, "*.json"))
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				return nil, err
			}
			if err := w.add(b); err != nil {
				return nil, fmt.Errorf("%s: %w", f, err)
			}
		}
	}
	for _, fg := range w.fgs {
		if fg.ID != nil {
			parts := strings.Split(*fg.ID, "/")
			w.primary = strings.ToLower(parts[8]) // …/servers/<name>/failoverGroups/…
		}
	}
	return w, nil
}

func (w *World) add(b []byte) error {
	var head struct{ Name, Type string }
	if err := json.Unmarshal(b, &head); err != nil {
		return err
	}
	key := strings.ToLower(head.Name)
	var err error
	switch strings.ToLower(head.Type) {
	case "microsoft.network/loadbalancers":
		var v armnetwork.LoadBalancer
		err = json.Unmarshal(b, &v)
		w.lbs[key] = v
	case "microsoft.network/applicationgateways":
		var v armnetwork.ApplicationGateway
		err = json.Unmarshal(b, &v)
		w.gateways[key] = v
	case "microsoft.network/applicationgatewaywebapplicationfirewallpolicies":
		var v armnetwork.WebApplicationFirewallPolicy
		err = json.Unmarshal(b, &v)
		w.wafs[key] = v
	case "microsoft.network/networkinterfaces":
		var v armnetwork.Interface
		err = json.Unmarshal(b, &v)
		w.nics[key] = v
	case "microsoft.compute/virtualmachines":
		var v armcompute.VirtualMachine
		err = json.Unmarshal(b, &v)
		w.vms[key] = v
	case "microsoft.sql/servers/failovergroups":
		var v armsql.FailoverGroup
		err = json.Unmarshal(b, &v)
		w.fgs[key] = v
	case "microsoft.sql/servers/databases":
		var v armsql.Database
		err = json.Unmarshal(b, &v)
		w.dbs[key] = v
	case "microsoft.storage/storageaccounts":
		var v armstorage.Account
		err = json.Unmarshal(b, &v)
		w.accounts[key] = v
	case "microsoft.storage/storageaccounts/fileservices/shares":
		var v armstorage.FileShare
		err = json.Unmarshal(b, &v)
		w.shares[key] = v
	default:
		return fmt.Errorf("unknown resource type %q", head.Type)
	}
	return err
}

// HoldPowerOffs sets (or, nil, clears) HoldPowerOff while the world is in use.
func (w *World) HoldPowerOffs(ch chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.HoldPowerOff = ch
}

// SetVMOS changes a VM's OS type (a mixed cluster).
func (w *World) SetVMOS(vm, os string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	v := w.vms[strings.ToLower(vm)]
	t := armcompute.OperatingSystemTypes(os)
	v.Properties.StorageProfile.OSDisk.OSType = &t
	w.vms[strings.ToLower(vm)] = v
}

// AddRule puts an existing rule into an NSG.
func (w *World) AddRule(nsg, name string, r armnetwork.SecurityRule) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.rules[nsg] == nil {
		w.rules[nsg] = map[string]armnetwork.SecurityRule{}
	}
	r.Name = &name
	w.rules[nsg][name] = r
}

// Rules lists an NSG's rules by name.
func (w *World) Rules(nsg string) map[string]armnetwork.SecurityRule {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string]armnetwork.SecurityRule{}
	for k, v := range w.rules[nsg] {
		out[k] = v
	}
	return out
}

// Stopped reports whether a VM is powered off; ServiceStopped whether its
// Octopus service is stopped; Primary the failover group's primary.
func (w *World) Stopped(vm string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stopped[strings.ToLower(vm)]
}

// ServiceStopped reports whether the Octopus service on vm is stopped.
func (w *World) ServiceStopped(vm string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.services[strings.ToLower(vm)]
}

// Primary is the failover group's primary server.
func (w *World) Primary() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.primary
}

// Mutations lists the changes made, in order ("power off octo1", …).
func (w *World) Mutations() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.mutations...)
}

// Requests counts the requests that reached the world (throttled ones
// included).
func (w *World) Requests() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.requests
}

func (w *World) mutate(what string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.mutations = append(w.mutations, what)
}

// Transport routes each request to the fake server of its provider,
// after the world's throttling and refusals.
func (w *World) Transport() policy.Transporter {
	nf, cf, sf, stf := w.network(), w.compute(), w.sql(), w.storage()
	return transport{w: w, byProvider: map[string]policy.Transporter{
		"microsoft.network": netfake.NewServerFactoryTransport(nf),
		"microsoft.compute": computefake.NewServerFactoryTransport(cf),
		"microsoft.sql":     sqlfake.NewServerFactoryTransport(sf),
		"microsoft.storage": storagefake.NewServerFactoryTransport(stf),
	}}
}

type transport struct {
	w          *World
	byProvider map[string]policy.Transporter
}

func (t transport) Do(req *http.Request) (*http.Response, error) {
	w := t.w
	w.mu.Lock()
	w.requests++
	throttle := w.Throttle > 0
	if throttle {
		w.Throttle--
	}
	deny := w.DenyAll || (w.DenyWrites && req.Method != http.MethodGet)
	ra := w.RetryAfter
	w.mu.Unlock()
	switch {
	case throttle:
		h := http.Header{"Content-Type": {"application/json"}, "Retry-After": {ra}}
		return respond(req, http.StatusTooManyRequests, h, `{"error":{"code":"TooManyRequests","message":"The request is being throttled."}}`), nil
	case deny:
		return respond(req, http.StatusForbidden, http.Header{"Content-Type": {"application/json"}, "x-ms-error-code": {"AuthorizationFailed"}},
			`{"error":{"code":"AuthorizationFailed","message":"The client 'octoha-test' does not have authorization to perform this action over scope '`+req.URL.Path+`'."}}`), nil
	}
	path := strings.ToLower(req.URL.Path)
	for p, tr := range t.byProvider {
		if !strings.Contains(path, "/providers/"+p+"/") {
			continue
		}
		w.mu.Lock()
		hold := w.HoldPowerOff
		w.mu.Unlock()
		if hold != nil && strings.HasSuffix(path, "/poweroff") {
			// The power-off lands; its answer never comes.
			resp, err := tr.Do(req)
			if err == nil && resp.Body != nil {
				resp.Body.Close()
			}
			close(hold)
			<-req.Context().Done()
			return nil, req.Context().Err()
		}
		return tr.Do(req)
	}
	return respond(req, http.StatusNotFound, nil, `{"error":{"code":"NoRegisteredProviderFound"}}`), nil
}

func respond(req *http.Request, code int, h http.Header, body string) *http.Response {
	if h == nil {
		h = http.Header{}
	}
	return &http.Response{StatusCode: code, Status: fmt.Sprintf("%d %s", code, http.StatusText(code)), Header: h, Body: io.NopCloser(strings.NewReader(body)), Request: req, ContentLength: int64(len(body))}
}

func notFound(e *azfake.ErrorResponder) { e.SetResponseError(http.StatusNotFound, "ResourceNotFound") }
