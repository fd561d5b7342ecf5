// Package postgres runs a throwaway PostgreSQL server as a foreground child
// process, for tests and for the local cluster provider: a real networked
// database that can be stopped, killed, paused and started again on the same
// data directory.
//
// The server is the `postgres` binary itself, not pg_ctl: pg_ctl daemonises,
// and a daemon would escape the parent-death signal that internal/proc gives
// every child, so a crashed harness would leave databases running.
//
// Durability: fsync is off, so committed data survives a process crash (Kill,
// the nemesis) but not a machine crash. That is what a throwaway server needs
// and it keeps initdb and commits fast on small CI machines.
package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/octoha/octoha/internal/proc"
)

// Defaults for Options fields left empty.
const (
	DefaultHost     = "127.0.0.1"
	DefaultDatabase = "octoha"
	DefaultUser     = "octoha"
	// DefaultConnectTimeout bounds each connection attempt of the DSN, so an
	// outage is noticed within seconds.
	DefaultConnectTimeout = 2 * time.Second
	// stopGrace is how long a fast shutdown may take before it becomes a kill.
	stopGrace = 30 * time.Second
	// superuser is the bootstrap superuser initdb creates; it is reachable only
	// through the unix socket in a 0700 directory (trust auth there).
	superuser = "postgres"
	// osUser runs the server when we are root: PostgreSQL refuses root.
	osUser = "postgres"
)

// Options configure a server. Zero values get defaults.
type Options struct {
	// Dir holds the data directory (Dir/data) and the unix socket
	// (Dir/run). Empty: Start creates a temporary directory and Close removes
	// it. A Dir given by the caller is left in place by Close. A Dir that
	// already holds an initialised data directory is reused as is. As root,
	// the server runs as the "postgres" OS user: Dir/data and Dir/run are
	// given to it, and Dir and its parents get the search (x) bit where that
	// user could not otherwise reach them (temp dirs are 0700), logged.
	Dir string
	// Host is the one address the server listens on (default 127.0.0.1).
	Host string
	// Port 0 picks a free port on Host once; restarts reuse it.
	Port int
	// Database and User are created if missing (default "octoha"); User
	// gets Password (SCRAM) and owns Database. Empty Password: a random one.
	Database, User, Password string
	// Log receives the server's and initdb's output; nil discards it (the
	// last lines are still quoted in startup errors).
	Log io.Writer
	// BinDir holds initdb and postgres; empty: found by Available.
	BinDir string
}

// Server is a running (or stopped) PostgreSQL server.
type Server struct {
	opts       Options // resolved
	dataDir    string
	sockDir    string
	createdDir bool // Start created opts.Dir: Close removes it
	tempSock   bool // sockDir is a short temp dir outside Dir: Close removes it
	cred       *proc.Credential
	log        *proc.Tail

	mu     sync.Mutex
	p      *proc.Process
	closed bool
}

// searchGlobs are where distributions install the server binaries; within a
// glob the newest version wins.
var searchGlobs = []string{
	"/usr/lib/postgresql/*/bin", // Debian, Ubuntu
	"/usr/pgsql-*/bin",          // RHEL (PGDG)
	"/usr/local/pgsql/bin",      // source builds
	"/opt/homebrew/opt/postgresql*/bin",
}

// Available returns the directory holding the initdb and postgres binaries:
// the newest /usr/lib/postgresql/*/bin (and other distributions' places),
// else the PATH. The error says what is missing and how to install it.
func Available() (binDir string, err error) {
	var dirs []string
	for _, g := range searchGlobs {
		m, _ := filepath.Glob(g)
		sort.Slice(m, func(i, j int) bool { return versionKey(m[i]) > versionKey(m[j]) })
		dirs = append(dirs, m...)
	}
	return findBinDir(dirs, os.Getenv("PATH"))
}

// versionKey extracts the first number in a path for "newest first".
func versionKey(p string) int {
	start := strings.IndexAny(p, "0123456789")
	if start < 0 {
		return 0
	}
	end := start
	for end < len(p) && p[end] >= '0' && p[end] <= '9' {
		end++
	}
	n, _ := strconv.Atoi(p[start:end])
	return n
}

