package node

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // Octopus identifies packages by SHA-1.
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/octoha/octoha/fakes/blob"
	"github.com/octoha/octoha/fakes/store"
	"github.com/octoha/octoha/octopusapi"
)

// TempDir is the directory of the Packages root where uploads are written
// before they are published under their final name. Temporary names are
// "<nodeID>_<random>.tmp", so any node can tell whose a leftover is.
const TempDir = ".octoha-tmp"

// publishTimeout bounds publishing a received upload (rename + row), which
// runs detached from the request so a client that hangs up after sending
// the whole body cannot leave a half-published package.
const publishTimeout = 30 * time.Second

// copyBlock is the size of the blocks uploads are written in, and of the
// download copy buffer.
const copyBlock = 1 << 20

// bodyBufferSize buffers an upload's body under the multipart reader.
const bodyBufferSize = 256 << 10

var copyBufs = sync.Pool{New: func() any { b := make([]byte, copyBlock); return &b }}

// overwriteMode reads overwriteMode (any case) or the legacy replace flag.
func overwriteMode(q url.Values) (string, error) {
	if m := q.Get("overwriteMode"); m != "" {
		for _, v := range []string{octopusapi.FailIfExists, octopusapi.OverwriteExisting, octopusapi.IgnoreIfExists} {
			if strings.EqualFold(m, v) {
				return v, nil
			}
		}
		return "", fmt.Errorf("overwriteMode %q is not one of %s, %s, %s", m, octopusapi.FailIfExists, octopusapi.OverwriteExisting, octopusapi.IgnoreIfExists)
	}
	if rep := q.Get("replace"); rep != "" {
		b, err := strconv.ParseBool(rep)
		if err != nil {
			return "", fmt.Errorf("replace %q is not true or false", rep)
		}
		if b {
			return octopusapi.OverwriteExisting, nil
		}
	}
	return octopusapi.FailIfExists, nil
}

// rawFileName returns a part's file name exactly as sent. multipart.Part's
// FileName applies filepath.Base, which would silently turn "../../x.zip"
// into "x.zip"; Octopus clients send base names, so anything else is an
// error the client should see.
func rawFileName(p *multipart.Part) string {
	_, params, err := mime.ParseMediaType(p.Header.Get("Content-Disposition"))
	if err != nil {
		return ""
	}
	return params["filename"]
}

