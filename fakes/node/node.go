// Package node is a fake Octopus Server node: the HTTP API an HA cluster's
// load balancer, clients and the harness see (ping, nodes, spaces, package
// upload and download, delta uploads, the built-in feed), backed by the shared database (fakes/store) and the
// shared file storage (fakes/blob), exactly as a real node is backed by SQL
// Server and a file share. Several node processes sharing one database and
// one share form a cluster; drain state lives in the database, so draining
// node B through node A works as in Octopus.
package node

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/octoha/octoha/fakes/blob"
	"github.com/octoha/octoha/fakes/store"
	"github.com/octoha/octoha/octopusapi"
)

// Defaults for Config fields left zero.
const (
	DefaultMaxConcurrentTasks = 20
	DefaultHeartbeat          = time.Second
	DefaultVersion            = "2025.1.0-octoha"
	// DefaultUnhealthyAfter is how long the database may be unreachable
	// before ping answers 503: a short grace so one slow query does not
	// take a node out of the load balancer.
	DefaultUnhealthyAfter = 3 * time.Second
	// DefaultIdleTimeout closes keep-alive connections idle this long, so
	// clients' abandoned connections do not pile up. It is longer than
	// nginx's upstream keepalive_timeout (60s): a backend that closes an
	// idle connection first races the proxy reusing it, and a POST lost
	// that way is not retried but answered 502.
	DefaultIdleTimeout = 75 * time.Second
	// DefaultReadHeaderTimeout bounds reading a request's headers.
	DefaultReadHeaderTimeout = 30 * time.Second
	// DefaultUploadStallTimeout aborts an upload whose body has sent no
	// byte for this long. It bounds silence, not duration: a slow 1 GB
	// upload that keeps sending is never cut off.
	DefaultUploadStallTimeout = 2 * time.Minute
	// DefaultBodyIdleTimeout bounds the silence of any other request's
	// body (JSON, at most a megabyte): a client that announces a body and
	// sends nothing more must not hold a connection and a goroutine. Like
	// the upload stall timeout it bounds silence between reads, not the
	// length of a request.
	DefaultBodyIdleTimeout = 30 * time.Second
	// DefaultMaxPackageSize is the largest package a node accepts, whether
	// uploaded whole or patched from a delta: four times the harness's
	// 1 GiB uploads. Octopus documents no such limit of its own (IIS's
	// request limits aside); the fake needs one so that a delta's copy
	// commands cannot make it write without end.
	DefaultMaxPackageSize int64 = 4 << 30
	// DeltaCopyFactor bounds the bytes a delta may copy from its base: at
	// most this many times the base's size. A delta the official clients
	// build copies each base block about once (they upload in full when
	// the delta is not smaller than the file); a "ratio bomb" copies the
	// whole base thousands of times.
	DeltaCopyFactor = 4
	// DefaultTaskPoll is how often a node looks at the shared task queue:
	// Octopus's 20 seconds.
	DefaultTaskPoll = 20 * time.Second
	// DefaultRetentionInterval is how often the leader queues a Retention
	// task.
	DefaultRetentionInterval = time.Hour
)

