// Package scenario is the chaos catalogue as data. Each Scenario is a value:
// a short title and a one-sentence claim, what it needs from a cluster,
// the cluster's shape, its load, its faults, the checks it runs and which
// of them are expected to fail. Labels are derived from those fields, so
// `--labels failover` finds every scenario that kills, pauses or cuts a
// node without anyone keeping a list.
//
// The runner (harness/runner) runs a scenario's declared Load, Uploads and
// Faults itself, in one standard sequence (see Sequence): adding a
// fault-under-load scenario is adding a value to Catalogue. The few
// scenarios whose choreography truly differs (capacity, permissions,
// Tentacles, tasks, ...) have a Steps function instead, written against
// the Run interface the runner implements. Steps return errors and never
// assert; the runner turns them, and the declared checks, into a verdict.
package scenario

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/octoha/octoha/harness/checker"
	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/history"
	"github.com/octoha/octoha/harness/lb"
	"github.com/octoha/octoha/harness/nemesis"
	"github.com/octoha/octoha/harness/traffic"
)

// Labels users pick scenarios with (`octoha chaos --labels`, `make chaos
// LABELS=…`, Ginkgo's --label-filter). Every one is attached to at least
// one scenario (a test keeps it so).
const (
	LHealth   = "health"
	LDrain    = "drain"
	LFailover = "failover"
	LUpload   = "upload"
	LDatabase = "database"
	LStorage  = "storage"
	LLB       = "lb"
	LCapacity = "capacity"
	LChaos    = "chaos"
	LBroken   = "broken"
	LSlow     = "slow"
	LDocker   = "docker"
	LExternal = "external"
	LCertify  = "certify"
	LSticky   = "sticky"
	LDelta    = "delta"
	LNetwork  = "network"
	LTasks    = "tasks"

	// The seed's other HA rules (issue 14).
	LTopology    = "topology"
	LPermissions = "permissions"
	LTentacles   = "tentacles"

	// LAzure: the seed's Azure components simulated (issue 20, docs/azure.md).
	LAzure = "azure"
)

// AllLabels is every label, as the README lists them.
var AllLabels = []string{LHealth, LDrain, LFailover, LUpload, LDatabase, LStorage, LLB, LCapacity, LChaos, LBroken, LSlow, LDocker, LExternal, LCertify, LSticky, LDelta, LNetwork, LTasks, LTopology, LPermissions, LTentacles, LAzure}

// Providers a scenario may run on.
const (
	Local    = cluster.ProviderLocal
	Docker   = cluster.ProviderDocker
	External = cluster.ProviderExternal
)

// Shape is the simulated cluster a scenario asks for. An external cluster
// is what it is: a scenario that depends on its shape needs
// cluster.CapSimulated.
type Shape struct {
	Nodes int
	// LB is the load balancer kind (lb.Kind); "" is the catalogue's
	// default (HAProxy configured for Octopus).
	LB     string
	Sticky bool
	// DB and Storage default to PostgreSQL and Samba: real components
	// where installed (the local provider falls back to SQLite and a local
	// directory and says so).
	DB, Storage string
	// DBReplica makes the PostgreSQL database a failover group (primary +
	// standby behind one listener): cluster.ReplicaSync or ReplicaAsync.
	DBReplica          string
	MaxConcurrentTasks int
	// UnsafeAckBeforeStore runs deliberately broken nodes.
	UnsafeAckBeforeStore bool
	// Toxiproxy puts the cluster's links through Toxiproxy (network
	// faults, partitions on the local provider).
	Toxiproxy bool
	// LBRequestTimeout is a total request read limit (embedded LB only).
	LBRequestTimeout time.Duration
	// OS is each node's operating system (cluster.NodeSpec.OS); a mix is
	// allowed here, since a scenario sets it to show what goes wrong.
	OS []string
	// PermissionCacheTTL and PermissionCache set the nodes' permission
	// cache (cluster.NodeSpec).
	PermissionCacheTTL time.Duration
	PermissionCache    string
	// TaskPoll and OfflineAfter are the nodes' task-queue poll interval
	// and the age of a heartbeat that makes a node offline (0: the
	// nodes' defaults).
	TaskPoll, OfflineAfter time.Duration
	// RetentionInterval is how often the leader queues a Retention task
	// (0: the nodes' default; negative: never).
	RetentionInterval time.Duration
	// UnsafeTaskClaim runs nodes that claim tasks without the lock
	// (deliberately broken, OctopusDeploy/Issues#8356).
	UnsafeTaskClaim bool
	// Azure is lb.azure for the azure-lb and azure-appgw kinds; AzureFiles
	// shapes the share links like Azure Files (docs/azure.md).
	Azure      cluster.AzureLBSpec
	AzureFiles *cluster.AzureFilesSpec
}

