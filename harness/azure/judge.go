package azure

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v6"
)

// Row statuses (the certificate's).
const (
	Pass   = "PASS"
	Fail   = "FAIL"
	NotRun = "NOT RUN"
)

// Row IDs.
const (
	RowProbe       = "azure-probe"
	RowEjection    = "azure-ejection-bound"
	RowTimeout     = "azure-request-timeout"
	RowWAF         = "azure-waf-limits"
	RowAffinity    = "azure-session-persistence"
	RowPolling     = "azure-polling-endpoints"
	RowSameOS      = "azure-same-os"
	RowDatabase    = "azure-database-ha"
	RowShareRegion = "azure-share-region"
)

// PingPath is the path a health probe must request: Octopus answers it
// 200 when the node serves, 418 when drained, 503 when not ready.
const PingPath = "/api/octopusservernodes/ping"

// Row is one configuration verdict, with the resource judged and the
// value seen there.
type Row struct {
	ID          string `json:"id"`
	Requirement string `json:"requirement"`
	Status      string `json:"status"`
	Resource    string `json:"resource,omitempty"`
	Value       string `json:"value,omitempty"`
	Why         string `json:"why,omitempty"`
}

// Settings are what the rows judge against that ARM does not hold.
type Settings struct {
	// MaxPackage is the largest package the cluster must take (bytes), and
	// UploadRate the rate it is uploaded at (bytes per second): their
	// quotient is the time a request timeout must allow.
	MaxPackage int64
	UploadRate float64
}

// Azure's defaults the rows fall back on when a property is absent, with
// their sources (azure-docs; see docs/azure-certify.md).
const (
	// load-balancer/load-balancer-custom-probe-overview.md gives 5 s, the
	// REST reference (Probe: intervalInSeconds) 15 s: the longer one, so
	// the ejection bound is never underestimated.
	lbDefaultInterval = 15
	// REST reference, Probe: probeThreshold defaults to 1.
	lbDefaultThreshold = 1
	// application-gateway/application-gateway-probe-overview.md: the
	// default probe runs every 30 s, unhealthy after 3 failures, path /,
	// healthy on 200–399.
	agwDefaultInterval  = 30
	agwDefaultThreshold = 3
	agwDefaultMatch     = "200-399"
	// application-gateway/configuration-http-settings.md: request
	// timeout 20 s by default.
	agwDefaultRequestTimeout = 20
	// web-application-firewall/ag/application-gateway-waf-request-size-limits.md:
	// file upload limit 100 MB by default.
	wafDefaultFileUploadMB = 100
)

// Judge decides every configuration row from what was observed.
func Judge(s *Spec, o *Observed, set Settings) []Row {
	hp := httpPath(s, o)
	bound := hp.bound()
	return []Row{
		hp.probeRow(),
		bound,
		hp.timeoutRow(set),
		hp.wafRow(o, set),
		hp.affinityRow(),
		pollingRow(s, o),
		sameOSRow(o),
		databaseRow(s, o),
		shareRow(s, o),
	}
}

// EjectionBound is interval × threshold of the probe that decides the
// nodes' health, the bound the dynamic rows measure ejection against.
func EjectionBound(s *Spec, o *Observed) (interval time.Duration, threshold int, ok bool) {
	hp := httpPath(s, o)
	if hp.err != nil || hp.missing != "" {
		return 0, 0, false
	}
	return time.Duration(hp.interval) * time.Second, hp.threshold, true
}

// path is the HTTP path through the gateway (if any) or the load
// balancer to the pool: the probe, settings and rule that serve it.
type path struct {
	kind, id string // "application gateway" / "load balancer", and its ID
	err      error  // reading it failed
	missing  string // the pool, rule or probe is not there
	// Probe.
	probeID, probePath, protocol, match string
	interval, threshold                 int
	// Request timeout (gateway), seconds; idle timeout (LB), minutes.
	requestTimeout, idleMinutes int
	settingsID                  string
	affinity                    string // Enabled / SourceIP… / Default…
	affinityOn                  bool
	ruleID                      string
}