// upload handles POST /api/{space}/packages/raw: the multipart body is
// streamed to a temporary file on the share with its hash computed on the
// way, published atomically under Octopus's path, and only then recorded
// in the database.
func (n *Node) upload(w http.ResponseWriter, r *http.Request, space string) {
	ctx := r.Context()
	mode, body, mr, part, ok := n.openUpload(w, r, space, "package")
	if !ok {
		return
	}
	defer body.stop()
	fileName := rawFileName(part)
	pf, err := octopusapi.ParseFileName(fileName)
	if err != nil {
		issue := octopusapi.IssueInvalidPackageID
		var fe *octopusapi.FileNameError
		if errors.As(err, &fe) {
			issue = fe.Issue
		}
		writeError(w, http.StatusBadRequest, "The package file name is not valid: "+err.Error(), []string{issue})
		return
	}
	// Stored under NuGet's normalised version, as Octopus stores it, so
	// 1.0.0, 1.0.0+meta and 01.0.0 are one package.
	pf.Version = octopusapi.NormalizeVersion(pf.Version)
	log := n.log.With("package", pf.ID, "version", pf.Version, "mode", mode)

	existing, err := n.cfg.DB.Package(ctx, space, pf.ID, pf.Version)
	exists := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		n.dbError(w, "checking for an existing package", err)
		return
	}
	if exists && mode == octopusapi.OverwriteExisting && !n.may(w, r, octopusapi.PermissionBuiltInFeedAdminister, space) {
		// Replacing needs more than pushing (Octopus: BuiltInFeedPush to
		// add, BuiltInFeedAdminister to replace).
		return
	}
	if exists && mode != octopusapi.OverwriteExisting {
		// Read the body to the end so the client sees our answer rather
		// than a reset while it is still sending.
		if _, err := io.Copy(io.Discard, body); err != nil {
			if body.stalled(err) {
				n.answerStall(w, log, 0)
			}
			return
		}
		n.answerExisting(w, mode, existing, log)
		return
	}

	tmp := path.Join(TempDir, n.cfg.ID+"_"+randomHex(8)+".tmp")
	n.uploads.add(tmp)
	handedOff := false // the unsafe mode's late publisher owns tmp
	defer func() {
		if !handedOff {
			n.uploads.remove(tmp)
		}
	}()
	fw, err := n.cfg.Packages.Create(ctx, tmp)
	if err != nil {
		log.Error("cannot create a temporary file in the package store", "err", err)
		writeError(w, http.StatusInternalServerError, "The package store could not be written to.", []string{err.Error()})
		return
	}
	h := sha1.New() //nolint:gosec
	n.receiving.Add(1)
	// One byte past the maximum is enough to refuse: the rest is never
	// written.
	size, werr, err := copyHashed(fw, h, io.LimitReader(part, n.cfg.MaxPackageSize+1))
	n.receiving.Add(-1)
	if err == nil && werr == nil && size > n.cfg.MaxPackageSize {
		_ = fw.Abort()
		log.Warn("upload refused: larger than the maximum package size; nothing was stored", "max", n.cfg.MaxPackageSize)
		w.Header().Set("Connection", "close") // the rest of the body is not read
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("The package is larger than this server's maximum package size of %d bytes. Nothing was stored.", n.cfg.MaxPackageSize), nil)
		return
	}
	if err == nil && werr == nil {
		err = drainParts(mr)
	}
	if err == nil && werr == nil {
		// The whole body is in: lift the deadline before publishing, or
		// net/http's watch for a client hang-up (a read on the idle
		// connection) would hit it while the publish waits for the lock.
		body.stop()
	}
	if err != nil || werr != nil {
		_ = fw.Abort()
		if body.stalled(err) {
			n.answerStall(w, log, size)
			return
		}
		if werr != nil {
			log.Error("writing the package to the store failed", "err", werr, "bytes", size)
			writeError(w, http.StatusInternalServerError, "The package could not be written to the package store.", []string{werr.Error()})
			return
		}
		log.Warn("upload body ended early; nothing was stored", "err", err, "bytes", size)
		writeError(w, http.StatusBadRequest, "The upload was incomplete.", []string{err.Error()})
		return
	}
	if size == 0 {
		_ = fw.Abort()
		writeError(w, http.StatusBadRequest, "The package file is empty.", []string{octopusapi.IssueEmptyFile})
		return
	}
	if err := fw.Close(); err != nil {
		_ = fw.Abort()
		log.Error("closing the package file failed", "err", err)
		writeError(w, http.StatusInternalServerError, "The package could not be written to the package store.", []string{err.Error()})
		return
	}
	row := store.Package{
		SpaceID: space, PackageID: pf.ID, Version: pf.Version, Extension: pf.Extension,
		Hash: hex.EncodeToString(h.Sum(nil)), Size: size, Path: pf.StorePath(space),
		Published: time.Now().UTC(), NodeID: n.cfg.ID,
	}
	if n.cfg.UnsafeAckBeforeStore {
		// Deliberately broken: acknowledge first, store later.
		log.Warn("UNSAFE: acknowledging the upload before it is stored", "delay", n.cfg.UnsafeStoreDelay)
		writeJSON(w, http.StatusCreated, n.packageResource(row))
		handedOff = true
		go func() {
			defer n.uploads.remove(tmp)
			t := time.NewTimer(n.cfg.UnsafeStoreDelay)
			defer t.Stop()
			<-t.C
			pctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
			defer cancel()
			if _, _, err := n.publish(pctx, tmp, row, mode); err != nil {
				log.Error("UNSAFE: late publish failed", "err", err)
			}
		}()
		return
	}
	n.publishAndAnswer(ctx, w, log, tmp, row, mode)
}

