// Package cluster describes an Octopus HA cluster under test and what the
// harness can do to it. A Spec says what to build (nodes, load balancer,
// database, share); a provider (local processes, docker containers, or an
// external real cluster) turns it into a Cluster. Faults are optional
// capabilities a Cluster may have (NodeController, DatabaseController,
// ShareController), found by type assertion, so a scenario asks for what it
// needs and is skipped, saying why, where it is missing.
package cluster

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/octoha/octoha/fakes/node/launch"
	"github.com/octoha/octoha/harness/azure"
	"github.com/octoha/octoha/harness/lb"
	"github.com/octoha/octoha/internal/redact"
)

// Providers.
const (
	ProviderLocal    = "local"
	ProviderDocker   = "docker"
	ProviderExternal = "external"
)

// Database kinds.
const (
	DBSQLite    = "sqlite"
	DBPostgres  = "postgres"
	DBSQLServer = "sqlserver"
)

// Storage kinds.
const (
	StorageLocal = "local"
	StorageSMB   = "smb"
)

// Spec describes a cluster. Zero values take the defaults of Defaults().
type Spec struct {
	Name     string `yaml:"name"`
	Provider string `yaml:"provider"`
	Nodes    int    `yaml:"nodes"`
	// Network is the loopback /24 the local provider uses, as its first
	// three octets: the load balancer is .10, nodes .11, .12, …, the
	// database .5 and the share .6 (the seed's "unique address, same port"
	// layout). Several clusters can run side by side on different networks.
	Network     string `yaml:"network"`
	Port        int    `yaml:"port"`        // HTTP port of nodes and load balancer
	PollingPort int    `yaml:"pollingPort"` // Tentacle polling port of each node
	// PollingThumbprint is the thumbprint of the server certificate every
	// node presents on its polling port: generated once per cluster by the
	// local provider, given in the YAML for a real cluster.
	PollingThumbprint string `yaml:"pollingThumbprint"`
	// APIKey is accepted by every node. Empty: a random key is generated.
	// It is never logged or written into reports.
	APIKey  string       `yaml:"apiKey"`
	SpaceID string       `yaml:"space"`
	LB      LBSpec       `yaml:"lb"`
	DB      DatabaseSpec `yaml:"database"`
	Storage StorageSpec  `yaml:"storage"`
	Node    NodeSpec     `yaml:"node"`
	// Toxiproxy puts every link (client → LB, LB → each node, each node →
	// database and share) through Toxiproxy, so network faults can be
	// injected (local provider; see NetworkController).
	Toxiproxy bool `yaml:"toxiproxy,omitempty"`
	// External describes a real cluster (provider "external").
	External *ExternalSpec `yaml:"external,omitempty"`
	// Azure names a real cluster's Azure resources: certification reads
	// their configuration, and Azure faults act on them (external only).
	Azure *azure.Spec `yaml:"azure,omitempty"`
}

// LBSpec configures the load balancer.
type LBSpec struct {
	Kind     string        `yaml:"kind"` // haproxy, nginx, nginx-defaults, caddy, caddy-timeout, embedded
	Interval time.Duration `yaml:"interval"`
	Fall     int           `yaml:"fall"`
	Rise     int           `yaml:"rise"`
	Sticky   bool          `yaml:"sticky"`
	// Drain is what a 418 does: "down" (HAProxy expect 200) or "nolb"
	// (error-status L7OKC: a true drain that keeps sticky sessions).
	Drain            string        `yaml:"drain"`
	ShutdownSessions bool          `yaml:"shutdownSessions"`
	ServerTimeout    time.Duration `yaml:"serverTimeout"`
	// RequestTimeout is a total limit on reading a request (caddy-timeout,
	// default 60s, and embedded only; see lb.Options.RequestTimeout).
	RequestTimeout time.Duration `yaml:"requestTimeout,omitempty"`
	// Azure configures azure-lb and azure-appgw (zero: Azure's defaults).
	Azure AzureLBSpec `yaml:"azure,omitempty"`
}

