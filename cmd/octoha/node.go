package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/octoha/octoha/fakes/blob"
	"github.com/octoha/octoha/fakes/node"
	"github.com/octoha/octoha/fakes/store"
)

// envAPIKey names the environment variable that can carry API keys
// (comma-separated), so they need not appear on a command line.
const envAPIKey = "OCTOHA_API_KEY"

// envDB can carry the database DSN (which may hold a password) instead of
// --db.
const envDB = "OCTOHA_DB"

func runNode(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("node", stderr)
	var (
		id        = fs.String("id", "", "node ID, e.g. OctopusServerNodes-1 (required)")
		name      = fs.String("name", "", "node name, e.g. Node1 (required)")
		listen    = fs.String("listen", "127.0.0.11:8080", "address to serve the Octopus API on")
		dsn       = fs.String("db", "", "shared database: sqlite:PATH, postgres://… or sqlserver://… (or $OCTOHA_DB, keeping a password off the command line)")
		packages  = fs.String("packages", "", "Packages store: a directory or smb://user[:password]@host[:port]/share/dir (required; password may come from $OCTOHA_SMB_PASSWORD)")
		artifacts = fs.String("artifacts", "", "Artifacts store (directory or smb:// URL); optional")
		tasklogs  = fs.String("tasklogs", "", "TaskLogs store (directory or smb:// URL); optional")
		maxTasks  = fs.Int("max-concurrent-tasks", node.DefaultMaxConcurrentTasks, "task cap recorded for this node when it first registers")
		heartbeat = fs.Duration("heartbeat", node.DefaultHeartbeat, "heartbeat interval into the shared database")
		unhealthy = fs.Duration("unhealthy-after", node.DefaultUnhealthyAfter, "how long the database may be unreachable before ping answers 503")
		publicURL = fs.String("url", "", "URL this node is reachable at, recorded in the database (default http://<listen>)")
		startup   = fs.Duration("startup-timeout", 30*time.Second, "how long to keep trying to reach the database at start")
		grace     = fs.Duration("shutdown-grace", 10*time.Second, "how long in-flight requests may run on SIGTERM")
		logLevel  = fs.String("log-level", "info", "debug, info, warn or error")
		logJSON   = fs.Bool("log-json", false, "log JSON lines instead of text")
		unsafeAck = fs.Bool("unsafe-ack-before-store", false, "TEST ONLY: acknowledge uploads before storing them (a deliberately broken node)")
		unsafeDly = fs.Duration("unsafe-store-delay", 3*time.Second, "TEST ONLY: delay between the early acknowledgement and the store")
		keys      stringsFlag
	)
	fs.Var(&keys, "api-key", "API key to accept (repeatable; or comma-separated in $"+envAPIKey+")")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *dsn == "" {
		*dsn = os.Getenv(envDB)
	}
	if env := os.Getenv(envAPIKey); env != "" {
		for _, k := range strings.Split(env, ",") {
			if k = strings.TrimSpace(k); k != "" {
				keys = append(keys, k)
			}
		}
	}
	switch {
	case *id == "" || *name == "":
		return fmt.Errorf("%w: --id and --name are required", errUsage)
	case !validDSN(*dsn):
		return fmt.Errorf("%w: --db must be sqlite:PATH, postgres://… or sqlserver://… (got %q)", errUsage, store.RedactDSN(*dsn))
	case *packages == "":
		return fmt.Errorf("%w: --packages is required (a directory or an smb:// URL)", errUsage)
	case len(keys) == 0:
		return fmt.Errorf("%w: at least one --api-key (or $%s) is required", errUsage, envAPIKey)
	case *heartbeat <= 0:
		return fmt.Errorf("%w: --heartbeat must be positive", errUsage)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("%w: --log-level %q: %v", errUsage, *logLevel, err)
	}
	hopts := &slog.HandlerOptions{Level: level}
	var handler slog.Handler = slog.NewTextHandler(stderr, hopts)
	if *logJSON {
		handler = slog.NewJSONHandler(stderr, hopts)
	}
	log := slog.New(handler).With("node", *name)

	db, err := openDBWithRetry(ctx, *dsn, *startup, log)
	if err != nil {
		return err
	}
	defer db.Close()
	pkgs, err := blob.Open(ctx, *packages)
	if err != nil {
		return fmt.Errorf("open Packages store: %w", err)
	}
	defer pkgs.Close()
	cfg := node.Config{
		ID: *id, Name: *name, URL: *publicURL, DB: db, Packages: pkgs, APIKeys: keys,
		MaxConcurrentTasks: *maxTasks, Heartbeat: *heartbeat, UnhealthyAfter: *unhealthy,
		Logger: log, UnsafeAckBeforeStore: *unsafeAck, UnsafeStoreDelay: *unsafeDly,
	}
	if cfg.URL == "" {
		cfg.URL = "http://" + *listen
	}
	for _, s := range []struct {
		loc string
		dst *blob.Store
		nm  string
	}{{*artifacts, &cfg.Artifacts, "Artifacts"}, {*tasklogs, &cfg.TaskLogs, "TaskLogs"}} {
		if s.loc == "" {
			continue
		}
		st, err := blob.Open(ctx, s.loc)
		if err != nil {
			return fmt.Errorf("open %s store: %w", s.nm, err)
		}
		defer st.Close()
		*s.dst = st
	}
	if *unsafeAck {
		log.Warn("UNSAFE TEST MODE: uploads are acknowledged before they are stored")
	}
	n, err := node.New(cfg)
	if err != nil {
		return err
	}
	return n.Serve(ctx, *listen, *grace)
}

// openDBWithRetry opens the shared database, retrying while it is not yet
// reachable (nodes and database may start together).
func openDBWithRetry(ctx context.Context, dsn string, timeout time.Duration, log *slog.Logger) (*store.DB, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		db, err := store.Open(ctx, dsn)
		if err == nil {
			return db, nil
		}
		if attempt == 1 {
			log.Warn("shared database not reachable yet; retrying", "db", store.RedactDSN(dsn), "err", err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("open shared database %s: %w", store.RedactDSN(dsn), err)
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
