// Package launch is the launch contract of the fake node: the flags of
// `octoha node` and the environment variables that carry its secrets.
//
// `octoha node` defines its flags with Config.Register and Secrets.Register;
// the providers that start nodes (harness/cluster/local as processes,
// harness/cluster/docker as containers) render them with Config.Args and
// Secrets.Env. A flag or variable is named once, here, so renaming one is a
// single edit and a mismatch cannot wait until a node refuses to start.
//
// Secrets (API keys, a DSN that may hold a password, the SMB password)
// travel only in environment variables: Args never renders them, since a
// command line is visible to every user through ps and docker inspect.
//
// The package is a leaf (standard library only), so the harness can import
// it without linking the node, its database drivers or its stores. It is
// not part of octopusapi: that package is the HTTP contract a real Octopus
// node also honours, while this one exists only for the fake.
package launch

import (
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Subcommand is the octoha subcommand that runs a node; Config.Args are its
// arguments.
const Subcommand = "node"

// Environment variables that carry a node's secrets, so they need not
// appear on a command line. Clients of the API (octoha upload, attack,
// check, the external provider) read their key from EnvAPIKey too.
const (
	// EnvAPIKey holds the API key, or several comma-separated ones the
	// node accepts.
	EnvAPIKey = "OCTOHA_API_KEY"
	// EnvDB holds the shared database's DSN (which may hold a password).
	EnvDB = "OCTOHA_DB"
	// EnvSMBPassword holds the SMB password of smb:// store locations that
	// carry none.
	EnvSMBPassword = "OCTOHA_SMB_PASSWORD"
)

// The node's defaults: what a flag left off means. DefaultMaxConcurrentTasks,
// DefaultHeartbeat, DefaultUnhealthyAfter and DefaultUploadStallTimeout
// equal fakes/node's defaults
// (the package test checks it; this package must not import the node).
const (
	DefaultListen             = "127.0.0.11:8080"
	DefaultMaxConcurrentTasks = 20
	DefaultHeartbeat          = time.Second
	DefaultUnhealthyAfter     = 3 * time.Second
	DefaultStartupTimeout     = 30 * time.Second
	DefaultShutdownGrace      = 10 * time.Second
	DefaultLogLevel           = "info"
	DefaultUnsafeStoreDelay   = 3 * time.Second
	DefaultUploadStallTimeout = 2 * time.Minute
	// DefaultMaxPackageSize equals fakes/node's (the package test checks it).
	DefaultMaxPackageSize     int64 = 4 << 30
	DefaultTaskPoll                 = 20 * time.Second
	DefaultRetentionInterval        = time.Hour
	DefaultOS                       = "linux"
	DefaultPermissionCacheTTL       = 5 * time.Minute
	DefaultPermissionCache          = "local"
)

// Config is a node's command line, secrets excepted. Start from Default and
// set what differs: a zero field is rendered as given, and the node rejects
// what it must (a zero heartbeat, an empty log level).
type Config struct {
	// ID and Name are required, e.g. OctopusServerNodes-1 and Node1.
	ID, Name string
	// Listen is the address the node serves the Octopus API on.
	Listen string
	// URL is the address recorded in the database; "" means http://<Listen>.
	URL string
	// Packages (required), Artifacts and TaskLogs are store locations: a
	// directory or smb://user@host[:port]/share/dir, the password in
	// EnvSMBPassword.
	Packages, Artifacts, TaskLogs string
	// MaxConcurrentTasks is recorded for the node when it first registers.
	MaxConcurrentTasks int
	// Heartbeat is the interval of heartbeats into the shared database.
	Heartbeat time.Duration
	// UnhealthyAfter is how long the database may be unreachable before
	// ping answers 503.
	UnhealthyAfter time.Duration
	// StartupTimeout bounds the attempts to reach the database at start.
	StartupTimeout time.Duration
	// ShutdownGrace is how long in-flight requests may run on SIGTERM.
	ShutdownGrace time.Duration
	// LogLevel is debug, info, warn or error; LogJSON logs JSON lines.
	LogLevel string
	LogJSON  bool
	// UploadStallTimeout aborts an upload whose body sends nothing for this
	// long (and removes its temporary file); it bounds silence, not the
	// length of an upload.
	UploadStallTimeout time.Duration
	// MaxPackageSize is the largest package, in bytes, the node accepts,
	// uploaded whole or patched from a delta.
	MaxPackageSize int64
	// UnsafeAckBeforeStore makes a deliberately broken node that
	// acknowledges uploads UnsafeStoreDelay before storing them. Test only.
	UnsafeAckBeforeStore bool
	UnsafeStoreDelay     time.Duration

	// TaskPoll is how often the node looks at the shared task queue.
	TaskPoll time.Duration
	// OfflineAfter is how long a node may go unseen before it is offline
	// and the leader fails its tasks; 0 is the node's default (5
	// heartbeats, at least 5s).
	OfflineAfter time.Duration
	// LeaderLease is the leader lease's length; 0 is the node's default
	// (3 heartbeats, at least 3s).
	LeaderLease time.Duration
	// RetentionInterval is how often the leader queues a Retention task;
	// 0 disables it.
	RetentionInterval time.Duration
	// UnsafeTaskClaim makes a deliberately broken node that claims tasks
	// without the lock (OctopusDeploy/Issues#8356), after waiting
	// UnsafeClaimDelay (0: two task polls) between reading the queue and
	// claiming. Test only.
	UnsafeTaskClaim  bool
	UnsafeClaimDelay time.Duration

	// OS is the operating system the node emulates, linux or windows: it
	// records storage paths in that OS's form, which a node of the other
	// cannot resolve (the seed's "all Windows or all containers").
	OS string

	// PermissionCacheTTL is how long a node trusts cached permissions;
	// PermissionCache is local (invalidated only by changes made through
	// the node, as in Octopus) or shared (through the database).
	PermissionCacheTTL time.Duration
	PermissionCache    string

	// PollingListen is the Tentacle polling port's address ("": none);
	// PollingCert and PollingKey are PEM files of the cluster's one server
	// certificate, which every node presents.
	PollingListen, PollingCert, PollingKey string
}

// Default is the configuration of a node started without flags.
func Default() Config {
	return Config{
		Listen:             DefaultListen,
		MaxConcurrentTasks: DefaultMaxConcurrentTasks,
		Heartbeat:          DefaultHeartbeat,
		UnhealthyAfter:     DefaultUnhealthyAfter,
		StartupTimeout:     DefaultStartupTimeout,
		ShutdownGrace:      DefaultShutdownGrace,
		LogLevel:           DefaultLogLevel,
		UnsafeStoreDelay:   DefaultUnsafeStoreDelay,
		UploadStallTimeout: DefaultUploadStallTimeout,
		MaxPackageSize:     DefaultMaxPackageSize,
		TaskPoll:           DefaultTaskPoll,
		RetentionInterval:  DefaultRetentionInterval,
		OS:                 DefaultOS,
		PermissionCacheTTL: DefaultPermissionCacheTTL,
		PermissionCache:    DefaultPermissionCache,
	}
}

// option is one flag: its name, help text and the Config field behind it
// (a *string, *int, *bool or *time.Duration). Register and Args both walk
// this table, so they cannot disagree.
type option struct {
	name, usage string
	field       func(*Config) any
}

var options = []option{
	{"id", "node ID, e.g. OctopusServerNodes-1 (required)", func(c *Config) any { return &c.ID }},
	{"name", "node name, e.g. Node1 (required)", func(c *Config) any { return &c.Name }},
	{"listen", "address to serve the Octopus API on", func(c *Config) any { return &c.Listen }},
	{"packages", "Packages store: a directory or smb://user[:password]@host[:port]/share/dir (required; password may come from $" + EnvSMBPassword + ")", func(c *Config) any { return &c.Packages }},
	{"artifacts", "Artifacts store (directory or smb:// URL); optional", func(c *Config) any { return &c.Artifacts }},
	{"tasklogs", "TaskLogs store (directory or smb:// URL); optional", func(c *Config) any { return &c.TaskLogs }},
	{"max-concurrent-tasks", "task cap recorded for this node when it first registers", func(c *Config) any { return &c.MaxConcurrentTasks }},
	{"heartbeat", "heartbeat interval into the shared database", func(c *Config) any { return &c.Heartbeat }},
	{"unhealthy-after", "how long the database may be unreachable before ping answers 503", func(c *Config) any { return &c.UnhealthyAfter }},
	{"url", "URL this node is reachable at, recorded in the database (default http://<listen>)", func(c *Config) any { return &c.URL }},
	{"startup-timeout", "how long to keep trying to reach the database at start", func(c *Config) any { return &c.StartupTimeout }},
	{"shutdown-grace", "how long in-flight requests may run on SIGTERM", func(c *Config) any { return &c.ShutdownGrace }},
	{"log-level", "debug, info, warn or error", func(c *Config) any { return &c.LogLevel }},
	{"log-json", "log JSON lines instead of text", func(c *Config) any { return &c.LogJSON }},
	{"upload-stall-timeout", "abort an upload whose body sends nothing for this long, removing its temporary file", func(c *Config) any { return &c.UploadStallTimeout }},
	{"max-package-size", "largest package in bytes accepted, uploaded whole or patched from a delta (413 beyond it, nothing stored)", func(c *Config) any { return &c.MaxPackageSize }},
	{"unsafe-ack-before-store", "TEST ONLY: acknowledge uploads before storing them (a deliberately broken node)", func(c *Config) any { return &c.UnsafeAckBeforeStore }},
	{"unsafe-store-delay", "TEST ONLY: delay between the early acknowledgement and the store", func(c *Config) any { return &c.UnsafeStoreDelay }},
	{"task-poll", "how often to look at the shared task queue (Octopus: 20s)", func(c *Config) any { return &c.TaskPoll }},
	{"offline-after", "how long a node may go unseen before it is offline and the leader fails its tasks (0: 5 heartbeats, at least 5s)", func(c *Config) any { return &c.OfflineAfter }},
	{"leader-lease", "length of the leader lease, renewed every heartbeat (0: 3 heartbeats, at least 3s)", func(c *Config) any { return &c.LeaderLease }},
	{"retention-interval", "how often the leader queues a Retention task (0 disables)", func(c *Config) any { return &c.RetentionInterval }},
	{"unsafe-task-claim", "TEST ONLY: claim tasks without the lock, so two nodes run one task (OctopusDeploy/Issues#8356)", func(c *Config) any { return &c.UnsafeTaskClaim }},
	{"os", "operating system to emulate: linux or windows (storage paths recorded in its form; the other cannot resolve them)", func(c *Config) any { return &c.OS }},
	{"permission-cache-ttl", "how long cached user permissions are trusted", func(c *Config) any { return &c.PermissionCacheTTL }},
	{"permission-cache", "local (invalidated only on the node that made a change, as in Octopus) or shared (cluster-wide through the database)", func(c *Config) any { return &c.PermissionCache }},
	{"polling-listen", "address of the polling Tentacles' TLS port, e.g. 127.0.0.11:10943 (none if empty)", func(c *Config) any { return &c.PollingListen }},
	{"polling-cert", "PEM file of the cluster's polling server certificate (the same on every node)", func(c *Config) any { return &c.PollingCert }},
	{"polling-key", "PEM file of that certificate's key", func(c *Config) any { return &c.PollingKey }},
	{"unsafe-claim-delay", "TEST ONLY: pause between reading the queue and the unsafe claim (0: two task polls)", func(c *Config) any { return &c.UnsafeClaimDelay }},
}

// Names of the flags that carry secrets; Secrets.Register defines them for
// people who start a node by hand, and Args never renders them.
const (
	FlagDB     = "db"
	FlagAPIKey = "api-key"
)

// Register defines the node's flags on fs with the defaults of Default; Parse
// then stores their values in c.
func (c *Config) Register(fs *flag.FlagSet) {
	def := Default()
	for _, o := range options {
		switch p := o.field(c).(type) {
		case *string:
			fs.StringVar(p, o.name, *o.field(&def).(*string), o.usage)
		case *int:
			fs.IntVar(p, o.name, *o.field(&def).(*int), o.usage)
		case *int64:
			fs.Int64Var(p, o.name, *o.field(&def).(*int64), o.usage)
		case *bool:
			fs.BoolVar(p, o.name, *o.field(&def).(*bool), o.usage)
		case *time.Duration:
			fs.DurationVar(p, o.name, *o.field(&def).(*time.Duration), o.usage)
		default:
			panic(fmt.Sprintf("launch: flag %s has unsupported type %T", o.name, p))
		}
	}
}

// Args renders c as the node's arguments (after Subcommand), one
// --name=value per field that differs from Default, in a fixed order. Parsed
// by a flag set that Register defined, they give c back.
func (c Config) Args() []string {
	def := Default()
	var args []string
	for _, o := range options {
		v, d := format(o.field(&c)), format(o.field(&def))
		if v != d {
			args = append(args, "--"+o.name+"="+v)
		}
	}
	return args
}

func format(p any) string {
	switch p := p.(type) {
	case *string:
		return *p
	case *int:
		return strconv.Itoa(*p)
	case *int64:
		return strconv.FormatInt(*p, 10)
	case *bool:
		return strconv.FormatBool(*p)
	case *time.Duration:
		return p.String()
	}
	panic(fmt.Sprintf("launch: unsupported flag type %T", p))
}

// Secrets are what a node must not get on its command line.
type Secrets struct {
	// APIKeys are the API keys the node accepts (at least one). In
	// EnvAPIKey they are comma-separated, so a key cannot hold a comma.
	APIKeys []string
	// DB is the shared database: sqlite:PATH, postgres://… or sqlserver://….
	DB string
	// SMBPassword is the password of smb:// store locations that carry
	// none; "" when the stores are directories.
	SMBPassword string
}

// Env renders s as environment entries (NAME=value) for a process, every
// variable even when empty, so none is inherited from the parent by
// accident (with os/exec, later entries override earlier ones).
func (s Secrets) Env() []string {
	m := s.Map()
	return []string{
		EnvAPIKey + "=" + m[EnvAPIKey],
		EnvDB + "=" + m[EnvDB],
		EnvSMBPassword + "=" + m[EnvSMBPassword],
	}
}

// Map renders s as environment variables by name, for container APIs.
func (s Secrets) Map() map[string]string {
	return map[string]string{
		EnvAPIKey:      strings.Join(s.APIKeys, ","),
		EnvDB:          s.DB,
		EnvSMBPassword: s.SMBPassword,
	}
}

// Register defines --db and --api-key (repeatable) on fs. They exist for
// people who start a node by hand; Args never renders them, and the
// providers use Env.
func (s *Secrets) Register(fs *flag.FlagSet) {
	fs.StringVar(&s.DB, FlagDB, "", "shared database: sqlite:PATH, postgres://… or sqlserver://… (or $"+EnvDB+", keeping a password off the command line)")
	fs.Var((*keysFlag)(&s.APIKeys), FlagAPIKey, "API key to accept (repeatable; or comma-separated in $"+EnvAPIKey+")")
}

// FromEnv completes s from the environment (getenv is os.Getenv, or a
// stand-in in tests): DB and SMBPassword where still empty, and the keys
// in EnvAPIKey added to APIKeys.
func (s *Secrets) FromEnv(getenv func(string) string) {
	if s.DB == "" {
		s.DB = getenv(EnvDB)
	}
	if s.SMBPassword == "" {
		s.SMBPassword = getenv(EnvSMBPassword)
	}
	s.APIKeys = append(s.APIKeys, SplitAPIKeys(getenv(EnvAPIKey))...)
}

// SplitAPIKeys splits the comma-separated keys of EnvAPIKey, dropping
// blanks.
func SplitAPIKeys(v string) []string {
	var keys []string
	for _, k := range strings.Split(v, ",") {
		if k = strings.TrimSpace(k); k != "" {
			keys = append(keys, k)
		}
	}
	return keys
}

// String shows which secrets are set, never their values, so a Secrets
// printed by accident leaks nothing.
func (s Secrets) String() string {
	set := func(v string) string {
		if v == "" {
			return "unset"
		}
		return "set"
	}
	return fmt.Sprintf("launch.Secrets{APIKeys: %d, DB: %s, SMBPassword: %s}", len(s.APIKeys), set(s.DB), set(s.SMBPassword))
}

// GoString is String, for %#v.
func (s Secrets) GoString() string { return s.String() }

// keysFlag is the repeatable --api-key.
type keysFlag []string

func (k *keysFlag) String() string {
	if k == nil || len(*k) == 0 {
		return ""
	}
	return fmt.Sprintf("[%d keys]", len(*k))
}

func (k *keysFlag) Set(v string) error { *k = append(*k, v); return nil }