func httpPath(s *Spec, o *Observed) path {
	if s.ApplicationGateway != nil {
		return gatewayPath(s, o)
	}
	return lbPath(s, o)
}

func lbPath(s *Spec, o *Observed) path {
	p := path{kind: "load balancer", id: s.LoadBalancerID()}
	if o.LBErr != nil {
		p.err = o.LBErr
		return p
	}
	props := o.LB.Properties
	if props == nil {
		p.missing = "the load balancer has no properties"
		return p
	}
	poolID := ""
	for _, bp := range props.BackendAddressPools {
		if bp != nil && strings.EqualFold(deref(bp.Name), s.LoadBalancer.BackendPool) {
			poolID = deref(bp.ID)
		}
	}
	if poolID == "" {
		p.missing = fmt.Sprintf("no backend pool %q", s.LoadBalancer.BackendPool)
		return p
	}
	var rule *armnetwork.LoadBalancingRule
	for _, r := range props.LoadBalancingRules {
		if r == nil || r.Properties == nil || deref(r.Properties.BackendPort) == int32(s.PollingPort()) {
			continue // the polling port's rule is the polling row's business
		}
		if sameID(r.Properties.BackendAddressPool, poolID) || slices.ContainsFunc(r.Properties.BackendAddressPools, func(sr *armnetwork.SubResource) bool { return sameID(sr, poolID) }) {
			rule = r
			break
		}
	}
	if rule == nil {
		p.missing = fmt.Sprintf("no load-balancing rule sends HTTP to pool %q", s.LoadBalancer.BackendPool)
		return p
	}
	p.ruleID = deref(rule.ID)
	p.idleMinutes = int(deref(rule.Properties.IdleTimeoutInMinutes))
	ld := "Default"
	if rule.Properties.LoadDistribution != nil {
		ld = string(*rule.Properties.LoadDistribution)
	}
	p.affinity = "loadDistribution " + ld
	p.affinityOn = ld == string(armnetwork.LoadDistributionSourceIP) || ld == string(armnetwork.LoadDistributionSourceIPProtocol)
	if rule.Properties.Probe == nil || rule.Properties.Probe.ID == nil {
		p.missing = fmt.Sprintf("rule %s has no health probe", deref(rule.Name))
		return p
	}
	for _, pr := range props.Probes {
		if pr == nil || !strings.EqualFold(deref(pr.ID), *rule.Properties.Probe.ID) || pr.Properties == nil {
			continue
		}
		p.probeID = deref(pr.ID)
		p.protocol = string(deref(pr.Properties.Protocol))
		p.probePath = deref(pr.Properties.RequestPath)
		// load-balancer-custom-probe-overview.md: an HTTP(S) probe is
		// healthy only on 200.
		p.match = "200"
		p.interval = int(deref(pr.Properties.IntervalInSeconds))
		if p.interval == 0 {
			p.interval = lbDefaultInterval
		}
		p.threshold = int(deref(pr.Properties.ProbeThreshold))
		if p.threshold == 0 {
			p.threshold = lbDefaultThreshold
		}
		return p
	}
	p.missing = fmt.Sprintf("rule %s names probe %s, which is not on the load balancer", deref(rule.Name), *rule.Properties.Probe.ID)
	return p
}