// DatabaseSpec configures the shared database.
type DatabaseSpec struct {
	Kind string `yaml:"kind"` // sqlite, postgres, sqlserver
	// DSN is required for sqlserver with the local provider (a server you
	// run); "${VAR}" takes it from the environment, keeping passwords out
	// of files.
	DSN string `yaml:"dsn"`
	// Replica makes the PostgreSQL database a failover group: a primary
	// and a streaming-replication standby behind one listener address,
	// replicating "sync" or "async" ("" : a single server). Local
	// provider only (docs/azure-sql.md).
	Replica string `yaml:"replica,omitempty"`
}

// Replication modes of a database failover group.
const (
	ReplicaSync  = "sync"
	ReplicaAsync = "async"
)

// StorageSpec configures the shared file storage.
type StorageSpec struct {
	Kind string `yaml:"kind"` // local, smb
	// AzureFiles shapes the share links like an Azure Files standard share
	// (smb storage; turns Toxiproxy on).
	AzureFiles *AzureFilesSpec `yaml:"azureFiles,omitempty"`
}

// NodeSpec configures every node.
type NodeSpec struct {
	Heartbeat          time.Duration `yaml:"heartbeat"`
	UnhealthyAfter     time.Duration `yaml:"unhealthyAfter"`
	MaxConcurrentTasks int           `yaml:"maxConcurrentTasks"`
	// UnsafeAckBeforeStore runs deliberately broken nodes that acknowledge
	// uploads before storing them; only for proving checkers can fail.
	UnsafeAckBeforeStore bool `yaml:"unsafeAckBeforeStore"`
	// TaskPoll is how often nodes poll the task queue (0: Octopus's 20s).
	TaskPoll time.Duration `yaml:"taskPoll"`
	// OfflineAfter is how long a node may go unseen before it is offline
	// and the leader fails its tasks (0: the node's default).
	OfflineAfter time.Duration `yaml:"offlineAfter"`
	// LeaderLease is the leader lease's length (0: the node's default).
	LeaderLease time.Duration `yaml:"leaderLease"`
	// RetentionInterval is how often the leader queues a Retention task
	// (0: the node's default, an hour; negative: never).
	RetentionInterval time.Duration `yaml:"retentionInterval"`
	// UnsafeTaskClaim runs deliberately broken nodes that claim tasks
	// without the lock (OctopusDeploy/Issues#8356); only for proving the
	// double-execution checker can fail.
	UnsafeTaskClaim bool `yaml:"unsafeTaskClaim"`
	// Image is the fake-node image (docker provider).
	Image string `yaml:"image"`
	// OS is the operating system each node emulates, linux (default) or
	// windows: one value for every node, or one per node. Nodes of both
	// are refused (MixedOSRule) unless AllowMixedOS, which only the
	// topology scenario sets, to show what goes wrong.
	OS           []string `yaml:"os"`
	AllowMixedOS bool     `yaml:"allowMixedOS"`
	// PermissionCacheTTL is how long nodes trust cached permissions (0:
	// the node's default); PermissionCache is local (as in Octopus: a
	// change invalidates only the node it was made through) or shared.
	PermissionCacheTTL time.Duration `yaml:"permissionCacheTTL"`
	PermissionCache    string        `yaml:"permissionCache"`
}

// OS values.
const (
	OSLinux   = launch.DefaultOS
	OSWindows = "windows"
)

// MixedOSRule is the seed's rule a mixed cluster breaks, quoted.
const MixedOSRule = `the seed: "Due to how Octopus stores the paths to various BLOB data (task logs, artifacts, packages, etc.), you cannot run both Windows, and Octopus Linux containers in the same Octopus Deploy instance. It has to be either all Windows or all containers."`

// NodeOS is node i's (0-based) operating system.
func (s Spec) NodeOS(i int) string {
	switch {
	case len(s.Node.OS) == 1:
		return s.Node.OS[0]
	case i < len(s.Node.OS) && s.Node.OS[i] != "":
		return s.Node.OS[i]
	}
	return OSLinux
}

