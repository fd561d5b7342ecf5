// Package blob is the shared file storage of a fake Octopus HA cluster: a
// root (Packages, Artifacts or TaskLogs) that is either a local directory or
// a directory on an SMB 3 share (github.com/cloudsoda/go-smb2). Names are
// slash-separated and relative to the root; a name that would escape the
// root is refused.
package blob

import (
	"context"
	"errors"
	"io"
	"time"
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
	// Open opens a file for reading.
	Open(ctx context.Context, name string) (io.ReadCloser, error)
	// Stat describes a file.
	Stat(ctx context.Context, name string) (Info, error)
	// Publish renames from to to, making parent directories of to as needed.
	// Without replace it fails with ErrExist if to exists, atomically (two
	// publishers of the same name: exactly one wins).
	Publish(ctx context.Context, from, to string, replace bool) error
	// Remove removes a file; removing a missing file is not an error.
	Remove(ctx context.Context, name string) error
	// Walk lists every file (not directory) under dir, recursively.
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