func findBinDir(dirs []string, path string) (string, error) {
	for _, d := range dirs {
		if hasServerBinaries(d) {
			return d, nil
		}
	}
	for _, d := range filepath.SplitList(path) {
		if d != "" && hasServerBinaries(d) {
			return d, nil
		}
	}
	return "", fmt.Errorf("PostgreSQL server binaries (initdb and postgres) not found in %s or on PATH; "+
		"install them with `apt-get install postgresql` (Debian/Ubuntu; `make deps` does it) "+
		"or `dnf install postgresql-server`", strings.Join(searchGlobs, ", "))
}

func hasServerBinaries(dir string) bool {
	for _, name := range []string{"initdb", "postgres"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			return false
		}
	}
	return true
}

// Start initialises the data directory if needed, starts the server and
// returns once a connection through DSN succeeds (bounded by ctx). On error
// nothing is left running and a directory Start created is removed.
func Start(ctx context.Context, opts Options) (_ *Server, err error) {
	if opts.Host == "" {
		opts.Host = DefaultHost
	}
	if opts.Database == "" {
		opts.Database = DefaultDatabase
	}
	if opts.User == "" {
		opts.User = DefaultUser
	}
	if opts.Password == "" {
		b := make([]byte, 16)
		if _, err := rand.Read(b); err != nil {
			return nil, fmt.Errorf("postgres: generate password: %w", err)
		}
		opts.Password = hex.EncodeToString(b)
	}
	if opts.BinDir == "" {
		if opts.BinDir, err = Available(); err != nil {
			return nil, err
		}
	} else if !hasServerBinaries(opts.BinDir) {
		return nil, fmt.Errorf("postgres: %s does not hold initdb and postgres executables; "+
			"install them with `apt-get install postgresql`", opts.BinDir)
	}
	if opts.Port == 0 {
		if opts.Port, err = proc.FreePort(opts.Host); err != nil {
			return nil, err
		}
	}
	s := &Server{opts: opts, log: proc.NewTail(8<<10, opts.Log)}
	defer func() {
		if err != nil {
			_ = s.Close(context.WithoutCancel(ctx))
		}
	}()
	if err := s.prepareDirs(); err != nil {
		return nil, err
	}
	if err := s.initdb(ctx); err != nil {
		return nil, err
	}
	if err := s.launch(ctx); err != nil {
		return nil, err
	}
	if err := s.bootstrap(ctx); err != nil {
		return nil, err
	}
	if err := s.waitReady(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// prepareDirs creates Dir, Dir/data and the socket directory, owned by the
// server's OS user.
func (s *Server) prepareDirs() error {
	if s.opts.Dir == "" {
		d, err := os.MkdirTemp("", "octoha-pg-")
		if err != nil {
			return fmt.Errorf("postgres: create temp dir: %w", err)
		}
		s.opts.Dir, s.createdDir = d, true
	} else {
		abs, err := filepath.Abs(s.opts.Dir)
		if err != nil {
			return fmt.Errorf("postgres: dir %s: %w", s.opts.Dir, err)
		}
		s.opts.Dir = abs
		if err := os.MkdirAll(abs, 0o755); err != nil {
			return fmt.Errorf("postgres: create dir: %w", err)
		}
	}
	s.dataDir = filepath.Join(s.opts.Dir, "data")
	s.sockDir = filepath.Join(s.opts.Dir, "run")
	// A unix socket path must fit in sun_path (108 bytes with the NUL).
	if len(s.sockDir)+len("/.s.PGSQL.65535") >= 100 {
		d, err := os.MkdirTemp("", "octoha-pgsock-")
		if err != nil {
			return fmt.Errorf("postgres: create socket dir: %w", err)
		}
		s.sockDir, s.tempSock = d, true
	}
	for _, d := range []string{s.dataDir, s.sockDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("postgres: create %s: %w", d, err)
		}
		if err := os.Chmod(d, 0o700); err != nil {
			return fmt.Errorf("postgres: chmod %s: %w", d, err)
		}
	}
	if os.Geteuid() != 0 {
		return nil
	}
	u, err := user.Lookup(osUser)
	if err != nil {
		return fmt.Errorf("postgres: PostgreSQL refuses to run as root and there is no %q OS user to run it as "+
			"(`apt-get install postgresql` creates one): %w", osUser, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	s.cred = &proc.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	for _, d := range []string{s.dataDir, s.sockDir} {
		if err := chownTree(d, uid, gid); err != nil {
			return err
		}
		if err := ensureSearchable(filepath.Dir(d), uid, gid); err != nil {
			return err
		}
	}
	return nil
}

// env is the children's whole environment: nothing from ours (PGDATA,
// PGPORT… would interfere), C locale, UTC.
func childEnv() []string {
	return []string{"PATH=/usr/local/bin:/usr/bin:/bin", "LC_ALL=C", "LANG=C", "TZ=UTC"}
}

// initdb initialises the data directory unless it already is.
func (s *Server) initdb(ctx context.Context) error {
	if _, err := os.Stat(filepath.Join(s.dataDir, "PG_VERSION")); err == nil {
		return nil
	}
	p, err := proc.Start(proc.Spec{
		Name: "initdb",
		Path: filepath.Join(s.opts.BinDir, "initdb"),
		Args: []string{"-D", s.dataDir, "-U", superuser, "-E", "UTF8", "--locale=C",
			"--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync"},
		Dir:        s.opts.Dir,
		Env:        childEnv(),
		Log:        s.log,
		Credential: s.cred,
	})
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	if err := p.Wait(ctx); err != nil {
		_ = p.Kill(context.WithoutCancel(ctx))
		return fmt.Errorf("postgres: initdb %s: %w", s.dataDir, err)
	}
	if err := p.Err(); err != nil {
		return fmt.Errorf("postgres: initdb %s: %w; output:\n%s", s.dataDir, err, s.log.Indented())
	}
	return nil
}

// launch starts the postgres process and waits until the superuser can
// connect through the unix socket.
func (s *Server) launch(ctx context.Context) error {
	s.mu.Lock()
	if s.p != nil && !s.p.Exited() {
		s.mu.Unlock()
		return fmt.Errorf("postgres: server on %s is already running (pid %d)", s.Addr(), s.p.PID())
	}
	p, err := proc.Start(proc.Spec{
		Name: "postgres " + s.Addr(),
		Path: filepath.Join(s.opts.BinDir, "postgres"),
		Args: []string{"-D", s.dataDir,
			"-c", "listen_addresses=" + s.opts.Host,
			"-c", "port=" + strconv.Itoa(s.opts.Port),
			"-c", "unix_socket_directories=" + s.sockDir,
			"-c", "fsync=off",
			"-c", "logging_collector=off",
			// The default (error) would copy a failing statement into the
			// log, and the bootstrap statements carry the password.
			"-c", "log_min_error_statement=panic",
		},
		Dir:        s.opts.Dir,
		Env:        childEnv(),
		Log:        s.log,
		Credential: s.cred,
	})
	if err != nil {
		s.mu.Unlock()
		return fmt.Errorf("postgres: %w", err)
	}
	s.p = p
	s.mu.Unlock()
	err = s.poll(ctx, p, func(ctx context.Context) error {
		c, err := pgx.Connect(ctx, s.adminConnString())
		if err != nil {
			return err
		}
		return c.Close(ctx)
	})
	if err != nil {
		_ = p.Kill(context.WithoutCancel(ctx))
		return err
	}
	return nil
}

// poll runs try until it succeeds, the process exits or ctx ends.
func (s *Server) poll(ctx context.Context, p *proc.Process, try func(context.Context) error) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		actx, cancel := context.WithTimeout(ctx, DefaultConnectTimeout)
		last = try(actx)
		cancel()
		if last == nil {
			return nil
		}
		select {
		case <-p.Done():
			return fmt.Errorf("postgres on %s exited during startup (%v); output:\n%s", s.Addr(), p.Err(), s.log.Indented())
		case <-ctx.Done():
			return fmt.Errorf("postgres on %s not ready: %w (last attempt: %v); output:\n%s", s.Addr(), ctx.Err(), last, s.log.Indented())
		case <-tick.C:
		}
	}
}

func (s *Server) adminConnString() string {
	return fmt.Sprintf("host=%s port=%d user=%s dbname=postgres sslmode=disable connect_timeout=2",
		s.sockDir, s.opts.Port, superuser)
}

// bootstrap creates (or updates) the user with its password and the
// database it owns.
func (s *Server) bootstrap(ctx context.Context) error {
	c, err := pgx.Connect(ctx, s.adminConnString())
	if err != nil {
		return fmt.Errorf("postgres: connect as superuser through %s: %w", s.sockDir, err)
	}
	defer c.Close(context.WithoutCancel(ctx))
	role := pgx.Identifier{s.opts.User}.Sanitize()
	var exists bool
	if err := c.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)", s.opts.User).Scan(&exists); err != nil {
		return fmt.Errorf("postgres: look up role: %w", err)
	}
	if _, err := c.Exec(ctx, "SET password_encryption = 'scram-sha-256'"); err != nil {
		return fmt.Errorf("postgres: select SCRAM password encryption: %w", err)
	}
	// Utility statements take no parameters, so the password is a literal;
	// errors below must not quote the statement.
	verb := "CREATE"
	if exists {
		verb = "ALTER"
	}
	if _, err := c.Exec(ctx, verb+" ROLE "+role+" LOGIN PASSWORD "+quoteLiteral(s.opts.Password)); err != nil {
		return fmt.Errorf("postgres: %s role %s: %w", strings.ToLower(verb), s.opts.User, err)
	}
	if err := c.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", s.opts.Database).Scan(&exists); err != nil {
		return fmt.Errorf("postgres: look up database: %w", err)
	}
	if !exists {
		if _, err := c.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{s.opts.Database}.Sanitize()+" OWNER "+role); err != nil {
			return fmt.Errorf("postgres: create database %s: %w", s.opts.Database, err)
		}
	}
	return nil
}