// ApplyNode sets node i's operating system and permission cache in its
// launch configuration.
func (s Spec) ApplyNode(i int, lc *launch.Config) {
	lc.OS = s.NodeOS(i)
	if s.Node.PermissionCacheTTL > 0 {
		lc.PermissionCacheTTL = s.Node.PermissionCacheTTL
	}
	if s.Node.PermissionCache != "" {
		lc.PermissionCache = s.Node.PermissionCache
	}
}

func (s Spec) validateOS(bad func(string, ...any)) {
	if len(s.Node.OS) > 1 && len(s.Node.OS) != s.Nodes {
		bad("node.os lists %d operating systems for %d nodes: give one for all, or one per node", len(s.Node.OS), s.Nodes)
		return
	}
	seen := map[string][]string{}
	for i := range s.Nodes {
		os := s.NodeOS(i)
		if os != OSLinux && os != OSWindows {
			bad("node.os %q: want linux or windows", os)
			return
		}
		seen[os] = append(seen[os], NodeName(i))
	}
	if len(seen) > 1 && !s.Node.AllowMixedOS {
		bad("the cluster mixes Windows nodes (%s) and Linux nodes (%s), which %s Set node.allowMixedOS (octoha up --allow-mixed-os) only to watch it fail",
			strings.Join(seen[OSWindows], ", "), strings.Join(seen[OSLinux], ", "), MixedOSRule)
	}
}

// ApplyTasks sets the task-queue flags of a node's launch configuration
// from the spec; both providers that start fake nodes call it.
func (n NodeSpec) ApplyTasks(lc *launch.Config) {
	if n.TaskPoll > 0 {
		lc.TaskPoll = n.TaskPoll
	}
	lc.OfflineAfter, lc.LeaderLease = n.OfflineAfter, n.LeaderLease
	switch {
	case n.RetentionInterval > 0:
		lc.RetentionInterval = n.RetentionInterval
	case n.RetentionInterval < 0:
		lc.RetentionInterval = 0 // the flag's "never"
	}
	lc.UnsafeTaskClaim = n.UnsafeTaskClaim
}

// ExternalSpec describes a real cluster for certification runs.
type ExternalSpec struct {
	LBURL string         `yaml:"lbURL"`
	Nodes []ExternalNode `yaml:"nodes"`
	// APIKeyEnv names the environment variable holding the API key.
	APIKeyEnv string `yaml:"apiKeyEnv"`
	// Hooks are shell commands for destructive faults, run only with
	// --allow-destructive; "{node}" is replaced by the node name.
	Hooks            map[string]string `yaml:"hooks"`
	AllowDestructive bool              `yaml:"allowDestructive"`
	// PollingEndpoints are the host:port polling Tentacles are configured
	// with (one per node in a supported layout); the certificate checks
	// each presents the cluster's pollingThumbprint.
	PollingEndpoints []string `yaml:"pollingEndpoints"`
	// Task is the server task the operator accepts the harness to queue
	// (and cancel) on this cluster, e.g. a script console run against a
	// test target. Without one the task scenarios skip: queueing work
	// the operator did not name would run real deployments.
	Task *ExternalTask `yaml:"task"`
}

// ExternalTask is a server task as POST /api/tasks takes it.
type ExternalTask struct {
	Name        string         `yaml:"name"`
	Description string         `yaml:"description"`
	Arguments   map[string]any `yaml:"arguments"`
}

// Polling layouts of Tentacles (the seed's two supported ones, and
// through the load balancer).
const (
	LayoutUniqueAddress = "unique-address"
	LayoutUniquePort    = "unique-port"
	LayoutViaLB         = "via-lb"
)