func gatewayPath(s *Spec, o *Observed) path {
	p := path{kind: "application gateway", id: s.GatewayID()}
	if o.GatewayErr != nil {
		p.err = o.GatewayErr
		return p
	}
	props := o.Gateway.Properties
	if props == nil {
		p.missing = "the gateway has no properties"
		return p
	}
	poolID := ""
	for _, bp := range props.BackendAddressPools {
		if bp != nil && strings.EqualFold(deref(bp.Name), s.ApplicationGateway.BackendPool) {
			poolID = deref(bp.ID)
		}
	}
	if poolID == "" {
		p.missing = fmt.Sprintf("no backend pool %q", s.ApplicationGateway.BackendPool)
		return p
	}
	var settingsID string
	for _, r := range props.RequestRoutingRules {
		if r != nil && r.Properties != nil && sameID(r.Properties.BackendAddressPool, poolID) && r.Properties.BackendHTTPSettings != nil {
			settingsID = deref(r.Properties.BackendHTTPSettings.ID)
			p.ruleID = deref(r.ID)
			break
		}
	}
	if settingsID == "" {
		p.missing = fmt.Sprintf("no request routing rule sends to pool %q", s.ApplicationGateway.BackendPool)
		return p
	}
	var hs *armnetwork.ApplicationGatewayBackendHTTPSettings
	for _, h := range props.BackendHTTPSettingsCollection {
		if h != nil && strings.EqualFold(deref(h.ID), settingsID) {
			hs = h
		}
	}
	if hs == nil || hs.Properties == nil {
		p.missing = fmt.Sprintf("backend settings %s are not on the gateway", settingsID)
		return p
	}
	p.settingsID = settingsID
	p.requestTimeout = int(deref(hs.Properties.RequestTimeout))
	if p.requestTimeout == 0 {
		p.requestTimeout = agwDefaultRequestTimeout
	}
	aff := string(deref(hs.Properties.CookieBasedAffinity))
	if aff == "" {
		aff = "Disabled"
	}
	p.affinity = "cookieBasedAffinity " + aff
	p.affinityOn = aff == string(armnetwork.ApplicationGatewayCookieBasedAffinityEnabled)
	if hs.Properties.Probe == nil || hs.Properties.Probe.ID == nil {
		// The default probe.
		p.probeID = settingsID + " (default probe)"
		p.probePath, p.match, p.interval, p.threshold = "/", agwDefaultMatch, agwDefaultInterval, agwDefaultThreshold
		p.protocol = string(deref(hs.Properties.Protocol))
		return p
	}
	for _, pr := range props.Probes {
		if pr == nil || pr.Properties == nil || !strings.EqualFold(deref(pr.ID), *hs.Properties.Probe.ID) {
			continue
		}
		pp := pr.Properties
		p.probeID = deref(pr.ID)
		p.protocol = string(deref(pp.Protocol))
		p.probePath = deref(pp.Path)
		p.match = agwDefaultMatch
		if pp.Match != nil && len(pp.Match.StatusCodes) > 0 {
			var codes []string
			for _, c := range pp.Match.StatusCodes {
				codes = append(codes, deref(c))
			}
			p.match = strings.Join(codes, ",")
		}
		p.interval = int(deref(pp.Interval))
		if p.interval == 0 {
			p.interval = agwDefaultInterval
		}
		p.threshold = int(deref(pp.UnhealthyThreshold))
		if p.threshold == 0 {
			p.threshold = agwDefaultThreshold
		}
		return p
	}
	p.missing = fmt.Sprintf("backend settings name probe %s, which is not on the gateway", *hs.Properties.Probe.ID)
	return p
}

// notRun is the row when the path could not be read or is incomplete.
func (p path) unjudged(r Row) (Row, bool) {
	switch {
	case p.err != nil:
		r.Status, r.Resource, r.Why = NotRun, p.id, p.err.Error()
		return r, true
	case p.missing != "":
		r.Status, r.Resource, r.Why = Fail, p.id, p.kind+": "+p.missing
		return r, true
	}
	return r, false
}

func (p path) probeRow() Row {
	r := Row{ID: RowProbe, Requirement: "The health probe requests " + PingPath + " and counts only 200 (2xx) healthy: a drained node's 418 takes it out"}
	if r, done := p.unjudged(r); done {
		return r
	}
	r.Resource = p.probeID
	r.Value = fmt.Sprintf("protocol %s, path %q, healthy on %s", p.protocol, p.probePath, p.match)
	switch {
	case strings.EqualFold(p.protocol, "Tcp"):
		r.Status, r.Why = Fail, "a TCP probe sees only that the port is open: a drained (418) or not-ready (503) node stays in rotation"
	case !strings.EqualFold(strings.TrimRight(p.probePath, "/"), PingPath):
		r.Status, r.Why = Fail, fmt.Sprintf("the probe requests %q, not %s: it cannot see a drain", p.probePath, PingPath)
	case !matches(p.match, 200):
		r.Status, r.Why = Fail, "the probe's match does not accept 200: every node would be down"
	case matches(p.match, 418):
		r.Status, r.Why = Fail, fmt.Sprintf("the probe's match %s accepts 418: a drained node stays in rotation", p.match)
	case matches(p.match, 503):
		r.Status, r.Why = Fail, fmt.Sprintf("the probe's match %s accepts 503: a node that is not ready stays in rotation", p.match)
	default:
		r.Status = Pass
	}
	return r
}