// publishAndAnswer publishes a complete temporary file as row (see
// publish) and answers the upload: 201 or 200 with the package, 409, or
// the error. Full and delta uploads end here alike.
func (n *Node) publishAndAnswer(ctx context.Context, w http.ResponseWriter, log *slog.Logger, tmp string, row store.Package, mode string) {
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishTimeout)
	defer cancel()
	status, stored, err := n.publish(pctx, tmp, row, mode)
	if err != nil {
		var pe *publishError
		if errors.As(err, &pe) && pe.status < 500 {
			log.Warn("upload refused", "status", pe.status, "err", err)
			errs := []string{err.Error()}
			if pe.status == http.StatusConflict {
				// As when the version was there before the body arrived.
				errs = []string{octopusapi.IssuePackageAlreadyExists}
			}
			writeError(w, pe.status, pe.msg, errs)
			return
		}
		if pe == nil {
			pe = &publishError{status: http.StatusInternalServerError, msg: "The package could not be stored.", err: err}
		}
		log.Error("publishing the package failed", "status", pe.status, "err", err)
		writeError(w, pe.status, pe.msg, []string{err.Error()})
		return
	}
	log.Info("package stored", "status", status, "bytes", row.Size, "hash", row.Hash)
	writeJSON(w, status, n.packageResource(stored))
}

// openUpload is how every upload (full or delta) starts: the caller's push
// permission, the overwrite mode, and the multipart body's file part, read
// through the stall guard. When ok is false the answer is written; when it
// is true the caller stops body once done. what names the part in errors.
func (n *Node) openUpload(w http.ResponseWriter, r *http.Request, space, what string) (mode string, body *stallReader, mr *multipart.Reader, part *multipart.Part, ok bool) {
	if !n.mayPush(w, r, space) {
		return "", nil, nil, nil, false
	}
	mode, err := overwriteMode(r.URL.Query())
	if err != nil {
		writeError(w, http.StatusBadRequest, "Invalid upload options.", []string{err.Error()})
		return "", nil, nil, nil, false
	}
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		writeError(w, http.StatusBadRequest, "The "+what+" must be sent as multipart/form-data with a file part.", nil)
		return "", nil, nil, nil, false
	}
	// A client that stops sending must not hold this goroutine and a
	// temporary file forever: each read of the body may wait at most
	// UploadStallTimeout for a byte.
	body = n.stallGuard(w, r)
	// mime/multipart reads through a 4 KiB buffer; a large one underneath
	// turns a gigabyte upload into a few thousand read syscalls instead of
	// a quarter of a million.
	mr = multipart.NewReader(bufio.NewReaderSize(body, bodyBufferSize), params["boundary"])
	part, ok = n.filePart(w, mr, body)
	if !ok {
		body.stop()
		return "", nil, nil, nil, false
	}
	return mode, body, mr, part, true
}

// filePart returns the multipart body's first part with a file name
// (any field name; other fields are skipped), or answers the error.
func (n *Node) filePart(w http.ResponseWriter, mr *multipart.Reader, body *stallReader) (*multipart.Part, bool) {
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			writeError(w, http.StatusBadRequest, "No package file was found in the request.", []string{octopusapi.IssueEmptyFile})
			return nil, false
		}
		if body.stalled(err) {
			n.answerStall(w, n.log, 0)
			return nil, false
		}
		if err != nil {
			writeError(w, http.StatusBadRequest, "The multipart body could not be read.", []string{err.Error()})
			return nil, false
		}
		if rawFileName(p) != "" {
			return p, true
		}
		if _, err := io.Copy(io.Discard, p); err != nil {
			writeError(w, http.StatusBadRequest, "The multipart body could not be read.", []string{err.Error()})
			return nil, false
		}
	}
}

