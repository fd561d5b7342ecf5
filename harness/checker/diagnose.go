package checker

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/octoha/octoha/harness/history"
)

// Finding names a load-balancer misconfiguration seen in upload failures.
type Finding struct {
	Name string // stable key, e.g. "body-limit"
	// Explanation says what it means for Octopus and what to change.
	Explanation string
}

// Upload-path findings, keyed by what clients saw.
var (
	FindingBodyLimit = Finding{"body-limit", "the load balancer refuses large request bodies (413 Request Entity Too Large): Octopus has no size limit of its own and 1 GB+ packages must pass — raise or remove the limit (nginx: client_max_body_size 0; HAProxy has none by default)"}
	FindingLBTimeout = Finding{"lb-timeout", "the load balancer timed the upload out (504 Gateway Timeout waiting for the node, or 408 Request Timeout when the whole request did not arrive in time): a 1 GB package from a slow client takes minutes, longer than the limit — raise or remove it (a total request limit: Caddy `servers { timeouts { read_body } }` in the global options, Traefik entryPoints.<name>.transport.respondingTimeouts.readTimeout, Go http.Server ReadTimeout, Azure Application Gateway request time-out; inactivity timers: HAProxy timeout server / timeout client, nginx proxy_send_timeout / proxy_read_timeout / client_body_timeout)"}
	// FindingLBEmptyAck: a 2xx that no node gave. Measured with Caddy
	// 2.6.2: when read_body expires mid-body the request context ends,
	// Caddy writes nothing, and Go's server sends 200 with no body.
	FindingLBEmptyAck = Finding{"lb-empty-ack", "the load balancer cut the upload and answered 2xx itself with an empty body, no node's answer (Caddy 2.6 does this when its total request read limit expires: 200 OK after exactly the limit): a client that trusts the status believes a package stored that no node kept — raise or remove the limit (Caddy: `servers { timeouts { read_body } }` in the global options; Go http.Server ReadTimeout)"}
	// The Azure Application Gateway model's answers (harness/lb
	// gatewayFront) name their setting; so do these findings.
	FindingAppGWTimeout = Finding{"appgw-request-timeout", "Azure Application Gateway's backend request timeout cut the upload (504 after the backend setting's \"Request time-out\", 20 s by default): a large package from a slow client takes longer — raise the backend setting's request time-out (1–86400 s; octoha lb.azure.requestTimeout)"}
	FindingWAFUpload    = Finding{"waf-upload-limit", "Azure Application Gateway's WAF refused the package (413: above the WAF's file upload limit, 100 MB by default, or its request body limit): Octopus packages are multipart file uploads and 1 GB+ must pass — raise the WAF policy's file upload limit (fileUploadLimitInMb) or turn off request-body enforcement (octoha lb.azure.wafFileUploadLimit)"}
	FindingBadGW        = Finding{"bad-gateway", "the load balancer lost the node mid-request (502 Bad Gateway): a node died or the connection to it was cut"}
	FindingNoNode       = Finding{"no-node", "the load balancer had no healthy node (503 with no node answering)"}
	FindingCutOff       = Finding{"connection-cut", "connections were closed without any answer during uploads (e.g. nginx client_body_timeout, or a node that died)"}
)

