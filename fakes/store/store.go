// Package store is the shared database of a fake Octopus HA cluster: node
// registrations with heartbeats and drain state, and the built-in feed's
// package records. One small API over database/sql with three drivers:
// SQL Server (github.com/microsoft/go-mssqldb), PostgreSQL (pgx) and SQLite
// (modernc.org/sqlite), chosen by the DSN's scheme.
package store

import (
	"errors"
	"time"
)

// Kind names a database engine.
type Kind string

const (
	SQLite    Kind = "sqlite"
	Postgres  Kind = "postgres"
	SQLServer Kind = "sqlserver"
)

// Errors callers branch on.
var (
	// ErrNotFound: no such node or package.
	ErrNotFound = errors.New("not found")
	// ErrExists: the package version is already recorded.
	ErrExists = errors.New("already exists")
)

// Node is one Octopus Server node's row.
type Node struct {
	ID                  string
	Name                string
	MaxConcurrentTasks  int
	IsInMaintenanceMode bool
	LastSeen            time.Time // last heartbeat, from the node's clock (UTC)
	Version             string
	// URL is where the node says it can be reached (informational).
	URL string
}

// Package is one built-in feed package version's row. The row is written
// only after the file is in place on the share, so a row always points to a
// complete file. PackageID is case-insensitive (as in Octopus): lookups
// match it in any case, and a package keeps the spelling it was first
// recorded with.
type Package struct {
	SpaceID   string
	PackageID string
	Version   string
	Extension string
	Hash      string // SHA-1, lower-case hex
	Size      int64
	Path      string // relative to the Packages root, forward slashes
	Published time.Time
	NodeID    string // node that stored it
}

// PackageQuery filters ListPackages.
type PackageQuery struct {
	SpaceID   string
	PackageID string // match in any case when set
	Filter    string // case-insensitive substring of the package ID when set
	Skip      int    // clamped to [0, MaxPage]
	Take      int    // 0 = all; clamped to MaxPage
}