// Config configures a node.
type Config struct {
	ID   string // e.g. "OctopusServerNodes-1"
	Name string // e.g. "Node1"
	// URL is where the node can be reached, recorded in the database for
	// operators (informational).
	URL string

	DB       *store.DB
	Packages blob.Store
	// Artifacts and TaskLogs are where tasks write; each defaults to a
	// directory of the same name under Packages.
	Artifacts blob.Store
	TaskLogs  blob.Store

	// APIKeys are the keys accepted in X-Octopus-ApiKey (or a Bearer token).
	APIKeys []string

	// PermissionCacheTTL is how long the node trusts a cached permission
	// set (default DefaultPermissionCacheTTL); PermissionCache is
	// PermissionCacheLocal (default: invalidated only by changes made
	// through this node, as in Octopus) or PermissionCacheShared.
	PermissionCacheTTL time.Duration
	PermissionCache    string

	// PollingListen, when set, is the address of the Tentacle polling
	// port, served over TLS with PollingCert (the cluster's one server
	// certificate) (tentacles.go).
	PollingListen string
	PollingCert   *tls.Certificate

	// OS is the operating system the node emulates (OSLinux, the default,
	// or OSWindows): it records storage paths in that OS's form
	// (ospath.go).
	OS string

	MaxConcurrentTasks int
	Heartbeat          time.Duration
	UnhealthyAfter     time.Duration
	// OfflineAfter is the LastSeen age after which a node is listed as
	// IsOffline and the leader fails the tasks it held; default 5
	// heartbeats, at least 5s (Octopus waits minutes).
	OfflineAfter time.Duration
	// TempStaleAfter is the LastSeen age after which another node's
	// temporary upload files are swept; default 5 heartbeats, at least 5s.
	TempStaleAfter time.Duration
	// TaskPoll is how often the node looks at the shared task queue (to
	// claim tasks, and to see cancels of the tasks it runs); default
	// DefaultTaskPoll.
	TaskPoll time.Duration
	// LeaderLease is how long a leader's lease lasts; the leader renews it
	// every heartbeat, and a follower takes over at most LeaderLease plus a
	// heartbeat after the leader stopped renewing. Default 3 heartbeats,
	// at least 3s.
	LeaderLease time.Duration
	// RetentionInterval is how often the leader queues a Retention task;
	// default DefaultRetentionInterval, negative disables it.
	RetentionInterval time.Duration
	// JanitorInterval is how often temporary files are swept; default 5s.
	JanitorInterval time.Duration
	// IdleTimeout and ReadHeaderTimeout are the HTTP server's; defaults
	// DefaultIdleTimeout and DefaultReadHeaderTimeout.
	IdleTimeout       time.Duration
	ReadHeaderTimeout time.Duration
	// UploadStallTimeout aborts an upload (and removes its temporary file)
	// when no body byte arrives for this long; default
	// DefaultUploadStallTimeout.
	UploadStallTimeout time.Duration
	// BodyIdleTimeout bounds the silence of every other request body;
	// default DefaultBodyIdleTimeout.
	BodyIdleTimeout time.Duration
	// MaxPackageSize is the largest package accepted, uploaded whole or
	// patched from a delta (413 beyond it, nothing stored); default
	// DefaultMaxPackageSize.
	MaxPackageSize int64
	Version        string
	Logger         *slog.Logger

	// UnsafeAckBeforeStore makes the node acknowledge an upload (201) as
	// soon as the body is received and publish the file and its row only
	// UnsafeStoreDelay later. It is a deliberately broken node for proving
	// that the durability checker catches lost acknowledged writes; never
	// use it otherwise.
	UnsafeAckBeforeStore bool
	UnsafeStoreDelay     time.Duration

	// UnsafeTaskClaim makes the node claim queued tasks without the
	// conditional update that makes a claim exclusive: it reads the queue,
	// waits UnsafeClaimDelay (widening the race so it shows every time),
	// then sets itself as the tasks' ServerNode whatever happened in
	// between and runs them. Two such nodes run the same task at once, as
	// in OctopusDeploy/Issues#8356. A deliberately broken node for proving
	// the double-execution checker; never use it otherwise.
	UnsafeTaskClaim  bool
	UnsafeClaimDelay time.Duration // default two TaskPolls
}

// Node is one fake Octopus Server node.
type Node struct {
	cfg Config
	log *slog.Logger

	// health, refreshed by the heartbeat loop and read lock-free by ping.
	state atomic.Pointer[healthState]

	mu       sync.Mutex
	lastDBOK time.Time

	uploads   activeSet    // temp files being written by this process
	receiving atomic.Int64 // uploads whose body is being received
	tasks     atomic.Int64 // synthetic work in progress (work.go)
	slots     taskSlots
	started   time.Time

	queue queueState // server tasks this node runs (queue.go)
	lead  leadState  // leadership (leader.go)
	// sigFlight runs one signature computation per cache file at a time;
	// sigComputed counts the computations (cache misses).
	sigFlight   singleflight.Group
	sigComputed atomic.Int64

	perms     permCache     // users' permissions (permissions.go)
	tentacles tentacleState // requests held for polling Tentacles (tentacles.go)

	hooks testHooks
}

// testHooks let tests drive races deterministically; nil hooks are skipped.
type testHooks struct {
	// beforeRecord runs while publishing, after the file is at its final
	// name and before its row is written (a slow database, in effect).
	beforeRecord func(row store.Package)
}