// PollingEndpoints returns the host:port Tentacles poll under a layout:
// every node's own address (unique-address), the load balancer's port per
// node (unique-port) or its one balanced port (via-lb, on .9). For a real
// cluster they are external.pollingEndpoints, whatever the layout.
func (s Spec) PollingEndpoints(layout string) ([]string, error) {
	if s.Provider == ProviderExternal {
		if s.External == nil || len(s.External.PollingEndpoints) == 0 {
			return nil, errors.New("the cluster YAML lists no external.pollingEndpoints")
		}
		return s.External.PollingEndpoints, nil
	}
	var out []string
	switch layout {
	case LayoutUniqueAddress:
		for i := range s.Nodes {
			out = append(out, net.JoinHostPort(s.host(11+i), strconv.Itoa(s.PollingPort)))
		}
	case LayoutUniquePort:
		for i := range s.Nodes {
			out = append(out, net.JoinHostPort(s.host(10), strconv.Itoa(s.PollingPort+i)))
		}
	case LayoutViaLB:
		out = []string{net.JoinHostPort(s.host(9), strconv.Itoa(s.PollingPort))}
	default:
		return nil, fmt.Errorf("polling layout %q: want %s, %s or %s", layout, LayoutUniqueAddress, LayoutUniquePort, LayoutViaLB)
	}
	return out, nil
}

// ExternalNode is one real node, reachable directly.
type ExternalNode struct {
	Name string `yaml:"name"`
	URL  string `yaml:"url"`
	// OS is the node's operating system, linux or windows: Octopus's API
	// does not expose it (OctopusServerNodes carry no OS), so the
	// topology certificate row takes it from here.
	OS string `yaml:"os"`
}

func (e *ExternalSpec) nodes() []ExternalNode {
	if e == nil {
		return nil
	}
	return e.Nodes
}

// Defaults returns the spec of `octoha up` without flags: three nodes
// behind HAProxy, SQLite, a local directory, on 127.0.0.0/24.
func Defaults() Spec {
	return Spec{
		Name: "default", Provider: ProviderLocal, Nodes: 3, Network: "127.0.0",
		Port: 8080, PollingPort: 10943, SpaceID: "Spaces-1",
		LB:      LBSpec{Kind: string(lb.HAProxy), Interval: lb.DefaultInterval, Fall: lb.DefaultFall, Rise: lb.DefaultRise, Drain: string(lb.DrainDown)},
		DB:      DatabaseSpec{Kind: DBSQLite},
		Storage: StorageSpec{Kind: StorageLocal},
		Node:    NodeSpec{Heartbeat: time.Second, UnhealthyAfter: 3 * time.Second, MaxConcurrentTasks: 20},
	}
}

// LoadSpec reads a YAML spec over the defaults. Unknown fields are errors,
// so a typo in a certification file does not silently change the test.
func LoadSpec(path string) (Spec, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Spec{}, fmt.Errorf("read cluster spec: %w", err)
	}
	return ParseSpec(b)
}

// ParseSpec parses YAML over the defaults.
func ParseSpec(b []byte) (Spec, error) {
	s := Defaults()
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	// An empty document means "all defaults".
	if err := dec.Decode(&s); err != nil && !errors.Is(err, io.EOF) {
		return Spec{}, fmt.Errorf("parse cluster spec: %w", err)
	}
	return s, nil
}

// Normalize fills zero fields with defaults and checks the spec.
func (s Spec) Normalize() (Spec, error) {
	d := Defaults()
	if s.Name == "" {
		s.Name = d.Name
	}
	if s.Provider == "" {
		s.Provider = d.Provider
	}
	if s.Nodes == 0 {
		s.Nodes = d.Nodes
	}
	if s.Network == "" {
		s.Network = d.Network
	}
	if s.Port == 0 {
		s.Port = d.Port
	}
	if s.PollingPort == 0 {
		s.PollingPort = d.PollingPort
	}
	if s.SpaceID == "" {
		s.SpaceID = d.SpaceID
	}
	if s.LB.Kind == "" {
		s.LB.Kind = d.LB.Kind
	}
	if s.LB.Interval == 0 {
		s.LB.Interval = d.LB.Interval
	}
	if s.LB.Fall == 0 {
		s.LB.Fall = d.LB.Fall
	}
	if s.LB.Rise == 0 {
		s.LB.Rise = d.LB.Rise
	}
	if s.LB.Drain == "" {
		s.LB.Drain = d.LB.Drain
	}
	if s.DB.Kind == "" {
		s.DB.Kind = d.DB.Kind
	}
	if s.Storage.Kind == "" {
		s.Storage.Kind = d.Storage.Kind
	}
	if s.Node.Heartbeat == 0 {
		s.Node.Heartbeat = d.Node.Heartbeat
	}
	if s.Node.UnhealthyAfter == 0 {
		s.Node.UnhealthyAfter = d.Node.UnhealthyAfter
	}
	if s.Node.MaxConcurrentTasks == 0 {
		s.Node.MaxConcurrentTasks = d.Node.MaxConcurrentTasks
	}
	s.normalizeAzure()
	s.DB.DSN = os.ExpandEnv(s.DB.DSN)
	if s.APIKey == "" {
		s.APIKey = NewAPIKey()
	}
	return s, s.validate()
}