// DiagnoseUploads reads the upload attempts of a history and names the
// load-balancer misconfigurations they show, the way a certification run
// must report them: a body-size limit (413 from something that is not a
// node), proxy timeouts (504, 408), an empty 2xx no node gave, lost backends (502), no healthy backend (503
// without a node), connections cut without an answer. Lost backends, no
// healthy backend and cut connections are what a fault looks like, so
// inside a fault window (plus DefaultGrace) they are expected and only
// counted; a body limit or a proxy timeout is a misconfiguration wherever
// it shows. It passes when no misconfiguration is seen.
func DiagnoseUploads(h *history.History) Result {
	r := Result{Name: "upload-path"}
	var ev evidence
	counts := map[string]int{}
	examples := map[string][]string{}
	total, expected := 0, 0
	for _, op := range h.Ops {
		if op.Kind != history.KindUpload {
			continue
		}
		total++
		var f *Finding
		switch {
		case op.Status == 413 && op.Node == "" && strings.Contains(op.Error, "application gateway WAF"):
			f = &FindingWAFUpload
		case op.Status == 504 && op.Node == "" && strings.Contains(op.Error, "application gateway request timeout"):
			f = &FindingAppGWTimeout
		case op.Status == 413 && op.Node == "":
			f = &FindingBodyLimit
		case (op.Status == 504 || op.Status == 408) && op.Node == "":
			f = &FindingLBTimeout
		case op.Status/100 == 2 && op.Node == "" && strings.HasPrefix(op.Error, history.EmptyAck):
			f = &FindingLBEmptyAck
		case op.Status == 502 && op.Node == "":
			f = &FindingBadGW
		case op.Status == 503 && op.Node == "":
			f = &FindingNoNode
		case op.Status == 0 && op.Outcome != history.OK && op.Error != "":
			f = &FindingCutOff
		}
		if f == nil {
			continue
		}
		if (f == &FindingBadGW || f == &FindingNoNode || f == &FindingCutOff) && duringFault(h, op) {
			expected++
			continue
		}
		counts[f.Name]++
		if len(examples[f.Name]) < 3 {
			// How long the attempt ran is the limit that cut it.
			examples[f.Name] = append(examples[f.Name], fmt.Sprintf("op %d %s %s: status %d after %s: %s", op.Seq, op.PackageID, op.Version, op.Status, op.End.Sub(op.Start).Round(100*time.Millisecond), op.Error))
		}
	}
	r.Figures = append(r.Figures, Figure{Name: "upload-attempts", Value: float64(total), Unit: "ops"},
		Figure{Name: "expected-during-faults", Value: float64(expected), Unit: "ops"})
	if total == 0 {
		r.Status = Skip
		r.Summary = "no uploads in this history"
		return r
	}
	var names []string
	for n := range counts {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(names) == 0 {
		r.Status = Pass
		r.Summary = fmt.Sprintf("no load-balancer limit seen in %d upload attempts", total)
		if expected > 0 {
			r.Summary += fmt.Sprintf(" (%d failed at the load balancer during faults, as expected)", expected)
		}
		return r
	}
	var found []string
	for _, n := range names {
		f := findingByName(n)
		found = append(found, n)
		r.Figures = append(r.Figures, Figure{Name: n, Value: float64(counts[n]), Unit: "ops"})
		ev.problem("%s (%d attempts): %s", n, counts[n], f.Explanation)
		for _, e := range examples[n] {
			ev.problem("  %s", e)
		}
	}
	r.Status = Fail
	r.Summary = "load balancer misconfiguration for Octopus uploads: " + strings.Join(found, ", ")
	r.Evidence = ev.lines()
	return r
}

// HasFinding reports whether a DiagnoseUploads result names f.
func HasFinding(r Result, f Finding) bool { return r.Value(f.Name) > 0 }

func findingByName(n string) Finding {
	for _, f := range []Finding{FindingBodyLimit, FindingWAFUpload, FindingAppGWTimeout, FindingLBTimeout, FindingLBEmptyAck, FindingBadGW, FindingNoNode, FindingCutOff} {
		if f.Name == n {
			return f
		}
	}
	return Finding{Name: n}
}

// duringFault reports whether an op overlaps a fault window plus grace.
func duringFault(h *history.History, op history.Op) bool {
	for _, f := range h.Faults {
		end := f.End
		if end.IsZero() {
			return !op.End.Before(f.Start)
		}
		if !op.End.Before(f.Start) && op.Start.Before(end.Add(DefaultGrace)) {
			return true
		}
	}
	return false
}
