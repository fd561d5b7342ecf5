package postgres

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/octoha/octoha/internal/proc"
)

// ReplicationUser is the role a standby streams WAL as (REPLICATION LOGIN,
// the same password as Options.User).
const ReplicationUser = "octoha_replicator"

// EnableReplication prepares a primary for streaming replication: a
// replication role, and a pg_hba rule letting it connect over TCP from any
// loopback address (the standby may come through a relay). PostgreSQL 15's
// defaults already have wal_level=replica and max_wal_senders=10.
func (s *Server) EnableReplication(ctx context.Context) error {
	hba := filepath.Join(s.dataDir, "pg_hba.conf")
	b, err := os.ReadFile(hba)
	if err != nil {
		return fmt.Errorf("postgres: read %s: %w", hba, err)
	}
	const rule = "host replication " + ReplicationUser + " 127.0.0.0/8 scram-sha-256\n"
	if !strings.Contains(string(b), rule) {
		if err := os.WriteFile(hba, append(b, []byte(rule)...), 0o600); err != nil {
			return fmt.Errorf("postgres: write %s: %w", hba, err)
		}
	}
	verb := "CREATE"
	var exists bool
	if err := s.adminQueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)", []any{ReplicationUser}, &exists); err != nil {
		return err
	}
	if exists {
		verb = "ALTER"
	}
	// A literal password: utility statements take no parameters; the error
	// below does not quote the statement.
	if err := s.AdminExec(ctx, verb+" ROLE "+pgx.Identifier{ReplicationUser}.Sanitize()+" REPLICATION LOGIN PASSWORD "+quoteLiteral(s.opts.Password)); err != nil {
		return fmt.Errorf("postgres: %s replication role: %w", strings.ToLower(verb), err)
	}
	return s.AdminExec(ctx, "SELECT pg_reload_conf()")
}

// SetSynchronousStandby makes commits on this primary wait until the named
// standby (its application_name) has flushed them; "" makes replication
// asynchronous again.
func (s *Server) SetSynchronousStandby(ctx context.Context, name string) error {
	stmt := "ALTER SYSTEM RESET synchronous_standby_names"
	if name != "" {
		stmt = "ALTER SYSTEM SET synchronous_standby_names = " + quoteLiteral(pgx.Identifier{name}.Sanitize())
	}
	if err := s.AdminExec(ctx, stmt); err != nil {
		return fmt.Errorf("postgres: set synchronous_standby_names: %w", err)
	}
	return s.AdminExec(ctx, "SELECT pg_reload_conf()")
}

// StandbyOptions configure StartStandby.
type StandbyOptions struct {
	// Options of the standby's own server (Dir, Host, Port, Log, BinDir);
	// Database, User and Password are the primary's (the data is a copy).
	Options
	// PrimaryAddr is host:port the standby streams from (the primary, or a
	// relay in front of it that can be cut to stop WAL shipping).
	PrimaryAddr string
	// Name is the standby's application_name (what
	// synchronous_standby_names refers to).
	Name string
}

