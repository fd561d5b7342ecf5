package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/octoha/octoha/fakes/blob"
	"github.com/octoha/octoha/fakes/node"
	"github.com/octoha/octoha/fakes/node/launch"
	"github.com/octoha/octoha/fakes/store"
)

func runNode(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	privateUmask()
	fs := newFlagSet(launch.Subcommand, stderr)
	// The flags are the launch contract, shared with the providers that
	// start nodes; secrets come from flags only when a person types them.
	var (
		lc  launch.Config
		sec launch.Secrets
	)
	lc.Register(fs)
	sec.Register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	sec.FromEnv(os.Getenv)
	switch {
	case lc.ID == "" || lc.Name == "":
		return fmt.Errorf("%w: --id and --name are required", errUsage)
	case !validDSN(sec.DB):
		return fmt.Errorf("%w: --%s must be sqlite:PATH, postgres://… or sqlserver://… (got %q)", errUsage, launch.FlagDB, store.RedactDSN(sec.DB))
	case lc.Packages == "":
		return fmt.Errorf("%w: --packages is required (a directory or an smb:// URL)", errUsage)
	case len(sec.APIKeys) == 0:
		return fmt.Errorf("%w: at least one --%s (or $%s) is required", errUsage, launch.FlagAPIKey, launch.EnvAPIKey)
	case lc.Heartbeat <= 0:
		return fmt.Errorf("%w: --heartbeat must be positive", errUsage)
	case lc.PermissionCacheTTL <= 0:
		return fmt.Errorf("%w: --permission-cache-ttl must be positive", errUsage)
	case lc.PermissionCache != node.PermissionCacheLocal && lc.PermissionCache != node.PermissionCacheShared:
		return fmt.Errorf("%w: --permission-cache %q: want local or shared", errUsage, lc.PermissionCache)
	case lc.PollingListen != "" && (lc.PollingCert == "" || lc.PollingKey == ""):
		return fmt.Errorf("%w: --polling-listen needs --polling-cert and --polling-key", errUsage)
	case node.ValidOS(lc.OS) != nil:
		return fmt.Errorf("%w: --os: %v", errUsage, node.ValidOS(lc.OS))
	case lc.TaskPoll <= 0:
		return fmt.Errorf("%w: --task-poll must be positive", errUsage)
	case lc.OfflineAfter < 0 || lc.LeaderLease < 0 || lc.RetentionInterval < 0 || lc.UnsafeClaimDelay < 0:
		return fmt.Errorf("%w: --offline-after, --leader-lease, --retention-interval and --unsafe-claim-delay cannot be negative", errUsage)
	case lc.LeaderLease != 0 && lc.LeaderLease <= lc.Heartbeat:
		return fmt.Errorf("%w: --leader-lease (%v) must be longer than --heartbeat (%v), which renews it", errUsage, lc.LeaderLease, lc.Heartbeat)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(lc.LogLevel)); err != nil {
		return fmt.Errorf("%w: --log-level %q: %v", errUsage, lc.LogLevel, err)
	}
	hopts := &slog.HandlerOptions{Level: level}
	var handler slog.Handler = slog.NewTextHandler(stderr, hopts)
	if lc.LogJSON {
		handler = slog.NewJSONHandler(stderr, hopts)
	}
	log := slog.New(handler).With("node", lc.Name)

	db, err := openDBWithRetry(ctx, sec.DB, lc.StartupTimeout, log)
	if err != nil {
		return err
	}
	defer db.Close()
	var storeOpts []blob.Option
	if sec.SMBPassword != "" {
		storeOpts = append(storeOpts, blob.WithPassword(sec.SMBPassword))
	}
	pkgs, err := openStoreWithRetry(ctx, "Packages", lc.Packages, lc.StartupTimeout, log, storeOpts...)
	if err != nil {
		return err
	}
	defer pkgs.Close()
	cfg := node.Config{
		ID: lc.ID, Name: lc.Name, URL: lc.URL, DB: db, Packages: pkgs, APIKeys: sec.APIKeys,
		MaxConcurrentTasks: lc.MaxConcurrentTasks, Heartbeat: lc.Heartbeat, UnhealthyAfter: lc.UnhealthyAfter,
		Logger: log, UnsafeAckBeforeStore: lc.UnsafeAckBeforeStore, UnsafeStoreDelay: lc.UnsafeStoreDelay,
		UploadStallTimeout: lc.UploadStallTimeout, MaxPackageSize: lc.MaxPackageSize,
		TaskPoll: lc.TaskPoll, OfflineAfter: lc.OfflineAfter, LeaderLease: lc.LeaderLease,
		RetentionInterval: lc.RetentionInterval,
		UnsafeTaskClaim:   lc.UnsafeTaskClaim, UnsafeClaimDelay: lc.UnsafeClaimDelay,
		OS: lc.OS, PermissionCacheTTL: lc.PermissionCacheTTL, PermissionCache: lc.PermissionCache,
		PollingListen: lc.PollingListen,
	}
	if lc.RetentionInterval == 0 {
		cfg.RetentionInterval = -1 // the flag's 0 disables; the Config's 0 means the default
	}
	if lc.PollingListen != "" {
		cert, err := tls.LoadX509KeyPair(lc.PollingCert, lc.PollingKey)
		if err != nil {
			return fmt.Errorf("load the polling certificate: %w", err)
		}
		cfg.PollingCert = &cert
	}
	if cfg.URL == "" {
		cfg.URL = "http://" + lc.Listen
	}
	for _, s := range []struct {
		loc string
		dst *blob.Store
		nm  string
	}{{lc.Artifacts, &cfg.Artifacts, "Artifacts"}, {lc.TaskLogs, &cfg.TaskLogs, "TaskLogs"}} {
		if s.loc == "" {
			continue
		}
		st, err := openStoreWithRetry(ctx, s.nm, s.loc, lc.StartupTimeout, log, storeOpts...)
		if err != nil {
			return err
		}
		defer st.Close()
		*s.dst = st
	}
	if lc.UnsafeAckBeforeStore {
		log.Warn("UNSAFE TEST MODE: uploads are acknowledged before they are stored")
	}
	if lc.UnsafeTaskClaim {
		log.Warn("UNSAFE TEST MODE: tasks are claimed without the lock; two nodes may run one task at once")
	}
	n, err := node.New(cfg)
	if err != nil {
		return err
	}
	return n.Serve(ctx, lc.Listen, lc.ShutdownGrace)
}

