package node

// Publishing an upload: the temporary file renamed into place and only\n// then recorded in the database, by overwrite mode, and tidying what a\n// replaced or failed upload leaves behind.

import (
	"context" //nolint:gosec // Octopus identifies packages by SHA-1.
	"errors"
	"fmt"
	"net/http"
	"path"
	"strings"

	"github.com/octoha/octoha/fakes/blob"
	"github.com/octoha/octoha/fakes/store"
	"github.com/octoha/octoha/octopusapi"
)

// publishError is a publish outcome with a specific HTTP answer.
type publishError struct {
	status int
	msg    string
	err    error
}

func (e *publishError) Error() string { return e.err.Error() }
func (e *publishError) Unwrap() error { return e.err }

// publish moves a complete temporary file to its final name and records it,
// holding the package's lock in the shared database throughout, so that of
// any interleaving of uploads (and deletes) of one package across the
// cluster the row, the file and a download agree: no other node can rename
// its file over ours between our rename and our row. Inside the lock the
// package's existing spelling of the ID is used (IDs are case-insensitive),
// and the outcome (201, 200 or 409) is decided on the rows as they are, not
// on the check made before the body arrived. It returns the HTTP status to
// answer and the stored row. tmp is gone when it returns.
func (n *Node) publish(ctx context.Context, tmp string, row store.Package, mode string) (int, store.Package, error) {
	var (
		status    int
		stored    store.Package
		published bool   // tmp is at row.Path
		stale     string // a file the version's row pointed to before, under another extension
		replaced  bool   // the version existed and was overwritten
	)
	err := n.cfg.DB.LockPackage(ctx, row.SpaceID, row.PackageID, func(ctx context.Context, tx *store.PackageTx) error {
		spelling, err := tx.Spelling(ctx)
		if err != nil {
			return err
		}
		row.PackageID = spelling
		existing, err := tx.Package(ctx, row.Version)
		exists := err == nil
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if exists {
			// Versions match in any case (a pre-release label's); the
			// row keeps its first spelling, like the ID.
			row.Version = existing.Version
		}
		rel := octopusapi.PackageFile{ID: spelling, Version: row.Version, Extension: row.Extension}.StorePath(row.SpaceID)
		row.Path = storedPath(n.cfg.OS, rel)
		if exists && mode != octopusapi.OverwriteExisting {
			// Another upload of the same version won the race.
			if mode == octopusapi.IgnoreIfExists {
				status, stored = http.StatusOK, existing
				return nil
			}
			return &publishError{status: http.StatusConflict, msg: conflictMessage(existing),
				err: fmt.Errorf("record %s: %w", row.Path, store.ErrExists)}
		}
		// Under the lock nobody else publishes this package, so a file at
		// row.Path that no row points to is a leftover of a node that died
		// between its rename and its commit: replace it.
		if err := n.cfg.Packages.Publish(ctx, tmp, rel, true); err != nil {
			return &publishError{status: http.StatusInternalServerError, msg: "The package could not be stored.",
				err: fmt.Errorf("publish %s: %w", row.Path, err)}
		}
		published = true
		if n.hooks.beforeRecord != nil {
			n.hooks.beforeRecord(row)
		}
		if _, err := tx.Add(ctx, row, exists); err != nil {
			return err
		}
		if exists && existing.Path != row.Path {
			stale = existing.Path
		}
		replaced = exists
		status, stored = http.StatusCreated, row
		return nil
	})
	if !published {
		_ = n.cfg.Packages.Remove(ctx, tmp)
	}
	if err != nil {
		if published {
			// Nothing acknowledged the file: remove it unless a row points
			// to it. (An overwrite has already replaced the old file, which
			// its row still describes until the database returns and the
			// client retries.)
			n.removeUnrecorded(ctx, row.SpaceID, row.PackageID, row.Path)
		}
		var pe *publishError
		if errors.As(err, &pe) {
			return 0, row, err
		}
		return 0, row, &publishError{status: http.StatusServiceUnavailable, msg: "The Octopus Server could not reach its database while recording the package.",
			err: fmt.Errorf("record %s: %w", row.Path, err)}
	}
	if stale != "" {
		n.removeUnrecorded(ctx, row.SpaceID, row.PackageID, stale)
	} else if replaced {
		// Only the replaced file's signature cache can be stale.
		n.removeUnrecorded(ctx, row.SpaceID, row.PackageID, row.Path)
	}
	return status, stored, nil
}