// healthState is what ping answers, precomputed so that a load balancer's
// probes cost no database round trip.
type healthState struct {
	status int
	body   []byte
	node   store.Node
	dbOK   bool
}

// New validates cfg and returns a node. Call Run to start its heartbeats.
func New(cfg Config) (*Node, error) {
	if cfg.ID == "" || cfg.Name == "" {
		return nil, errors.New("node: ID and Name are required")
	}
	if cfg.DB == nil {
		return nil, errors.New("node: a shared database is required")
	}
	if cfg.Packages == nil {
		return nil, errors.New("node: a Packages store is required")
	}
	if len(cfg.APIKeys) == 0 {
		return nil, errors.New("node: at least one API key is required")
	}
	if cfg.OS == "" {
		cfg.OS = OSLinux
	}
	if err := ValidOS(cfg.OS); err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	if cfg.PollingListen != "" && cfg.PollingCert == nil {
		return nil, errors.New("node: a polling port needs the cluster's server certificate")
	}
	if cfg.PermissionCacheTTL <= 0 {
		cfg.PermissionCacheTTL = DefaultPermissionCacheTTL
	}
	switch cfg.PermissionCache {
	case "":
		cfg.PermissionCache = PermissionCacheLocal
	case PermissionCacheLocal, PermissionCacheShared:
	default:
		return nil, fmt.Errorf("node: permission cache %q: want %s or %s", cfg.PermissionCache, PermissionCacheLocal, PermissionCacheShared)
	}
	if cfg.MaxConcurrentTasks <= 0 {
		cfg.MaxConcurrentTasks = DefaultMaxConcurrentTasks
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = DefaultHeartbeat
	}
	if cfg.UnhealthyAfter <= 0 {
		cfg.UnhealthyAfter = DefaultUnhealthyAfter
	}
	if cfg.OfflineAfter <= 0 {
		cfg.OfflineAfter = max(5*cfg.Heartbeat, 5*time.Second)
	}
	if cfg.TempStaleAfter <= 0 {
		cfg.TempStaleAfter = max(5*cfg.Heartbeat, 5*time.Second)
	}
	if cfg.TaskPoll <= 0 {
		cfg.TaskPoll = DefaultTaskPoll
	}
	if cfg.LeaderLease <= 0 {
		cfg.LeaderLease = max(3*cfg.Heartbeat, 3*time.Second)
	}
	if cfg.LeaderLease <= cfg.Heartbeat {
		return nil, fmt.Errorf("node: the leader lease (%v) must be longer than the heartbeat (%v), which renews it", cfg.LeaderLease, cfg.Heartbeat)
	}
	if cfg.RetentionInterval == 0 {
		cfg.RetentionInterval = DefaultRetentionInterval
	}
	if cfg.UnsafeClaimDelay <= 0 {
		cfg.UnsafeClaimDelay = 2 * cfg.TaskPoll
	}
	if cfg.TaskLogs == nil {
		// Octopus keeps TaskLogs next to Packages when no separate
		// location is set; so does the fake, in a directory of its own.
		cfg.TaskLogs = prefixed(cfg.Packages, "TaskLogs")
	}
	if cfg.Artifacts == nil {
		cfg.Artifacts = prefixed(cfg.Packages, "Artifacts")
	}
	if cfg.JanitorInterval <= 0 {
		cfg.JanitorInterval = 5 * time.Second
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.ReadHeaderTimeout <= 0 {
		cfg.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if cfg.UploadStallTimeout <= 0 {
		cfg.UploadStallTimeout = DefaultUploadStallTimeout
	}
	if cfg.BodyIdleTimeout <= 0 {
		cfg.BodyIdleTimeout = DefaultBodyIdleTimeout
	}
	if cfg.MaxPackageSize <= 0 {
		cfg.MaxPackageSize = DefaultMaxPackageSize
	}
	if cfg.Version == "" {
		cfg.Version = DefaultVersion
	}
	if cfg.UnsafeStoreDelay <= 0 {
		cfg.UnsafeStoreDelay = 3 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	n := &Node{cfg: cfg, log: cfg.Logger.With("node", cfg.Name), started: time.Now()}
	n.uploads.m = map[string]struct{}{}
	// Until the first heartbeat lands the node is not ready: 503.
	n.setState(store.Node{ID: cfg.ID, Name: cfg.Name, MaxConcurrentTasks: cfg.MaxConcurrentTasks, Version: cfg.Version}, false)
	return n, nil
}

// Name returns the node's name.
func (n *Node) Name() string { return n.cfg.Name }

// Run registers the node and keeps heartbeating and sweeping temporary
// files until ctx is done. The first heartbeat is attempted before Run
// returns control to the loop, so a node that can reach its database is
// healthy as soon as it serves.
func (n *Node) Run(ctx context.Context) error {
	n.beat(ctx)
	hb := time.NewTicker(n.cfg.Heartbeat)
	defer hb.Stop()
	jan := time.NewTicker(n.cfg.JanitorInterval)
	defer jan.Stop()
	n.sweep(ctx)
	queueDone := make(chan struct{})
	go func() {
		defer close(queueDone)
		n.runQueue(ctx)
	}()
	defer func() { <-queueDone }()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-hb.C:
			n.beat(ctx)
		case <-jan.C:
			n.sweep(ctx)
		}
	}
}

// heartbeat writes this node's row and refreshes its view of its own drain
// state and task cap (which any node may change). It reports whether the
// database answered and whether the node is draining.
func (n *Node) heartbeat(ctx context.Context) (ok, draining bool) {
	// A hung database must not stall the loop past the next beat.
	timeout := max(n.cfg.Heartbeat, time.Second)
	hctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	now := time.Now().UTC()
	err := n.cfg.DB.Heartbeat(hctx, store.Node{
		ID: n.cfg.ID, Name: n.cfg.Name, MaxConcurrentTasks: n.cfg.MaxConcurrentTasks,
		LastSeen: now, Version: n.cfg.Version, URL: n.cfg.URL,
	})
	var row store.Node
	if err == nil {
		row, err = n.cfg.DB.Node(hctx, n.cfg.ID)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if err != nil {
		prev := n.state.Load()
		healthy := !n.lastDBOK.IsZero() && time.Since(n.lastDBOK) < n.cfg.UnhealthyAfter
		if prev.dbOK && !healthy {
			n.log.Warn("shared database unreachable: ping now answers 503", "err", err, "since", n.lastDBOK)
		} else if ctx.Err() == nil {
			n.log.Debug("heartbeat failed", "err", err)
		}
		n.setState(prev.node, healthy)
		return false, false
	}
	if prev := n.state.Load(); !prev.dbOK {
		n.log.Info("shared database reachable: node healthy", "maintenance", row.IsInMaintenanceMode)
	} else if prev.node.IsInMaintenanceMode != row.IsInMaintenanceMode {
		n.log.Info("maintenance mode changed", "draining", row.IsInMaintenanceMode)
	}
	n.lastDBOK = time.Now()
	n.setState(row, true)
	return true, row.IsInMaintenanceMode
}

// beat is one heartbeat, then the leadership renewal it carries.
func (n *Node) beat(ctx context.Context) {
	ok, draining := n.heartbeat(ctx)
	n.leadTick(ctx, ok, draining)
}

// refresh re-reads this node's row after a change made through this node,
// so its own ping reflects a drain at once.
func (n *Node) refresh(row store.Node) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.setState(row, n.state.Load().dbOK)
}

func (n *Node) setState(row store.Node, dbOK bool) {
	if row.ID == "" {
		row.ID, row.Name = n.cfg.ID, n.cfg.Name
	}
	res := n.resource(row, time.Now(), nil)
	res.IsOffline = !dbOK
	status := http.StatusOK
	switch {
	case !dbOK:
		status = http.StatusServiceUnavailable
	case row.IsInMaintenanceMode:
		status = http.StatusTeapot
	}
	body, _ := json.Marshal(res)
	n.state.Store(&healthState{status: status, body: body, node: row, dbOK: dbOK})
}

// resource renders a node row as Octopus does. v gives the leader and the
// tasks each node holds; without it (ping) the node knows only its own.
func (n *Node) resource(row store.Node, now time.Time, v *clusterView) octopusapi.Node {
	res := octopusapi.Node{
		Id:                  row.ID,
		Name:                row.Name,
		MaxConcurrentTasks:  row.MaxConcurrentTasks,
		IsInMaintenanceMode: row.IsInMaintenanceMode,
		Version:             row.Version,
		Links: octopusapi.Links{
			"Self":    octopusapi.NodePath(row.ID),
			"Details": octopusapi.NodePath(row.ID) + "/details",
			"Node":    octopusapi.NodePath(row.ID),
		},
	}
	if !row.LastSeen.IsZero() {
		ls := row.LastSeen.UTC()
		res.LastSeen = &ls
		res.IsOffline = now.Sub(ls) > n.cfg.OfflineAfter
	}
	switch {
	case v != nil && v.ok:
		res.RunningTaskCount = v.running[row.Name]
	case row.ID == n.cfg.ID:
		res.RunningTaskCount = n.queue.count()
	}
	if row.ID == n.cfg.ID {
		res.RunningTaskCount += int(n.tasks.Load())
	}
	switch {
	case v != nil && v.leaseOK:
		res.Rank = octopusapi.RankFollower
		if v.lease.NodeID == row.ID && v.lease.HeldAt(now) {
			res.Rank = octopusapi.RankLeader
		}
	case v == nil && row.ID == n.cfg.ID:
		res.Rank = octopusapi.RankFollower
		if n.IsLeader() {
			res.Rank = octopusapi.RankLeader
		}
	}
	return res
}

// Serve listens on addr and serves the node's API until ctx is done, then
// shuts down gracefully (in-flight requests get up to grace to finish).
func (n *Node) Serve(ctx context.Context, addr string, grace time.Duration) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	return n.ServeListener(ctx, ln, grace)
}