// matches says whether status is in a probe match ("200-399", "200,418").
func matches(match string, status int) bool {
	for _, part := range strings.Split(match, ",") {
		part = strings.TrimSpace(part)
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(strings.TrimSpace(lo))
		if err != nil {
			continue
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(strings.TrimSpace(hi)); err != nil {
				continue
			}
		}
		if status >= a && status <= b {
			return true
		}
	}
	return false
}

func (p path) bound() Row {
	r := Row{ID: RowEjection, Requirement: "The probe's interval × threshold bounds how long a drained or dead node keeps receiving new requests; the drain and failover rows measure against it"}
	if r, done := p.unjudged(r); done {
		return r
	}
	r.Resource = p.probeID
	b := time.Duration(p.interval*p.threshold) * time.Second
	r.Value = fmt.Sprintf("interval %ds × threshold %d = %s", p.interval, p.threshold, b)
	r.Status = Pass
	return r
}

func (p path) timeoutRow(set Settings) Row {
	r := Row{ID: RowTimeout, Requirement: "The load balancer lets the largest package upload finish: its request timeout is at least the upload's time"}
	if r, done := p.unjudged(r); done {
		return r
	}
	if p.kind == "load balancer" {
		r.Resource = p.ruleID
		r.Status = Pass
		r.Value = fmt.Sprintf("layer 4: no request timeout; idle timeout %d min ends only idle flows", p.idleMinutes)
		return r
	}
	r.Resource = p.settingsID
	r.Value = fmt.Sprintf("requestTimeout %ds", p.requestTimeout)
	if set.MaxPackage <= 0 || set.UploadRate <= 0 {
		r.Status, r.Why = NotRun, "give --max-package and --upload-rate: the time the largest package takes is what the timeout is judged against"
		return r
	}
	need := time.Duration(float64(set.MaxPackage) / set.UploadRate * float64(time.Second)).Round(time.Second)
	r.Value += fmt.Sprintf("; the largest package (%s at %s/s) takes %s", sizeString(set.MaxPackage), sizeString(int64(set.UploadRate)), need)
	if time.Duration(p.requestTimeout)*time.Second < need {
		r.Status, r.Why = Fail, fmt.Sprintf("the gateway ends an upload after %ds, before the largest package arrives (%s): raise requestTimeout on %s", p.requestTimeout, need, lastSegment(p.settingsID))
		return r
	}
	r.Status = Pass
	return r
}

func (p path) wafRow(o *Observed, set Settings) Row {
	r := Row{ID: RowWAF, Requirement: "No WAF limit refuses a package upload: file-upload and request-body limits off, detection only, or above the largest package"}
	if r, done := p.unjudged(r); done {
		return r
	}
	if p.kind == "load balancer" {
		r.Resource, r.Status, r.Value = p.id, Pass, "layer 4: no WAF"
		return r
	}
	if o.WAFErr != nil {
		r.Status, r.Why = NotRun, o.WAFErr.Error()
		return r
	}
	var w wafView
	switch {
	case o.WAF != nil:
		w = policyView(o)
	case o.Gateway.Properties.WebApplicationFirewallConfiguration != nil:
		w = inlineView(p.id, o.Gateway.Properties.WebApplicationFirewallConfiguration)
	default:
		r.Resource, r.Status, r.Value = p.id, Pass, "no WAF on the gateway"
		return r
	}
	r.Resource = w.id
	r.Value = w.String()
	switch {
	case !w.enabled:
		r.Status = Pass
	case !w.prevention:
		r.Status, r.Why = Pass, "detection mode: oversized requests are logged, not blocked"
	case !w.fileEnforced:
		r.Status, r.Why = Pass, "file-upload enforcement is off"
	case set.MaxPackage <= 0:
		r.Status, r.Why = NotRun, "give --max-package: the largest package is what the file-upload limit is judged against"
	case int64(w.fileMB)*1024*1024 < set.MaxPackage:
		// Octopus pushes a package as multipart/form-data with a file
		// name: the file-upload limit applies (request-size-limits page).
		r.Status, r.Why = Fail, fmt.Sprintf("the WAF blocks uploads above %d MB in prevention mode; the largest package is %s", w.fileMB, sizeString(set.MaxPackage))
	default:
		r.Status = Pass
	}
	return r
}