// removeUnrecorded removes those of a package's files (paths under the
// Packages root) that no row of the package points to, and the package's
// folder once it has no version left. It holds the package's lock, so it
// cannot remove a file another node has just published and recorded under
// the same name. Failures are logged: a leftover file is untidy, not wrong.
func (n *Node) removeUnrecorded(ctx context.Context, space, packageID string, paths ...string) {
	// Detached: the request may be gone, or its deadline spent on the
	// failure being cleaned up after.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishTimeout)
	defer cancel()
	err := n.cfg.DB.LockPackage(ctx, space, packageID, func(ctx context.Context, tx *store.PackageTx) error {
		rows, err := tx.Versions(ctx)
		if err != nil {
			return err
		}
		// Keyed by the path relative to the store's root, the form the
		// store lists; rows this node cannot resolve (the other OS's)
		// protect nothing it could reach anyway.
		recorded := map[string]bool{}
		for _, r := range rows {
			rel, err := resolvePath(n.cfg.OS, r.Path)
			if err != nil {
				continue
			}
			recorded[strings.ToLower(rel)] = true
			// A signature cache is kept while its file is recorded
			// with the hash it was computed from.
			recorded[strings.ToLower(octopusapi.SignatureCachePath(rel, r.Hash))] = true
		}
		dirs := map[string]bool{}
		for _, p := range paths {
			rel, err := resolvePath(n.cfg.OS, p)
			if err != nil {
				n.log.Warn("cannot remove a package file no row points to", "path", p, "err", err)
				continue
			}
			// The folder is looked at even when the file is recorded: a
			// replaced file's signature cache is stale.
			dirs[path.Dir(rel)] = true
			// Compared in lower case: on an SMB share Case/x and case/x
			// are one file.
			if recorded[strings.ToLower(rel)] {
				continue
			}
			if err := n.cfg.Packages.Remove(ctx, rel); err != nil {
				n.log.Warn("cannot remove a package file no row points to", "path", p, "err", err)
				continue
			}
			n.log.Info("removed a package file no row points to", "path", p)
		}
		for d := range dirs {
			n.removeStaleSignatures(ctx, d, recorded)
		}
		if len(rows) == 0 {
			for d := range dirs {
				// Fails, harmlessly, if something else is still in it.
				if err := n.cfg.Packages.Remove(ctx, d); err != nil {
					n.log.Debug("package folder not removed", "dir", d, "err", err)
				}
			}
		}
		return nil
	})
	if err != nil {
		n.log.Warn("cannot tidy up package files", "package", packageID, "paths", paths, "err", err)
	}
}

// removeStaleSignatures removes the signature caches in dir that describe
// no recorded file (a deleted or replaced package). Called under the
// package's lock.
func (n *Node) removeStaleSignatures(ctx context.Context, dir string, recorded map[string]bool) {
	files, err := n.cfg.Packages.Walk(ctx, dir)
	if err != nil {
		if !errors.Is(err, blob.ErrNotExist) {
			n.log.Debug("cannot list a package folder for stale signatures", "dir", dir, "err", err)
		}
		return
	}
	for _, f := range files {
		if !strings.HasSuffix(f.Name, octopusapi.SignatureSuffix) || recorded[strings.ToLower(f.Name)] {
			continue
		}
		if err := n.cfg.Packages.Remove(ctx, f.Name); err != nil {
			n.log.Warn("cannot remove a stale signature cache", "path", f.Name, "err", err)
			continue
		}
		n.log.Info("removed a stale signature cache", "path", f.Name)
	}
}