// Spec turns the shape into a cluster spec over the defaults.
func (s Shape) Spec() cluster.Spec {
	spec := cluster.Defaults()
	spec.Nodes = max(s.Nodes, 1)
	spec.DB.Kind = cluster.DBPostgres
	spec.Storage.Kind = cluster.StorageSMB
	if s.LB != "" {
		spec.LB.Kind = s.LB
	}
	spec.LB.Sticky = s.Sticky
	if s.DB != "" {
		spec.DB.Kind = s.DB
	}
	if s.Storage != "" {
		spec.Storage.Kind = s.Storage
	}
	spec.DB.Replica = s.DBReplica
	if s.MaxConcurrentTasks > 0 {
		spec.Node.MaxConcurrentTasks = s.MaxConcurrentTasks
	}
	spec.Node.UnsafeAckBeforeStore = s.UnsafeAckBeforeStore
	spec.Toxiproxy = s.Toxiproxy
	spec.LB.RequestTimeout = s.LBRequestTimeout
	spec.Node.OS, spec.Node.AllowMixedOS = s.OS, len(s.OS) > 1
	spec.Node.PermissionCacheTTL, spec.Node.PermissionCache = s.PermissionCacheTTL, s.PermissionCache
	spec.LB.Azure = s.Azure
	if s.AzureFiles != nil {
		f := *s.AzureFiles
		spec.Storage.AzureFiles = &f
	}
	s.taskSpec(&spec)
	return spec
}

// Load is one stream of background API load through the load balancer.
type Load struct {
	Target string // traffic.TargetPing, TargetNodes, TargetPackages, TargetWork
	Rate   int    // requests per second
	// Timeout is each request's (0: 3 s).
	Timeout time.Duration
	// WarmUp is how many acknowledged requests of this load the sequence
	// waits for before anything else (0: half the rate for the first load,
	// none for the others).
	WarmUp int
	// MinOps is the min-ops:<target> check's floor (0: no such rule).
	MinOps int
}

// Uploads describes the scenario's package uploads.
type Uploads struct {
	Count, Concurrency int
	// MaxSize caps the upload size (0: the run's --upload-size). A
	// scenario whose uploads take the full size is labelled slow.
	MaxSize int64
	// Delta: the uploads are versions of one package sent as deltas (the
	// first in full, the others as deltas against it).
	Delta bool
	// The sequence's upload options: Retries (0: 5) with Backoff between
	// them (0: 500 ms), Rate caps each upload's bytes per second (0: none).
	Retries int
	Backoff time.Duration
	Rate    int64
	// Within bounds the wait for them (0: 5 minutes); Must says what must
	// hold when one fails ("uploads retried through the outage must
	// succeed").
	Within time.Duration
	Must   string
}

// FaultPlan is one fault the scenario injects. Fault and Target document
// it (and give its labels); in a scenario without Steps the rest is the
// fault step the runner's standard sequence runs.
type FaultPlan struct {
	Fault  string // a nemesis kind or network fault spec, or "random" for a seeded schedule
	Target string // which node, in words ("the node receiving an upload")
	// Victim is the rule that picks the node when the fault is injected:
	// a node name, VictimUploading, VictimUploadingOnly, or "" for a
	// fault on the whole cluster (the database, the share).
	Victim string
	// Within bounds the wait for a node receiving an upload (0: 30 s).
	Within time.Duration
	// After gates a fault without a victim: AfterUploadAcked or
	// AfterUploadActive ("": at once).
	After string
	// Hold keeps the fault on this long once the load balancer has acted
	// on it; HoldUploads keeps it on until the uploads finish, which must
	// then all succeed.
	Hold        time.Duration
	HoldUploads bool
	// Expect are what must hold once the fault is recovered and the load
	// stopped, verified before the checks run.
	Expect []Expectation
}