// openDBWithRetry opens the shared database, retrying while it is not yet
// reachable (nodes and database may start together).
func openDBWithRetry(ctx context.Context, dsn string, timeout time.Duration, log *slog.Logger) (*store.DB, error) {
	return openWithRetry(ctx, "shared database "+store.RedactDSN(dsn), timeout, log, func(ctx context.Context) (*store.DB, error) {
		return store.Open(ctx, dsn)
	})
}

// openStoreWithRetry opens a shared store, retrying while the share does
// not answer yet or turns the session away (Azure Files throttles when
// every node mounts at once).
func openStoreWithRetry(ctx context.Context, name, loc string, timeout time.Duration, log *slog.Logger, opts ...blob.Option) (blob.Store, error) {
	if !strings.HasPrefix(strings.ToLower(loc), "smb://") {
		// A directory: nothing to wait for, and a bad path stays bad.
		st, err := blob.Open(ctx, loc, opts...)
		if err != nil {
			return nil, fmt.Errorf("open %s store: %w", name, err)
		}
		return st, nil
	}
	return openWithRetry(ctx, name+" store "+blob.Redact(loc), timeout, log, func(ctx context.Context) (blob.Store, error) {
		return blob.Open(ctx, loc, opts...)
	})
}

// openWithRetry calls open until it succeeds or timeout passes, backing
// off from 100 ms to 2 s, and says once that it is waiting.
func openWithRetry[T any](ctx context.Context, what string, timeout time.Duration, log *slog.Logger, open func(context.Context) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		v, err := open(ctx)
		if err == nil {
			return v, nil
		}
		if attempt == 1 {
			log.Warn(what+" not reachable yet; retrying", "err", err)
		}
		select {
		case <-ctx.Done():
			var zero T
			return zero, fmt.Errorf("open %s: %w", what, err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// validDSN checks a DSN's form before any connection is tried, so a typo
// fails at once instead of being retried until the startup timeout.
func validDSN(dsn string) bool {
	for _, p := range []string{"sqlite:", "postgres://", "postgresql://", "sqlserver://"} {
		if strings.HasPrefix(dsn, p) && len(dsn) > len(p) {
			return true
		}
	}
	return false
}