// StartStandby copies primary with pg_basebackup into a fresh data
// directory (-R: standby.signal and primary_conninfo), starts it as a hot
// standby and returns once it accepts read-only connections.
func StartStandby(ctx context.Context, primary *Server, opts StandbyOptions) (_ *Server, err error) {
	o := opts.Options
	o.Database, o.User, o.Password = primary.opts.Database, primary.opts.User, primary.opts.Password
	if o.Host == "" {
		o.Host = DefaultHost
	}
	if o.BinDir == "" {
		o.BinDir = primary.opts.BinDir
	}
	if o.Port == 0 {
		if o.Port, err = proc.FreePort(o.Host); err != nil {
			return nil, err
		}
	}
	if opts.PrimaryAddr == "" {
		opts.PrimaryAddr = primary.Addr()
	}
	s := &Server{opts: o, log: proc.NewTail(8<<10, o.Log)}
	defer func() {
		if err != nil {
			_ = s.Close(context.WithoutCancel(ctx))
		}
	}()
	if err := s.prepareDirs(); err != nil {
		return nil, err
	}
	if err := s.basebackup(ctx, opts.PrimaryAddr, opts.Name); err != nil {
		return nil, err
	}
	if err := s.launch(ctx); err != nil {
		return nil, err
	}
	if err := s.waitReady(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// basebackup fills the (empty) data directory from the primary at addr.
func (s *Server) basebackup(ctx context.Context, addr, name string) error {
	host, port, ok := strings.Cut(addr, ":")
	if !ok {
		return fmt.Errorf("postgres: primary address %q is not host:port", addr)
	}
	if _, err := strconv.Atoi(port); err != nil {
		return fmt.Errorf("postgres: primary address %q: bad port", addr)
	}
	// Dir/data must be empty for pg_basebackup; prepareDirs created it.
	conn := fmt.Sprintf("host=%s port=%s user=%s application_name=%s connect_timeout=2", host, port, ReplicationUser, name)
	env := append(childEnv(), "PGPASSWORD="+s.opts.Password)
	p, err := proc.Start(proc.Spec{
		Name:       "pg_basebackup",
		Path:       filepath.Join(s.opts.BinDir, "pg_basebackup"),
		Args:       []string{"-D", s.dataDir, "-d", conn, "-R", "-X", "stream", "--checkpoint=fast", "--no-sync"},
		Dir:        s.opts.Dir,
		Env:        env,
		Log:        s.log,
		Credential: s.cred,
	})
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	if err := p.Wait(ctx); err != nil {
		_ = p.Kill(context.WithoutCancel(ctx))
		return fmt.Errorf("postgres: pg_basebackup from %s: %w", addr, err)
	}
	if err := p.Err(); err != nil {
		return fmt.Errorf("postgres: pg_basebackup from %s: %w; output:\n%s", addr, err, s.log.Indented())
	}
	return nil
}

// Promote ends recovery on a standby (pg_promote, waiting until it
// accepts writes, at most 60 s).
func (s *Server) Promote(ctx context.Context) error {
	var ok bool
	if err := s.adminQueryRow(ctx, "SELECT pg_promote(true, 60)", nil, &ok); err != nil {
		return fmt.Errorf("postgres: promote %s: %w", s.Addr(), err)
	}
	if !ok {
		return fmt.Errorf("postgres: promote %s: not promoted within 60s", s.Addr())
	}
	return nil
}

// InRecovery reports whether the server is a standby.
func (s *Server) InRecovery(ctx context.Context) (bool, error) {
	var rec bool
	err := s.adminQueryRow(ctx, "SELECT pg_is_in_recovery()", nil, &rec)
	return rec, err
}

// CurrentLSN is the primary's WAL write position
// (pg_current_wal_lsn), as text ("0/3000148").
func (s *Server) CurrentLSN(ctx context.Context) (string, error) {
	var lsn string
	err := s.adminQueryRow(ctx, "SELECT pg_current_wal_lsn()::text", nil, &lsn)
	return lsn, err
}

// ReplayedAtLeast reports whether a standby has replayed WAL up to lsn.
func (s *Server) ReplayedAtLeast(ctx context.Context, lsn string) (bool, error) {
	var ok bool
	err := s.adminQueryRow(ctx, "SELECT COALESCE(pg_last_wal_replay_lsn() >= $1::pg_lsn, false)", []any{lsn}, &ok)
	return ok, err
}

// AdminExec runs a statement as the superuser through the unix socket.
// Errors do not quote the statement.
func (s *Server) AdminExec(ctx context.Context, sql string) error {
	c, err := pgx.Connect(ctx, s.adminConnString())
	if err != nil {
		return fmt.Errorf("postgres: connect as superuser to %s: %w", s.Addr(), err)
	}
	defer c.Close(context.WithoutCancel(ctx))
	_, err = c.Exec(ctx, sql)
	return err
}

func (s *Server) adminQueryRow(ctx context.Context, sql string, args []any, dest ...any) error {
	c, err := pgx.Connect(ctx, s.adminConnString())
	if err != nil {
		return fmt.Errorf("postgres: connect as superuser to %s: %w", s.Addr(), err)
	}
	defer c.Close(context.WithoutCancel(ctx))
	if err := c.QueryRow(ctx, sql, args...).Scan(dest...); err != nil {
		return fmt.Errorf("postgres: query %s: %w", s.Addr(), err)
	}
	return nil
}