// Check is a check the scenario runs and what its verdict must be.
type Check struct {
	Name string
	// ExpectFail: the check must fail (a control that proves the checker
	// can fail, or a misconfigured load balancer the harness must catch);
	// it is then shown as "failed as expected" and counts as a pass.
	ExpectFail bool
	// Finding, when set, must be named by the failed check (e.g.
	// checker.FindingBodyLimit's name).
	Finding string
}

// Scenario is one entry of the catalogue.
type Scenario struct {
	// Title is short ("LB limits — nginx defaults"); Claim is one sentence
	// saying what the scenario shows when it passes.
	Title string
	Claim string
	// Topic is the scenario's own label when its fields do not imply one
	// (health, capacity, sticky).
	Topic string
	// Needs are the capabilities the cluster must have; a cluster without
	// one skips the scenario, saying why.
	Needs []cluster.Capability
	// Providers it is meant for (default local, docker and external;
	// external only when it does not need CapSimulated).
	Providers []string
	// ProviderNote says why the scenario runs only on its Providers.
	ProviderNote string
	Shape        Shape
	Load         []Load
	Uploads      *Uploads
	// Tasks are the server tasks it queues.
	Tasks  *TaskPlan
	Faults []FaultPlan
	Checks []Check
	// Certifies names the certificate requirements (Requirement IDs) whose
	// row this scenario's verdict decides.
	Certifies []string
	Timeout   time.Duration
	// Steps is the choreography.
	Steps func(ctx context.Context, r Run) error
}

// RunsOn reports whether the scenario is meant for a provider, and if not,
// why.
func (s Scenario) RunsOn(provider string) error {
	ps := s.providers()
	if slices.Contains(ps, provider) {
		return nil
	}
	if s.ProviderNote != "" {
		return fmt.Errorf("it runs on the %s provider only: %s", strings.Join(ps, " and "), s.ProviderNote)
	}
	if provider == External {
		return errors.New("it needs a simulated cluster (it chooses the load balancer or the cluster's size)")
	}
	return fmt.Errorf("it runs on the %s provider only", strings.Join(ps, " and "))
}

func (s Scenario) providers() []string {
	if len(s.Providers) > 0 {
		return s.Providers
	}
	ps := []string{Local, Docker}
	if !slices.Contains(s.Needs, cluster.CapSimulated) {
		ps = append(ps, External)
	}
	return ps
}

// Labels are derived from the scenario's fields: its topic, its faults,
// its load, its uploads, its load balancer, where it runs.
func (s Scenario) Labels() []string {
	var ls []string
	add := func(l string) {
		if l != "" && !slices.Contains(ls, l) {
			ls = append(ls, l)
		}
	}
	add(s.Topic)
	for _, f := range s.Faults {
		switch f.Fault {
		case nemesis.KindKill, nemesis.KindPause, nemesis.KindRestart, nemesis.KindPartition:
			add(LFailover)
		case nemesis.KindDrain:
			add(LDrain)
		case nemesis.KindDBOutage, nemesis.KindDBFailover:
			add(LDatabase)
		case nemesis.KindShare:
			add(LStorage)
		case "random":
			add(LChaos)
			add(LFailover)
		}
		if kind, _, _ := strings.Cut(f.Fault, "@"); nemesis.IsNetwork(strings.SplitN(kind, ",", 2)[0]) {
			add(LNetwork)
		}
	}
	for _, l := range s.Load {
		if l.Target == traffic.TargetWork {
			add(LCapacity)
		}
	}
	if s.Uploads != nil {
		add(LUpload)
		if s.Uploads.MaxSize == 0 {
			add(LSlow)
		}
		if s.Uploads.Delta {
			add(LDelta)
		}
	}
	if s.Shape.LB != "" {
		add(LLB)
	}
	if s.Shape.Sticky {
		add(LSticky)
	}
	if lb.IsAzure(lb.Kind(s.Shape.LB)) || s.Shape.AzureFiles != nil {
		add(LAzure)
	}
	if s.Shape.Toxiproxy {
		add(LNetwork)
	}
	if s.Tasks != nil {
		add(LTasks)
	}
	if s.Shape.UnsafeAckBeforeStore || s.Shape.UnsafeTaskClaim {
		add(LBroken)
	}
	ps := s.providers()
	if slices.Contains(ps, Docker) {
		add(LDocker)
	}
	if slices.Contains(ps, External) {
		add(LExternal)
	}
	if len(s.Certifies) > 0 {
		add(LCertify)
	}
	return ls
}

