// Package blob is the shared file storage of a fake Octopus HA cluster: a
// root (Packages, Artifacts or TaskLogs) that is either a local directory or
// a directory on an SMB 3 share (github.com/cloudsoda/go-smb2). Names are
// slash-separated and relative to the root; a name that would escape the
// root, or that SMB could not store, is refused with ErrBadName.
//
// On SMB, metadata operations share one session that is dialled again after
// a connection error (so a store outlives a share outage: operations fail
// while the server is down and work again once it is back); idempotent ones
// are retried once on the new connection, non-idempotent ones (Publish) and
// writes are not. Each Writer and each reader from Open has a session of its
// own, so a failed or abandoned stream is torn down without touching the
// others. Operations block while the server is frozen: give them contexts
// with deadlines.
package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/octoha/octoha/fakes/node/launch"
	"github.com/octoha/octoha/internal/redact"
)

// Errors callers branch on (wrapped; test with errors.Is).
var (
	ErrNotExist = errors.New("file does not exist")
	ErrExist    = errors.New("file already exists")
	ErrBadName  = errors.New("invalid file name")
)

// Info describes one file or directory.
type Info struct {
	Name    string // relative to the root, slash-separated
	Size    int64
	ModTime time.Time
	IsDir   bool
}

// Store is one storage root.
type Store interface {
	// Create creates (or truncates) a file for writing, making parent
	// directories as needed. Close commits the data; callers that give up
	// call Abort instead, which closes and removes the file.
	Create(ctx context.Context, name string) (Writer, error)
	// Open opens a file for reading. The reader also implements
	// io.Seeker (a local *os.File, or an SMB file handle).
	Open(ctx context.Context, name string) (io.ReadCloser, error)
	// Stat describes a file.
	Stat(ctx context.Context, name string) (Info, error)
	// Publish renames from to to, making parent directories of to as needed.
	// Without replace it fails with ErrExist if to exists, atomically (two
	// publishers of the same name: exactly one wins).
	Publish(ctx context.Context, from, to string, replace bool) error
	// Remove removes a file; removing a missing file is not an error.
	Remove(ctx context.Context, name string) error
	// Walk lists every file (not directory) under dir ("" for the root),
	// recursively, sorted by name; a missing dir has no files.
	Walk(ctx context.Context, dir string) ([]Info, error)
	// Ping checks that the storage is reachable.
	Ping(ctx context.Context) error
	// Close releases connections.
	Close() error
	// String describes the location with any password redacted.
	String() string
}

// Writer is a file being written.
type Writer interface {
	io.Writer
	// Close flushes and closes the file, reporting any write error.
	Close() error
	// Abort closes and removes the file; safe after Close.
	Abort() error
}

// PasswordEnv names the environment variable that supplies the SMB password
// when the location URL carries none, so it need not appear on a command
// line. It is the node's launch contract (launch.EnvSMBPassword).
const PasswordEnv = launch.EnvSMBPassword

// DefaultWritesInFlight is how many SMB WRITE requests of one file may be
// outstanding at once (see WithWritesInFlight).
const DefaultWritesInFlight = 4

// Option configures Open.
type Option func(*options)

type options struct {
	password       string
	hasPassword    bool
	logger         *slog.Logger
	lazy           bool
	writesInFlight int
}

// WithPassword supplies the SMB password when the URL has none.
func WithPassword(password string) Option {
	return func(o *options) { o.password, o.hasPassword = password, true }
}

// WithLogger sets where the store logs reconnects and failed clean-ups
// (default slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.logger = l }
}

// WithLazyConnect makes Open of an SMB location succeed without reaching
// the server; the first operation connects. A node can then start during a
// share outage and report it through Ping.
func WithLazyConnect() Option {
	return func(o *options) { o.lazy = true }
}

// WithWritesInFlight sets how many SMB writes of one file are pipelined
// (default DefaultWritesInFlight; 1 writes synchronously). Each costs one
// write-sized buffer (1 MiB) per open Writer.
func WithWritesInFlight(n int) Option {
	return func(o *options) { o.writesInFlight = n }
}

// Open opens a storage root: a local directory (created if missing) or
// smb://user[:password]@host[:port]/share[/dir], where dir is created if
// missing. Without a password in the URL it comes from WithPassword or the
// environment variable named by PasswordEnv. Errors never contain the
// password.
func Open(ctx context.Context, location string, opts ...Option) (Store, error) {
	o := options{writesInFlight: DefaultWritesInFlight}
	for _, opt := range opts {
		opt(&o)
	}
	if o.logger == nil {
		o.logger = slog.Default()
	}
	if o.writesInFlight < 1 {
		o.writesInFlight = 1
	}
	scheme, _, hasScheme := strings.Cut(location, "://")
	switch {
	case location == "":
		return nil, errors.New("blob: empty location")
	case hasScheme && strings.EqualFold(scheme, "smb"):
		return openSMB(ctx, location, o)
	case hasScheme && strings.EqualFold(scheme, "file"):
		u, err := url.Parse(location)
		if err != nil || (u.Host != "" && u.Host != "localhost") || u.Path == "" {
			return nil, fmt.Errorf("blob: bad location %q: want file:///absolute/path", location)
		}
		return openLocal(ctx, u.Path, o)
	case hasScheme:
		return nil, fmt.Errorf("blob: bad location %s: unsupported scheme %q (want a directory path or smb://user@host/share/dir)", Redact(location), scheme)
	case strings.HasPrefix(location, `\\`):
		return nil, fmt.Errorf("blob: bad location %s: write UNC paths as smb://user@host/share/dir", Redact(location))
	default:
		return openLocal(ctx, location, o)
	}
}

// Redact returns location with any password replaced by redact.Mark. It
// works on malformed URLs too, so it is safe for error messages about them.
func Redact(location string) string { return redact.URL(location) }

// checkName validates a name relative to the root: slash-separated,
// relative, without empty, "." or ".." segments, backslashes, control
// characters or characters SMB cannot store (:*?"<>|).
func checkName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty", ErrBadName)
	}
	if len(name) > 1024 {
		return fmt.Errorf("%w: longer than 1024 bytes", ErrBadName)
	}
	if name[0] == '/' {
		return fmt.Errorf("%w: %q is absolute", ErrBadName, name)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || strings.ContainsRune(`\:*?"<>|`, r) {
			return fmt.Errorf("%w: %q contains %q", ErrBadName, name, r)
		}
	}
	for _, seg := range strings.Split(name, "/") {
		switch seg {
		case "":
			return fmt.Errorf("%w: %q has an empty segment", ErrBadName, name)
		case ".", "..":
			return fmt.Errorf("%w: %q has a %q segment", ErrBadName, name, seg)
		}
	}
	return nil
}

// checkDir is checkName that also accepts "" (the root), for Walk.
func checkDir(dir string) error {
	if dir == "" {
		return nil
	}
	return checkName(dir)
}

// parentDir is the directory part of a valid name, "" for the root.
func parentDir(name string) string {
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		return name[:i]
	}
	return ""
}