type wafView struct {
	id                                         string
	enabled, prevention, fileEnforced, bodyChk bool
	fileMB, bodyKB                             int
}

func (w wafView) String() string {
	if !w.enabled {
		return "WAF disabled"
	}
	mode := "Detection"
	if w.prevention {
		mode = "Prevention"
	}
	s := fmt.Sprintf("mode %s, file upload limit %d MB (enforced %t), request body limit %d KB (check %t; file uploads are not counted in it)", mode, w.fileMB, w.fileEnforced, w.bodyKB, w.bodyChk)
	return s
}

func policyView(o *Observed) wafView {
	w := wafView{id: deref(o.WAF.ID), enabled: true, fileEnforced: true, fileMB: wafDefaultFileUploadMB, bodyChk: true, bodyKB: 128}
	if o.WAF.Properties == nil || o.WAF.Properties.PolicySettings == nil {
		return w
	}
	ps := o.WAF.Properties.PolicySettings
	if ps.State != nil {
		w.enabled = *ps.State == armnetwork.WebApplicationFirewallEnabledStateEnabled
	}
	w.prevention = deref(ps.Mode) == armnetwork.WebApplicationFirewallModePrevention
	if ps.FileUploadEnforcement != nil {
		w.fileEnforced = *ps.FileUploadEnforcement
	}
	if ps.FileUploadLimitInMb != nil {
		w.fileMB = int(*ps.FileUploadLimitInMb)
	}
	if ps.RequestBodyCheck != nil {
		w.bodyChk = *ps.RequestBodyCheck
	}
	if ps.MaxRequestBodySizeInKb != nil {
		w.bodyKB = int(*ps.MaxRequestBodySizeInKb)
	}
	return w
}

func inlineView(gatewayID string, c *armnetwork.ApplicationGatewayWebApplicationFirewallConfiguration) wafView {
	w := wafView{id: gatewayID + " (webApplicationFirewallConfiguration)", enabled: deref(c.Enabled), fileEnforced: true, fileMB: wafDefaultFileUploadMB, bodyChk: deref(c.RequestBodyCheck), bodyKB: int(deref(c.MaxRequestBodySizeInKb))}
	w.prevention = deref(c.FirewallMode) == armnetwork.ApplicationGatewayFirewallModePrevention
	if c.FileUploadLimitInMb != nil {
		w.fileMB = int(*c.FileUploadLimitInMb)
	}
	return w
}

func (p path) affinityRow() Row {
	r := Row{ID: RowAffinity, Requirement: "Session persistence is on (cookie affinity or client IP): the seed's workaround for each node's permission cache"}
	if r, done := p.unjudged(r); done {
		return r
	}
	r.Resource = p.settingsID
	if p.kind == "load balancer" {
		r.Resource = p.ruleID
	}
	r.Value = p.affinity
	if p.affinityOn {
		r.Status = Pass
	} else {
		r.Status, r.Why = Fail, "no session persistence: consecutive requests of one user reach different nodes, each with its own permission cache"
	}
	return r
}

func sameID(sr *armnetwork.SubResource, id string) bool {
	return sr != nil && sr.ID != nil && strings.EqualFold(*sr.ID, id)
}

func lastSegment(id string) string {
	if i := strings.LastIndexByte(id, '/'); i >= 0 {
		return id[i+1:]
	}
	return id
}

func sizeString(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", n>>30)
	case n >= 1<<20:
		return fmt.Sprintf("%.0fMiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.0fKiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%dB", n)
}