// stallReader is an upload's body whose every read must see a byte within
// the stall timeout: it moves the connection's read deadline forward before
// each read, so it bounds silence, never the length of an upload.
type stallReader struct {
	body    io.Reader
	rc      *http.ResponseController
	timeout time.Duration
	guarded bool // the connection supports read deadlines
	expired bool // a read hit the deadline
}

func (n *Node) stallGuard(w http.ResponseWriter, r *http.Request) *stallReader {
	s := &stallReader{body: bareBody(r.Body), rc: http.NewResponseController(w), timeout: n.cfg.UploadStallTimeout}
	if err := s.rc.SetReadDeadline(time.Now().Add(s.timeout)); err == nil {
		s.guarded = true
	} else {
		n.log.Debug("upload stall timeout not enforced on this connection", "err", err)
	}
	return s
}

func (s *stallReader) Read(p []byte) (int, error) {
	if s.guarded {
		_ = s.rc.SetReadDeadline(time.Now().Add(s.timeout))
	}
	c, err := s.body.Read(p)
	if s.guarded && errors.Is(err, os.ErrDeadlineExceeded) {
		s.expired = true
	}
	return c, err
}

// stop lifts the deadline, so answering (and the connection's next request)
// is not cut short by it.
func (s *stallReader) stop() {
	if s.guarded {
		_ = s.rc.SetReadDeadline(time.Time{})
	}
}

// stalled reports whether the body stalled: a read hit the deadline. It is
// asked whatever the error at hand, since net/http cancels the request's
// context when the read fails, and the store's write may report that first.
func (s *stallReader) stalled(error) bool { return s.expired }

// answerStall logs and answers an upload aborted for silence; its temporary
// file has been removed by then.
func (n *Node) answerStall(w http.ResponseWriter, log *slog.Logger, received int64) {
	log.Warn("upload stalled: no body byte within the stall timeout; aborted and its temporary file removed",
		"timeout", n.cfg.UploadStallTimeout, "bytes", received)
	w.Header().Set("Connection", "close")
	writeError(w, http.StatusRequestTimeout, fmt.Sprintf("The upload sent nothing for %v and was aborted.", n.cfg.UploadStallTimeout), nil)
}

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

func conflictMessage(row store.Package) string {
	return fmt.Sprintf("The package %s version %s already exists in the built-in feed. Use overwriteMode=OverwriteExisting to replace it.", row.PackageID, row.Version)
}

func (n *Node) answerExisting(w http.ResponseWriter, mode string, existing store.Package, log interface{ Info(string, ...any) }) {
	if mode == octopusapi.IgnoreIfExists {
		log.Info("package exists: ignored")
		writeJSON(w, http.StatusOK, n.packageResource(existing))
		return
	}
	log.Info("package exists: refused")
	writeError(w, http.StatusConflict, conflictMessage(existing), []string{octopusapi.IssuePackageAlreadyExists})
}

// copyHashed copies src to dst and into h in blocks of copyBlock bytes
// (a multipart part yields at most 4 KiB per Read; writing each as it comes
// would cost a syscall or an SMB round trip per 4 KiB). It tells a failing
// store (werr) apart from a client that went away (rerr).
func copyHashed(dst io.Writer, h hash.Hash, src io.Reader) (n int64, werr, rerr error) {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	for {
		filled := 0
		for filled < len(buf) && rerr == nil {
			var c int
			c, rerr = src.Read(buf[filled:])
			filled += c
		}
		if filled > 0 {
			h.Write(buf[:filled])
			if _, werr = dst.Write(buf[:filled]); werr != nil {
				return n, werr, nil
			}
			n += int64(filled)
		}
		if errors.Is(rerr, io.EOF) {
			return n, nil, nil
		}
		if rerr != nil {
			return n, nil, rerr
		}
	}
}

// drainParts reads any parts after the file to the closing boundary, so an
// upload is only complete when the whole body arrived.
func drainParts(mr *multipart.Reader) error {
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if _, err := io.Copy(io.Discard, p); err != nil {
			return err
		}
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

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