func (s Spec) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	switch s.Provider {
	case ProviderLocal, ProviderDocker, ProviderExternal:
	default:
		bad("provider %q: want local, docker or external", s.Provider)
	}
	if s.Nodes < 1 || s.Nodes > 20 {
		bad("nodes = %d: want 1 to 20", s.Nodes)
	}
	if ip := net.ParseIP(s.Network + ".1"); ip == nil || !ip.IsLoopback() {
		bad("network %q: want the first three octets of a loopback /24, e.g. 127.0.0", s.Network)
	}
	if s.Port < 1 || s.Port > 65535 {
		bad("port %d out of range", s.Port)
	}
	kind, err := lb.ParseKind(s.LB.Kind)
	if err != nil {
		bad("%v", err)
	}
	errs = append(errs, s.validateAzure(kind)...)
	if s.LB.RequestTimeout < 0 {
		bad("lb.requestTimeout %v is negative", s.LB.RequestTimeout)
	}
	if err == nil {
		errs = append(errs, lb.Unsupported(kind,
			lb.Wanted{Setting: "lb.sticky", Feature: lb.FeatSticky, On: s.LB.Sticky},
			lb.Wanted{Setting: "lb.drain nolb", Feature: lb.FeatNOLB, On: s.LB.Drain == string(lb.DrainNOLB)},
			lb.Wanted{Setting: "lb.shutdownSessions", Feature: lb.FeatShutdownSessions, On: s.LB.ShutdownSessions},
			lb.Wanted{Setting: "lb.requestTimeout", Feature: lb.FeatRequestTimeout, On: s.LB.RequestTimeout > 0},
		)...)
	}
	if s.LB.Interval < 10*time.Millisecond {
		bad("lb.interval %v is too short (min 10ms)", s.LB.Interval)
	}
	if s.LB.Fall < 1 || s.LB.Rise < 1 {
		bad("lb.fall and lb.rise must be at least 1")
	}
	if s.LB.Drain != string(lb.DrainDown) && s.LB.Drain != string(lb.DrainNOLB) {
		bad("lb.drain %q: want down or nolb", s.LB.Drain)
	}
	switch s.DB.Kind {
	case DBSQLite, DBPostgres:
	case DBSQLServer:
		if s.DB.DSN == "" && s.Provider == ProviderLocal {
			bad("database sqlserver needs database.dsn (sqlserver://…; ${VAR} reads the environment) with the local provider")
		}
	default:
		bad("database.kind %q: want sqlite, postgres or sqlserver", s.DB.Kind)
	}
	switch s.DB.Replica {
	case "":
	case ReplicaSync, ReplicaAsync:
		if s.DB.Kind != DBPostgres {
			bad("database.replica %q needs database.kind postgres (a PostgreSQL failover group)", s.DB.Replica)
		}
		if s.Provider == ProviderDocker {
			bad("database.replica %q: a database failover group is not supported on the docker provider yet (use the local provider)", s.DB.Replica)
		}
	default:
		bad("database.replica %q: want sync or async", s.DB.Replica)
	}
	switch s.Storage.Kind {
	case StorageLocal, StorageSMB:
	default:
		bad("storage.kind %q: want local or smb", s.Storage.Kind)
	}
	if s.Node.Heartbeat < 10*time.Millisecond {
		bad("node.heartbeat %v is too short", s.Node.Heartbeat)
	}
	if s.Node.TaskPoll < 0 || s.Node.OfflineAfter < 0 || s.Node.LeaderLease < 0 {
		bad("node.taskPoll, node.offlineAfter and node.leaderLease cannot be negative")
	}
	if s.Node.LeaderLease > 0 && s.Node.LeaderLease <= s.Node.Heartbeat {
		bad("node.leaderLease %v must be longer than node.heartbeat %v, which renews it", s.Node.LeaderLease, s.Node.Heartbeat)
	}
	if s.Provider == ProviderExternal {
		if s.External == nil || s.External.LBURL == "" {
			bad("provider external needs external.lbURL")
		}
		if s.External != nil && s.External.Task != nil && strings.TrimSpace(s.External.Task.Name) == "" {
			bad("external.task needs a name (the server task's kind, e.g. AdHocScript)")
		}
		// A real cluster is what it is: its mix is the certificate's
		// finding, not a reason to refuse the run.
		for _, n := range s.External.nodes() {
			if n.OS != "" && n.OS != OSLinux && n.OS != OSWindows {
				bad("external node %s: os %q: want linux or windows", n.Name, n.OS)
			}
		}
	} else {
		s.validateOS(bad)
	}
	if s.Azure != nil {
		if s.Provider != ProviderExternal {
			bad("azure: describes a real cluster: use it with provider external")
		}
		var names []string
		for _, n := range s.External.nodes() {
			names = append(names, n.Name)
		}
		if err := s.Azure.Validate(names); err != nil {
			errs = append(errs, err)
		}
	}
	if p := s.Node.PermissionCache; p != "" && p != "local" && p != "shared" {
		bad("node.permissionCache %q: want local or shared", p)
	}
	if s.Node.PermissionCacheTTL < 0 {
		bad("node.permissionCacheTTL cannot be negative")
	}
	return errors.Join(errs...)
}

