package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/octoha/octoha/fakes/blob"
	"github.com/octoha/octoha/fakes/node/launch"
	"github.com/octoha/octoha/fakes/store"
)

// CheckLaunch refuses a launch command line the node cannot run, before
// anything is opened: a missing ID, a DSN of the wrong form, a bad bound.
// Its errors name the flag, for the person who typed it.
func CheckLaunch(lc launch.Config, sec launch.Secrets) error {
	switch {
	case lc.ID == "" || lc.Name == "":
		return errors.New("--id and --name are required")
	case !validDSN(sec.DB):
		return fmt.Errorf("--%s must be sqlite:PATH, postgres://… or sqlserver://… (got %q)", launch.FlagDB, store.RedactDSN(sec.DB))
	case lc.Packages == "":
		return errors.New("--packages is required (a directory or an smb:// URL)")
	case len(sec.APIKeys) == 0:
		return fmt.Errorf("at least one --%s (or $%s) is required", launch.FlagAPIKey, launch.EnvAPIKey)
	case lc.Heartbeat <= 0:
		return errors.New("--heartbeat must be positive")
	case lc.PermissionCacheTTL <= 0:
		return errors.New("--permission-cache-ttl must be positive")
	case lc.PermissionCache != PermissionCacheLocal && lc.PermissionCache != PermissionCacheShared:
		return fmt.Errorf("--permission-cache %q: want local or shared", lc.PermissionCache)
	case lc.PollingListen != "" && (lc.PollingCert == "" || lc.PollingKey == ""):
		return errors.New("--polling-listen needs --polling-cert and --polling-key")
	case ValidOS(lc.OS) != nil:
		return fmt.Errorf("--os: %v", ValidOS(lc.OS))
	case lc.TaskPoll <= 0:
		return errors.New("--task-poll must be positive")
	case lc.OfflineAfter < 0 || lc.LeaderLease < 0 || lc.RetentionInterval < 0 || lc.UnsafeClaimDelay < 0:
		return errors.New("--offline-after, --leader-lease, --retention-interval and --unsafe-claim-delay cannot be negative")
	case lc.LeaderLease != 0 && lc.LeaderLease <= lc.Heartbeat:
		return fmt.Errorf("--leader-lease (%v) must be longer than --heartbeat (%v), which renews it", lc.LeaderLease, lc.Heartbeat)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(lc.LogLevel)); err != nil {
		return fmt.Errorf("--log-level %q: %v", lc.LogLevel, err)
	}
	return nil
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

// RunLaunched runs the node a launch command line describes (checked with
// CheckLaunch first) until ctx ends, logging to logw: it opens the shared
// database and stores, waiting for them while they come up beside it,
// then serves.
func RunLaunched(ctx context.Context, lc launch.Config, sec launch.Secrets, logw io.Writer) error {
	if err := CheckLaunch(lc, sec); err != nil {
		return err
	}
	var level slog.Level
	_ = level.UnmarshalText([]byte(lc.LogLevel)) // checked above
	hopts := &slog.HandlerOptions{Level: level}
	var handler slog.Handler = slog.NewTextHandler(logw, hopts)
	if lc.LogJSON {
		handler = slog.NewJSONHandler(logw, hopts)
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
	cfg, err := launchedConfig(lc, sec, db, pkgs, log)
	if err != nil {
		return err
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
	n, err := New(cfg)
	if err != nil {
		return err
	}
	return n.Serve(ctx, lc.Listen, lc.ShutdownGrace)
}

// launchedConfig is the node's Config from its command line and what has
// been opened for it.
func launchedConfig(lc launch.Config, sec launch.Secrets, db *store.DB, pkgs blob.Store, log *slog.Logger) (Config, error) {
	cfg := Config{
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
			return cfg, fmt.Errorf("load the polling certificate: %w", err)
		}
		cfg.PollingCert = &cert
	}
	if cfg.URL == "" {
		cfg.URL = "http://" + lc.Listen
	}
	return cfg, nil
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