// Slug is the scenario's directory name.
func (s Scenario) Slug() string {
	return strings.Trim(slugRE.ReplaceAllString(strings.ToLower(s.Title), "-"), "-")
}

var slugRE = regexp.MustCompile(`[^a-z0-9]+`)

// Destructive lists the destructive capabilities the scenario may use on
// a real cluster (its needs, and the faults it plans).
func (s Scenario) Destructive() []cluster.Capability {
	var out []cluster.Capability
	for _, n := range s.Needs {
		if cluster.IsFault(n) && cluster.Destructive(n) && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// Run is what a scenario's Steps can do; the runner implements it. Every
// method returns an error instead of asserting.
type Run interface {
	Cluster() cluster.Cluster
	// Spec is the cluster's normalised spec.
	Spec() cluster.Spec
	Seed() int64
	// UploadSize is the run's --upload-size.
	UploadSize() int64
	// Step announces what happens next (console and logs).
	Step(format string, args ...any)
	Note(format string, args ...any)
	Figure(name string, value float64, unit string)
	// Can asks the cluster (cluster.Can) for an optional capability.
	Can(cp cluster.Capability) error
	// Inject injects a fault; its recovery is registered for the end of
	// the run before it is injected.
	Inject(ctx context.Context, fault nemesis.Fault, target string) (*nemesis.Injection, error)
	// Hold injects a fault, holds it for d and recovers.
	Hold(ctx context.Context, fault nemesis.Fault, target string, d time.Duration) (history.Fault, error)
	// Env is the nemesis environment (for schedules).
	Env() nemesis.Env
	// Attack starts background API load through the load balancer.
	Attack(target string, rate int, opts ...func(*traffic.AttackOptions)) error
	// StopLoad stops every background attack and waits for it.
	StopLoad()
	// UploadOptions are the catalogue's upload defaults through the load
	// balancer (retries with backoff, as a careful client does).
	UploadOptions(count, concurrency int, size int64) traffic.UploadOptions
	Upload(ctx context.Context, o traffic.UploadOptions) (*traffic.UploadSummary, error)
	// UploadInBackground starts uploads; the channel yields their summary
	// (or error) once.
	UploadInBackground(o traffic.UploadOptions) <-chan UploadResult
	// WaitOps waits until the history holds n acknowledged ops of kind.
	WaitOps(ctx context.Context, kind string, n int) error
	// History reads the history so far.
	History() (*history.History, error)
	// WaitLB waits until the load balancer reports node as want ("OUT":
	// anything but UP); where the balancer is not observable it lets
	// within pass (the convergence check judges from requests instead).
	WaitLB(ctx context.Context, node, want string, within time.Duration) error
	// NodeWithActiveUpload returns a node receiving an upload, or "" when
	// nodes do not report uploads (real Octopus does not).
	NodeWithActiveUpload(ctx context.Context, within time.Duration) (string, error)
	// Check runs the checkers on the history and what the cluster serves;
	// the runner then judges the declared Checks on the last report.
	Check(ctx context.Context, opts checker.Options) (*checker.Report, error)
	// ServesAgain waits until node acknowledges a request started after t.
	ServesAgain(ctx context.Context, node string, after time.Time) error
	// NoTempFiles waits until the Packages store holds no temporary file.
	NoTempFiles(ctx context.Context) error
}

// UploadResult is the outcome of background uploads.
type UploadResult struct {
	Summary *traffic.UploadSummary
	Err     error
}