// quoteLiteral quotes s as an SQL string literal (standard_conforming_strings
// is on by default, so only quotes need doubling).
func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// waitReady polls a real TCP connection with the user's credentials.
func (s *Server) waitReady(ctx context.Context) error {
	s.mu.Lock()
	p := s.p
	s.mu.Unlock()
	return s.poll(ctx, p, func(ctx context.Context) error {
		c, err := pgx.Connect(ctx, s.DSN())
		if err != nil {
			return err
		}
		defer c.Close(context.WithoutCancel(ctx))
		return c.Ping(ctx)
	})
}

// DSN returns postgres://user:password@host:port/db?sslmode=disable&connect_timeout=2.
func (s *Server) DSN() string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(s.opts.User, s.opts.Password),
		Host:     s.Addr(),
		Path:     "/" + s.opts.Database,
		RawQuery: "sslmode=disable&connect_timeout=" + strconv.Itoa(int(DefaultConnectTimeout/time.Second)),
	}
	return u.String()
}

// Addr returns host:port.
func (s *Server) Addr() string { return net.JoinHostPort(s.opts.Host, strconv.Itoa(s.opts.Port)) }

// Dir returns the directory holding the data directory.
func (s *Server) Dir() string { return s.opts.Dir }

// PID returns the postmaster's process ID, or 0 when it is not running.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.p == nil || s.p.Exited() {
		return 0
	}
	return s.p.PID()
}

// Running reports whether the server process is alive.
func (s *Server) Running() bool { return s.PID() != 0 }

// running returns the live process or nil.
func (s *Server) running() *proc.Process {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.p == nil || s.p.Exited() {
		return nil
	}
	return s.p
}
