package store

import (
	"context"
	"crypto/sha1" //nolint:gosec // a lock name, not a secret
	"database/sql"
	"encoding/hex"
	"errors"
	"strings"
)

// PackageTx is a transaction that holds one package's cluster-wide lock
// (see DB.LockPackage). Its methods see and change only that package's rows,
// and only through the transaction: the lock is held by this transaction's
// connection, so a query through the pool could wait for a connection (the
// single one of an in-memory SQLite database) or for the lock itself.
type PackageTx struct {
	db                 *DB
	tx                 *sql.Tx
	spaceID, packageID string // the locked package, as the caller spelled it
}

// LockPackage runs fn in a transaction holding the lock of one package: its
// space and its ID in any case (IDs are case-insensitive, as in Octopus and
// on an SMB share). Every node of a cluster serialises on it through the
// shared database, so a node can publish a file and record its row, or
// delete a row and its file, with no other node's change of that package in
// between. fn returning nil commits; an error rolls back and is returned as
// is. The lock is released when the transaction ends.
//
// How the lock is held differs per engine: SQLite's BEGIN IMMEDIATE takes
// the database's write lock (coarser, but SQLite has no other); PostgreSQL
// takes a transaction-scoped advisory lock on a hash of the key, SQL Server
// an application lock owned by the transaction. fn should be quick: it
// delays every other writer of the package (on SQLite, of the database).
func (db *DB) LockPackage(ctx context.Context, spaceID, packageID string, fn func(ctx context.Context, tx *PackageTx) error) error {
	return db.lockPackage(ctx, spaceID, packageID, false, fn)
}

// SettledPackage returns a package version's row (its ID in any case) once
// no publish or delete of the package is under way: it waits for the
// package's lock, shared with other readers where the engine has shared
// locks (on SQLite it is the write lock). A reader that opened the version's
// file before calling it holds the file this row describes if the row is
// the one it read before opening: a publish renames its file before its
// row commits, and a download must not send the new file under the old
// row's hash. The error wraps ErrNotFound if there is no such version.
func (db *DB) SettledPackage(ctx context.Context, spaceID, packageID, version string) (p Package, err error) {
	err = db.lockPackage(ctx, spaceID, packageID, true, func(ctx context.Context, tx *PackageTx) error {
		p, err = tx.Package(ctx, version)
		return err
	})
	return p, err
}

func (db *DB) lockPackage(ctx context.Context, spaceID, packageID string, shared bool, fn func(ctx context.Context, tx *PackageTx) error) error {
	if spaceID == "" || packageID == "" {
		return db.errorf("store: lock package %q in space %q: space and package ID are required", packageID, spaceID)
	}
	ctx, cancel := db.op(ctx)
	defer cancel()
	what := spaceID + "/" + packageID
	sqlTx, err := db.sql.BeginTx(ctx, nil)
	if err != nil {
		return db.errorf("store: lock package %s: begin: %w", what, err)
	}
	defer sqlTx.Rollback() //nolint:errcheck // no-op after Commit
	if s, ok := db.d.lockPackageStmt(spaceID, packageID, shared); ok {
		if _, err := sqlTx.ExecContext(ctx, s.sql, s.args...); err != nil {
			return db.errorf("store: lock package %s: %w", what, err)
		}
	}
	if err := fn(ctx, &PackageTx{db: db, tx: sqlTx, spaceID: spaceID, packageID: packageID}); err != nil {
		return err
	}
	if err := sqlTx.Commit(); err != nil {
		return db.errorf("store: lock package %s: commit: %w", what, err)
	}
	return nil
}

// packageLockKey names a package's lock: its space and its ID in lower
// case. SQL Server's application lock names are limited to 255 characters,
// so the key is hashed there.
func packageLockKey(spaceID, packageID string) string {
	return spaceID + "/" + strings.ToLower(packageID)
}

func hashedLockKey(key string) string {
	sum := sha1.Sum([]byte(key)) //nolint:gosec
	return "octoha.package." + hex.EncodeToString(sum[:])
}

// check refuses a package other than the locked one.
func (t *PackageTx) check(op, spaceID, packageID string) error {
	if spaceID != t.spaceID || !strings.EqualFold(packageID, t.packageID) {
		return t.db.errorf("store: %s %s/%s under the lock of %s/%s: not the locked package", op, spaceID, packageID, t.spaceID, t.packageID)
	}
	return nil
}