// ServeListener is Serve on an existing listener.
func (n *Node) ServeListener(ctx context.Context, ln net.Listener, grace time.Duration) error {
	srv := &http.Server{
		Handler:           n,
		ReadHeaderTimeout: n.cfg.ReadHeaderTimeout,
		IdleTimeout:       n.cfg.IdleTimeout,
		// No ReadTimeout or WriteTimeout: they would bound a whole upload
		// or download, and a gigabyte may take minutes. Uploads are
		// bounded by UploadStallTimeout instead. The server's own messages
		// (TLS noise, superfluous WriteHeader) stay at Debug; panics are
		// recovered and logged at Error by ServeHTTP.
		ErrorLog:    slog.NewLogLogger(n.log.Handler(), slog.LevelDebug),
		BaseContext: func(net.Listener) context.Context { return ctx },
	}
	runCtx, stopRun := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRun()
	if n.cfg.PollingListen != "" {
		pln, err := net.Listen("tcp", n.cfg.PollingListen)
		if err != nil {
			return fmt.Errorf("listen on the polling port %s: %w", n.cfg.PollingListen, err)
		}
		go n.servePolling(ctx, pln)
	}
	go func() { _ = n.Run(runCtx) }()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	n.log.Info("node serving", "listen", ln.Addr().String(), "id", n.cfg.ID, "db", n.cfg.DB.String(), "packages", n.cfg.Packages.String())
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	err := srv.Shutdown(sctx)
	if err != nil {
		_ = srv.Close()
	}
	n.log.Info("node stopped")
	return nil
}