// LBAddr is the load balancer's host:port.
func (s Spec) LBAddr() string { return net.JoinHostPort(s.host(10), strconv.Itoa(s.Port)) }

// NodeAddr is node i's (0-based) host:port.
func (s Spec) NodeAddr(i int) string { return net.JoinHostPort(s.host(11+i), strconv.Itoa(s.Port)) }

// DBHost is the database server's address (local provider).
func (s Spec) DBHost() string { return s.host(5) }

// ShareHost is the SMB server's address (local provider).
func (s Spec) ShareHost() string { return s.host(6) }

func (s Spec) host(last int) string { return s.Network + "." + strconv.Itoa(last) }

// NodeName is node i's (0-based) name, "Node1", …
func NodeName(i int) string { return "Node" + strconv.Itoa(i+1) }

// NodeID is node i's (0-based) Octopus ID.
func NodeID(i int) string { return "OctopusServerNodes-" + strconv.Itoa(i+1) }

// NewAPIKey returns a random key in Octopus's format (API- and 32
// upper-case alphanumerics), which the official CLI insists on.
func NewAPIKey() string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return "API-" + string(b)
}

// Redacted returns a copy safe to log or write into reports: no API key,
// no password in the DSN in any form the drivers accept, and no user info
// or key in an external cluster's URLs (redact.DSN, redact.URL).
func (s Spec) Redacted() Spec {
	if s.APIKey != "" {
		s.APIKey = redact.Mark
	}
	if s.DB.DSN != "" {
		s.DB.DSN = redact.DSN(s.DB.DSN)
	}
	if s.External != nil {
		ext := *s.External
		ext.LBURL = redact.URL(ext.LBURL)
		ext.Nodes = append([]ExternalNode(nil), ext.Nodes...)
		for i := range ext.Nodes {
			ext.Nodes[i].URL = redact.URL(ext.Nodes[i].URL)
		}
		s.External = &ext
	}
	return s
}
