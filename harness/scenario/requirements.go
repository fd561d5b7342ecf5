package scenario

// Requirement is one thing the seed document asks of an Octopus HA
// cluster; `octoha certify` writes one certificate row per requirement,
// decided by the scenarios that name it in Certifies.
type Requirement struct {
	ID   string `json:"id"`
	Text string `json:"text"`
	// Optional requirements are reported as present or absent, never as
	// a failure of the cluster.
	Optional bool `json:"optional,omitempty"`
	// Key names the checks and figures whose verdicts are this row's
	// headline evidence.
	Key []string `json:"key,omitempty"`
}

// Requirement IDs.
const (
	ReqHealthCheckPath = "lb-health-check"
	ReqDrainEjects     = "drain-ejects"
	ReqLargeUpload     = "large-upload"
	ReqSamePackages    = "same-packages"
	ReqFailover        = "failover"
	ReqDatabaseOutage  = "database-outage"
	ReqStickiness      = "stickiness"
	ReqSameOS          = "same-os"
	ReqPolling         = "polling-every-node"
	// Azure's load balancers (issue 20, docs/azure.md).
	ReqProbeBound = "lb-probe-bound"
	ReqLongUpload = "long-upload"
	ReqOver100MB  = "package-over-100mb"
)

// Requirements lists the certificate's rows, in order.
func Requirements() []Requirement {
	return []Requirement{
		{ID: ReqHealthCheckPath, Text: "The load balancer's health check uses /api/octopusservernodes/ping: a node answering 418 or 503 is taken out, and back in on 200", Key: []string{"convergence"}},
		{ID: ReqDrainEjects, Text: "A drained node (418) is out of rotation within the load balancer's interval × fall, and its in-flight upload completes", Key: []string{"convergence", "uploads-in-flight-at-drain"}},
		{ID: ReqLargeUpload, Text: "A large package upload passes the load balancer (no body limit, no proxy timeout)", Key: []string{"upload-path", "upload-throughput"}},
		{ID: ReqSamePackages, Text: "Every node serves the same packages (uploaded through one node, read back byte-identical through every other)", Key: []string{"durability"}},
		{ID: ReqFailover, Text: "When a node is lost the cluster fails over within the bound and loses no acknowledged upload", Key: []string{"convergence", "durability"}},
		{ID: ReqDatabaseOutage, Text: "The cluster recovers by itself from a database outage and loses no acknowledged upload", Key: []string{"db-up-to-cluster-serving", "durability"}},
		{ID: ReqSameOS, Text: "Every node runs the same operating system, all Windows or all Linux containers (BLOB paths are stored in each OS's form); a node's OS comes from the cluster YAML, since Octopus's API does not expose it", Key: []string{"downloads"}},
		{ID: ReqPolling, Text: "Polling Tentacles poll every node: one polling endpoint per node (unique address, or a unique port on the load balancer), each accepting TLS with the cluster's certificate", Key: []string{"polling-endpoints", "nodes"}},
		{ID: ReqProbeBound, Text: "A node whose probe fails is out of rotation within the load balancer's configured probe bound, interval × threshold (Azure Load Balancer: 5 s × probeThreshold; Application Gateway: 30 s × 3; lb.azure in the cluster YAML)", Key: []string{"eject", "probe-bound"}},
		{ID: ReqLongUpload, Text: "An upload lasting longer than 20 s passes (Application Gateway's default backend request timeout, 20 s, was raised)", Key: []string{"upload-path"}},
		{ID: ReqOver100MB, Text: "A package above 100 MB passes (no WAF file upload limit, 100 MB by default on Application Gateway, in the way)", Key: []string{"upload-path"}},
		{ID: ReqStickiness, Text: "Session stickiness (optional): a client keeping its session cookie stays on one node", Optional: true, Key: []string{StickyFigure}},
	}
}
