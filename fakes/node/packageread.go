package node

// Reading packages back: their resource, metadata, raw download, the\n// list, and deleting one.

import (
	"context" //nolint:gosec // Octopus identifies packages by SHA-1.
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strconv"

	"github.com/octoha/octoha/fakes/blob"
	"github.com/octoha/octoha/fakes/store"
	"github.com/octoha/octoha/octopusapi"
)

func (n *Node) packageResource(p store.Package) octopusapi.Package {
	id := octopusapi.PackageResourceID(p.PackageID, p.Version)
	return octopusapi.Package{
		Id:               id,
		PackageId:        p.PackageID,
		Version:          p.Version,
		Hash:             p.Hash,
		PackageSizeBytes: p.Size,
		FeedId:           octopusapi.BuiltInFeedID,
		NuGetPackageId:   p.PackageID,
		NuGetFeedId:      octopusapi.BuiltInFeedID,
		FileExtension:    p.Extension,
		Title:            p.PackageID,
		Published:        p.Published.UTC(),
		Links: octopusapi.Links{
			"Self": octopusapi.PackagePath(p.SpaceID, id),
			"Raw":  octopusapi.PackageRawPath(p.SpaceID, id),
			"Feed": "/api/" + p.SpaceID + "/feeds/" + octopusapi.BuiltInFeedID,
		},
	}
}

// lookup resolves a package resource ID ("packages-<Id>.<Version>").
func (n *Node) lookup(w http.ResponseWriter, r *http.Request, space, resID string) (store.Package, bool) {
	pid, ver, ok := octopusapi.SplitPackageResourceID(resID)
	if !ok {
		writeError(w, http.StatusNotFound, "The package "+resID+" does not exist.", nil)
		return store.Package{}, false
	}
	// By the version as written or normalised: rows hold the normalised.
	row, err := n.cfg.DB.Package(r.Context(), space, pid, octopusapi.NormalizeVersion(ver))
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, "The package "+resID+" does not exist.", nil)
		return row, false
	case err != nil:
		n.dbError(w, "reading package "+resID, err)
		return row, false
	}
	return row, true
}

func (n *Node) getPackage(w http.ResponseWriter, r *http.Request, space, resID string) {
	if row, ok := n.lookup(w, r, space, resID); ok {
		writeJSON(w, http.StatusOK, n.packageResource(row))
	}
}

func (n *Node) downloadPackage(w http.ResponseWriter, r *http.Request, space, resID string) {
	row, ok := n.lookup(w, r, space, resID)
	if !ok {
		return
	}
	// A publish renames its file before its row commits, so the file opened
	// may be newer than the row read. Once the package has settled (no
	// publish under way: its lock is free), the row read again tells: if
	// it is unchanged, the open file is the row's (an open file keeps its
	// content when another is renamed over it); if not, open the new one.
	var f io.ReadCloser
	var err error
	var rel string
	for attempt := 1; ; attempt++ {
		var perr error
		rel, perr = resolvePath(n.cfg.OS, row.Path)
		if perr != nil {
			n.log.Error("package row's path cannot be resolved on this node", "err", perr)
			writeError(w, http.StatusInternalServerError, "The package "+resID+" could not be read: "+perr.Error(), []string{perr.Error()})
			return
		}
		f, err = n.cfg.Packages.Open(r.Context(), rel)
		if err != nil {
			break
		}
		settled, serr := n.cfg.DB.SettledPackage(r.Context(), space, row.PackageID, row.Version)
		if serr == nil && settled == row {
			break
		}
		f.Close()
		switch {
		case errors.Is(serr, store.ErrNotFound):
			writeError(w, http.StatusNotFound, "The package "+resID+" does not exist.", nil)
			return
		case serr != nil:
			n.dbError(w, "reading package "+resID, serr)
			return
		case attempt == 5:
			writeError(w, http.StatusServiceUnavailable, "The package "+resID+" is being replaced; try again.", nil)
			return
		}
		row = settled
	}
	if errors.Is(err, blob.ErrNotExist) {
		n.log.Error("package row points to a missing file", "path", row.Path)
		writeError(w, http.StatusNotFound, "The package "+resID+" is recorded but its file is missing from the package store.", []string{row.Path})
		return
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, "The package store could not be read.", []string{err.Error()})
		return
	}
	defer f.Close()
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Length", strconv.FormatInt(row.Size, 10))
	h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": path.Base(rel)}))
	h.Set("X-Octoha-Hash", row.Hash)
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	if _, err := io.CopyBuffer(w, f, *bp); err != nil {
		n.log.Warn("download interrupted", "path", row.Path, "err", err)
	}
}

func (n *Node) listPackages(w http.ResponseWriter, r *http.Request, space string) {
	q := r.URL.Query()
	skip, take := paging(r, 30)
	pq := store.PackageQuery{SpaceID: space, PackageID: q.Get("nuGetPackageId"), Filter: q.Get("filter"), Skip: skip, Take: take}
	var rows []store.Package
	var total int
	var err error
	if latest, _ := strconv.ParseBool(q.Get("latest")); latest {
		// One row per package ID, its highest version.
		rows, err = n.allPackages(r, pq)
		rows = latestByID(rows)
		total, rows = len(rows), window(rows, skip, take)
	} else {
		rows, total, err = n.cfg.DB.ListPackages(r.Context(), pq)
	}
	if err != nil {
		n.dbError(w, "listing packages", err)
		return
	}
	items := make([]octopusapi.Package, 0, len(rows))
	for _, row := range rows {
		items = append(items, n.packageResource(row))
	}
	page := octopusapi.NewPage("Package", items, total, skip, take, octopusapi.PackagesPath(space))
	if take < total-skip { // skip+take < total, which could overflow
		// The next page of the same query.
		next := url.Values{}
		for _, k := range []string{"nuGetPackageId", "filter", "latest"} {
			if v := q.Get(k); v != "" {
				next.Set(k, v)
			}
		}
		next.Set("skip", strconv.Itoa(skip+take))
		next.Set("take", strconv.Itoa(take))
		page.Links["Page.Next"] = octopusapi.PackagesPath(space) + "?" + next.Encode()
	}
	writeJSON(w, http.StatusOK, page)
}

// deletePackage removes the row first and then, under the package's lock,
// its file if no row points to it any more (and the package's folder with
// its last version), so a row never points to a missing file.
func (n *Node) deletePackage(w http.ResponseWriter, r *http.Request, space, resID string) {
	row, ok := n.lookup(w, r, space, resID)
	if !ok {
		return
	}
	// Detached from the request, like publishing: a client that hangs up
	// must not leave the row deleted and the file in place.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), publishTimeout)
	defer cancel()
	err := n.cfg.DB.LockPackage(ctx, space, row.PackageID, func(ctx context.Context, tx *store.PackageTx) error {
		cur, err := tx.Package(ctx, row.Version)
		if err != nil {
			return err
		}
		row = cur
		return tx.Delete(ctx, row.Version)
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, "The package "+resID+" does not exist.", nil)
		return
	case err != nil:
		n.dbError(w, "deleting package "+resID, err)
		return
	}
	n.removeUnrecorded(ctx, space, row.PackageID, row.Path)
	writeJSON(w, http.StatusOK, map[string]any{})
}