// Versions returns every version of the locked package, in any spelling of
// its ID.
func (t *PackageTx) Versions(ctx context.Context) ([]Package, error) {
	s := t.db.d.versionsStmt(t.spaceID, t.packageID)
	rows, err := t.tx.QueryContext(ctx, s.sql, s.args...)
	if err != nil {
		return nil, t.db.errorf("store: versions of package %s/%s: %w", t.spaceID, t.packageID, err)
	}
	defer rows.Close()
	var out []Package
	for rows.Next() {
		p, err := scanPackage(rows)
		if err != nil {
			return nil, t.db.errorf("store: versions of package %s/%s: %w", t.spaceID, t.packageID, err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, t.db.errorf("store: versions of package %s/%s: %w", t.spaceID, t.packageID, err)
	}
	return out, nil
}

// Spelling returns the ID as the package's rows spell it (the spelling it
// was first recorded with), or as the caller spelled it if it has none.
func (t *PackageTx) Spelling(ctx context.Context) (string, error) {
	all, err := t.Versions(ctx)
	if err != nil {
		return "", err
	}
	if len(all) > 0 {
		return all[0].PackageID, nil
	}
	return t.packageID, nil
}

// Package returns one version of the locked package; the error wraps
// ErrNotFound if there is none.
func (t *PackageTx) Package(ctx context.Context, version string) (Package, error) {
	s := t.db.d.packageStmt(t.spaceID, t.packageID, version)
	p, err := scanPackage(t.tx.QueryRowContext(ctx, s.sql, s.args...))
	if errors.Is(err, sql.ErrNoRows) {
		return Package{}, t.db.errorf("store: package %s/%s %s: %w", t.spaceID, t.packageID, version, ErrNotFound)
	}
	if err != nil {
		return Package{}, t.db.errorf("store: package %s/%s %s: %w", t.spaceID, t.packageID, version, err)
	}
	return p, nil
}

// Add records a version of the locked package, as DB.AddPackage does: its
// ID is recorded in the package's existing spelling, whatever p's.
func (t *PackageTx) Add(ctx context.Context, p Package, replace bool) (created bool, err error) {
	if p.SpaceID == "" || p.PackageID == "" || p.Version == "" {
		return false, t.db.errorf("store: add package %q %q in space %q: space, package ID and version are required",
			p.PackageID, p.Version, p.SpaceID)
	}
	if err := t.check("add package", p.SpaceID, p.PackageID); err != nil {
		return false, err
	}
	if p.PackageID, err = t.Spelling(ctx); err != nil {
		return false, err
	}
	what := p.SpaceID + "/" + p.PackageID + " " + p.Version
	if !replace {
		s := t.db.d.insertPackageStmt(p)
		res, err := t.tx.ExecContext(ctx, s.sql, s.args...)
		if t.db.d.uniqueViolation(err) {
			return false, t.db.errorf("store: add package %s: %w", what, ErrExists)
		}
		if err != nil {
			return false, t.db.errorf("store: add package %s: %w", what, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return false, t.db.errorf("store: add package %s: rows affected: %w", what, err)
		}
		if n == 0 {
			return false, t.db.errorf("store: add package %s: %w", what, ErrExists)
		}
		return true, nil
	}
	s := t.db.d.upsertPackageStmt(p)
	var revision int64
	if err := t.tx.QueryRowContext(ctx, s.sql, s.args...).Scan(&revision); err != nil {
		return false, t.db.errorf("store: add or replace package %s: %w", what, err)
	}
	return revision == 0, nil
}

// Delete removes a version's row; the error wraps ErrNotFound if there is
// none.
func (t *PackageTx) Delete(ctx context.Context, version string) error {
	s := t.db.d.deletePackageStmt(t.spaceID, t.packageID, version)
	res, err := t.tx.ExecContext(ctx, s.sql, s.args...)
	if err != nil {
		return t.db.errorf("store: delete package %s/%s %s: %w", t.spaceID, t.packageID, version, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return t.db.errorf("store: delete package %s/%s %s: %w", t.spaceID, t.packageID, version, ErrNotFound)
	}
	return nil
}