// validKey reports whether key is one of the configured API keys, in
// constant time per key.
func (n *Node) validKey(key string) bool {
	ok := 0
	for _, k := range n.cfg.APIKeys {
		ok |= subtle.ConstantTimeCompare([]byte(k), []byte(key))
	}
	return ok == 1
}

// requestKey extracts the API key or bearer token from a request.
func requestKey(r *http.Request) string {
	if k := r.Header.Get(octopusapi.HeaderAPIKey); k != "" {
		return k
	}
	if a := r.Header.Get("Authorization"); len(a) > 7 && strings.EqualFold(a[:7], "Bearer ") {
		return strings.TrimSpace(a[7:])
	}
	if k := r.URL.Query().Get("apikey"); k != "" {
		return k
	}
	return ""
}

// activeSet tracks the temporary files this process is writing, so the
// janitor never sweeps a live upload.
type activeSet struct {
	mu sync.Mutex
	m  map[string]struct{}
}

func (a *activeSet) add(name string) {
	a.mu.Lock()
	a.m[name] = struct{}{}
	a.mu.Unlock()
}

func (a *activeSet) remove(name string) {
	a.mu.Lock()
	delete(a.m, name)
	a.mu.Unlock()
}

func (a *activeSet) has(name string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, ok := a.m[name]
	return ok
}
