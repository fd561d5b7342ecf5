package node

import (
	"bufio"
	"context"
	"crypto/sha1" //nolint:gosec // Octopus and Octodiff identify files by SHA-1.
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/OctopusDeploy/go-octodiff/pkg/octodiff"

	"github.com/octoha/octoha/fakes/blob"
	"github.com/octoha/octoha/fakes/store"
	"github.com/octoha/octoha/octopusapi"
)

// Delta-compressed uploads, as Octopus Server offers them to the official
// clients: GET .../delta-signature answers the Octodiff signature of the
// nearest earlier version, and POST .../{baseVersion}/delta takes an
// Octodiff delta, patches it onto that version into a temporary file on
// the share and publishes the result exactly as a full upload is
// published. Everything streams: neither the base, the delta nor the
// result is ever held in memory.

// HeaderSignature says whether a signature was served from the cache next
// to the package ("cached") or computed for this request ("computed"). An
// octoha extension, like HeaderNode.
const HeaderSignature = "X-Octoha-Signature"

// signatureTimeout bounds computing one signature (about 4 s per GiB
// here).
const signatureTimeout = 10 * time.Minute

// deltaStatus is a delta request's answer other than success.
type deltaStatus struct {
	status int
	msg    string
	err    error
}

func (e *deltaStatus) Error() string { return e.msg + ": " + e.err.Error() }
func (e *deltaStatus) Unwrap() error { return e.err }

// nearestEarlier returns the highest version of packageID below version.
func (n *Node) nearestEarlier(ctx context.Context, space, packageID, version string) (store.Package, error) {
	rows, _, err := n.cfg.DB.ListPackages(ctx, store.PackageQuery{SpaceID: space, PackageID: packageID})
	if err != nil {
		return store.Package{}, err
	}
	var best store.Package
	found := false
	for _, row := range rows {
		if store.ComparePrecedence(row.Version, version) >= 0 {
			continue
		}
		if !found || store.CompareVersions(row.Version, best.Version) > 0 {
			best, found = row, true
		}
	}
	if !found {
		return best, store.ErrNotFound
	}
	return best, nil
}

// deltaSignature handles GET /api/{space}/packages/{id}/{version}/delta-signature.
func (n *Node) deltaSignature(w http.ResponseWriter, r *http.Request, space, packageID, version string) {
	if !octopusapi.ValidPackageID(packageID) || !octopusapi.ValidVersion(version) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("%q %q is not a valid package ID and version.", packageID, version), nil)
		return
	}
	base, err := n.nearestEarlier(r.Context(), space, packageID, version)
	if errors.Is(err, store.ErrNotFound) {
		// The one answer on which the official clients fall back to a
		// full upload.
		writeError(w, http.StatusNotFound, "No earlier version of package "+packageID+" than "+version+" is available to build a delta from.", []string{"No previous versions available"})
		return
	}
	if err != nil {
		n.dbError(w, "looking for an earlier version of "+packageID, err)
		return
	}
	log := n.log.With("package", base.PackageID, "base", base.Version)
	// The cache's name follows the stored path, so the janitor keeps it
	// with its package; both resolve only on a node of the OS that wrote
	// them.
	cache, err := resolvePath(n.cfg.OS, octopusapi.SignatureCachePath(base.Path, base.Hash))
	if err != nil {
		writeError(w, http.StatusInternalServerError, "The signature of "+base.PackageID+" "+base.Version+" could not be read: "+err.Error(), []string{err.Error()})
		return
	}
	how := "cached"
	if _, err := n.cfg.Packages.Stat(r.Context(), cache); err != nil {
		if !errors.Is(err, blob.ErrNotExist) {
			writeError(w, http.StatusInternalServerError, "The package store could not be read.", []string{err.Error()})
			return
		}
		// One computation per signature at a time in this process; the
		// others wait for it and read the cache it leaves.
		_, err, _ = n.sigFlight.Do(cache, func() (any, error) {
			// Detached from this request (others may be waiting for the
			// result) but bounded, so a frozen share cannot hold it
			// forever.
			ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), signatureTimeout)
			defer cancel()
			return nil, n.buildSignature(ctx, base, cache, log)
		})
		var ds *deltaStatus
		if errors.As(err, &ds) {
			log.Warn("delta signature refused", "status", ds.status, "err", err)
			writeError(w, ds.status, ds.msg, []string{ds.err.Error()})
			return
		}
		if err != nil {
			log.Error("computing a delta signature failed", "err", err)
			writeError(w, http.StatusInternalServerError, "The signature of "+base.PackageID+" "+base.Version+" could not be computed.", []string{err.Error()})
			return
		}
		how = "computed"
	}
	f, err := n.cfg.Packages.Open(r.Context(), cache)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "The cached signature could not be read.", []string{err.Error()})
		return
	}
	defer f.Close()
	size, err := seekSize(f)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "The cached signature could not be read.", []string{err.Error()})
		return
	}
	// {"Signature":"<base64>","BaseVersion":"..."}, the base64 streamed
	// from the cache file.
	ver, _ := json.Marshal(base.Version)
	head, tail := `{"Signature":"`, `","BaseVersion":`+string(ver)+`}`
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.FormatInt(int64(len(head))+int64(base64.StdEncoding.EncodedLen(int(size)))+int64(len(tail)), 10))
	h.Set(HeaderSignature, how)
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	_, _ = bw.WriteString(head)
	enc := base64.NewEncoder(base64.StdEncoding, bw)
	if _, err := io.Copy(enc, f); err != nil {
		log.Warn("sending a delta signature was interrupted", "err", err)
		return
	}
	_ = enc.Close()
	_, _ = bw.WriteString(tail)
	if err := bw.Flush(); err != nil {
		log.Debug("sending a delta signature was interrupted", "err", err)
		return
	}
	log.Info("delta signature sent", "how", how, "bytes", size)
}

// buildSignature computes base's Octodiff signature into a temporary file,
// reading the base once and checking its size and SHA-1 against its row on
// the way, and publishes it at cache while the package's row still
// describes that file.
func (n *Node) buildSignature(ctx context.Context, base store.Package, cache string, log *slog.Logger) error {
	start := time.Now()
	rel, err := resolvePath(n.cfg.OS, base.Path)
	if err != nil {
		return err
	}
	f, err := n.cfg.Packages.Open(ctx, rel)
	if errors.Is(err, blob.ErrNotExist) {
		return &deltaStatus{http.StatusConflict, "The file of " + base.PackageID + " " + base.Version + " is missing from the package store; upload the full package", err}
	}
	if err != nil {
		return fmt.Errorf("open %s: %w", base.Path, err)
	}
	defer f.Close()
	tmp := path.Join(TempDir, n.cfg.ID+"_"+randomHex(8)+".tmp")
	n.uploads.add(tmp)
	defer n.uploads.remove(tmp)
	fw, err := n.cfg.Packages.Create(ctx, tmp)
	if err != nil {
		return fmt.Errorf("create %s: %w", tmp, err)
	}
	sum := sha1.New() //nolint:gosec
	in := &countingReader{r: io.TeeReader(bufio.NewReaderSize(f, copyBlock), sum)}
	out := bufio.NewWriterSize(fw, copyBlock)
	sb := octodiff.NewSignatureBuilder()
	err = sb.Build(in, base.Size, out)
	if err == nil {
		err = out.Flush()
	}
	if err != nil {
		_ = fw.Abort()
		return fmt.Errorf("signature of %s: %w", base.Path, err)
	}
	if got := hex.EncodeToString(sum.Sum(nil)); in.n != base.Size || got != strings.ToLower(base.Hash) {
		_ = fw.Abort()
		return &deltaStatus{http.StatusConflict, fmt.Sprintf("The stored file of %s %s is corrupt (%d bytes with SHA-1 %s, recorded as %d bytes with SHA-1 %s); upload the full package",
			base.PackageID, base.Version, in.n, got, base.Size, base.Hash), errors.New("base file does not match its row")}
	}
	if err := fw.Close(); err != nil {
		_ = fw.Abort()
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	n.sigComputed.Add(1)
	pctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	published := false
	err = n.cfg.DB.LockPackage(pctx, base.SpaceID, base.PackageID, func(ctx context.Context, tx *store.PackageTx) error {
		cur, err := tx.Package(ctx, base.Version)
		if err != nil {
			return err
		}
		if cur.Path != base.Path || !strings.EqualFold(cur.Hash, base.Hash) {
			return &deltaStatus{http.StatusConflict, base.PackageID + " " + base.Version + " was replaced while its signature was computed; try again", errors.New("base replaced")}
		}
		if err := n.cfg.Packages.Publish(ctx, tmp, cache, true); err != nil {
			return fmt.Errorf("publish %s: %w", cache, err)
		}
		published = true
		return nil
	})
	if !published {
		_ = n.cfg.Packages.Remove(pctx, tmp)
	}
	if errors.Is(err, store.ErrNotFound) {
		return &deltaStatus{http.StatusConflict, base.PackageID + " " + base.Version + " was deleted while its signature was computed; try again", err}
	}
	if err != nil {
		return err
	}
	log.Info("delta signature computed and cached", "cache", cache, "bytes", in.n, "took", time.Since(start))
	return nil
}

// deltaUpload handles POST /api/{space}/packages/{id}/{baseVersion}/delta:
// the multipart file part is an Octodiff delta named as the new package.
func (n *Node) deltaUpload(w http.ResponseWriter, r *http.Request, space, packageID, baseVersion string) {
	ctx := r.Context()
	mode, body, mr, part, ok := n.openUpload(w, r, space, "delta")
	if !ok {
		return
	}
	defer body.stop()
	pf, err := octopusapi.ParseFileName(rawFileName(part))
	if err != nil {
		writeError(w, http.StatusBadRequest, "The package file name is not valid: "+err.Error(), nil)
		return
	}
	pf.Version = octopusapi.NormalizeVersion(pf.Version) // as a full upload's
	baseVersion = octopusapi.NormalizeVersion(baseVersion)
	log := n.log.With("package", pf.ID, "version", pf.Version, "base", baseVersion, "mode", mode, "delta", true)
	// refuse answers before the delta is applied, having read the body to
	// its end so the client sees the answer rather than a reset.
	refuse := func(status int, msg string, errs ...string) {
		if _, err := io.Copy(io.Discard, body); err != nil {
			if body.stalled(err) {
				n.answerStall(w, log, 0)
			}
			return
		}
		log.Warn("delta upload refused", "status", status, "msg", msg)
		writeError(w, status, msg, errs)
	}
	if !strings.EqualFold(pf.ID, packageID) {
		refuse(http.StatusBadRequest, fmt.Sprintf("The delta is for package %s but was posted to the delta endpoint of %s.", pf.ID, packageID))
		return
	}
	if store.ComparePrecedence(baseVersion, pf.Version) == 0 {
		refuse(http.StatusBadRequest, "A delta cannot be built against the version it creates.")
		return
	}
	base, err := n.cfg.DB.Package(ctx, space, packageID, baseVersion)
	if errors.Is(err, store.ErrNotFound) {
		refuse(http.StatusNotFound, fmt.Sprintf("The base version %s of package %s does not exist, so the delta cannot be applied; upload the full package.", baseVersion, packageID))
		return
	}
	if err != nil {
		n.dbError(w, "reading the base package", err)
		return
	}
	existing, err := n.cfg.DB.Package(ctx, space, pf.ID, pf.Version)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		n.dbError(w, "checking for an existing package", err)
		return
	}
	if err == nil && n.uploadOfExisting(w, r, space, mode, body, existing, log) {
		return
	}
	baseRel, err := resolvePath(n.cfg.OS, base.Path)
	if err != nil {
		refuse(http.StatusInternalServerError, "The base version's file could not be read: "+err.Error(), base.Path)
		return
	}
	bf, err := n.cfg.Packages.Open(ctx, baseRel)
	if errors.Is(err, blob.ErrNotExist) {
		refuse(http.StatusConflict, fmt.Sprintf("The file of base version %s of %s is missing from the package store; upload the full package.", base.Version, base.PackageID), base.Path)
		return
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, "The package store could not be read.", []string{err.Error()})
		return
	}
	defer bf.Close()
	baseFile, ok := bf.(io.ReadSeeker)
	if !ok {
		writeError(w, http.StatusInternalServerError, "The package store cannot seek in the base file.", nil)
		return
	}
	if size, err := seekSize(baseFile); err != nil || size != base.Size {
		refuse(http.StatusConflict, fmt.Sprintf("The stored file of base version %s of %s is corrupt (%d bytes, recorded as %d); upload the full package.", base.Version, base.PackageID, size, base.Size))
		return
	}

	tmp := path.Join(TempDir, n.cfg.ID+"_"+randomHex(8)+".tmp")
	n.uploads.add(tmp)
	defer n.uploads.remove(tmp)
	fw, err := n.cfg.Packages.Create(ctx, tmp)
	if err != nil {
		log.Error("cannot create a temporary file in the package store", "err", err)
		writeError(w, http.StatusInternalServerError, "The package store could not be written to.", []string{err.Error()})
		return
	}
	n.receiving.Add(1)
	res, perr := n.patch(baseFile, base.Size, part, fw, n.deltaLimits(base.Size))
	n.receiving.Add(-1)
	if perr == nil {
		perr = drainParts(mr)
		if perr != nil {
			perr = &deltaStatus{http.StatusBadRequest, "The upload was incomplete.", perr}
		}
	}
	if perr == nil {
		body.stop()
	}
	if perr != nil {
		_ = fw.Abort()
		n.answerPatchError(w, log, body, perr, res)
		return
	}
	if err := fw.Close(); err != nil {
		_ = fw.Abort()
		log.Error("closing the package file failed", "err", err)
		writeError(w, http.StatusInternalServerError, "The package could not be written to the package store.", []string{err.Error()})
		return
	}
	log.Info("delta applied", "deltaBytes", res.read, "bytes", res.size, "hash", res.hash)
	row := store.Package{
		SpaceID: space, PackageID: pf.ID, Version: pf.Version, Extension: pf.Extension,
		Hash: res.hash, Size: res.size, Path: pf.StorePath(space),
		Published: time.Now().UTC(), NodeID: n.cfg.ID,
	}
	n.publishAndAnswer(ctx, w, log, tmp, row, mode)
}

// answerPatchError answers a delta that could not be applied: a stalled
// client, a refusal (413 closes the connection: the rest of the body is not
// read) or a store that could not be written; nothing was stored.
func (n *Node) answerPatchError(w http.ResponseWriter, log *slog.Logger, body *stallReader, perr error, res patchResult) {
	var ds *deltaStatus
	switch {
	case body.stalled(perr):
		n.answerStall(w, log, res.read)
	case errors.As(perr, &ds):
		if ds.status == http.StatusRequestEntityTooLarge {
			// The rest of the body is not read.
			w.Header().Set("Connection", "close")
		}
		log.Warn("delta upload refused; nothing was stored", "status", ds.status, "err", perr, "deltaBytes", res.read, "bytesWritten", res.size)
		writeError(w, ds.status, ds.msg, []string{ds.err.Error()})
	default:
		log.Error("writing the patched package to the store failed", "err", perr)
		writeError(w, http.StatusInternalServerError, "The package could not be written to the package store.", []string{perr.Error()})
	}
}

// deltaLimits are the bounds on what one delta may produce, enforced
// while it is applied: a delta is 17 bytes per copy command, so without
// them a few kilobytes can make the node write without end before the
// SHA-1 check at the end gives the delta away.
type deltaLimits struct {
	maxSize   int64 // the patched package's size
	maxCopied int64 // bytes copied from the base, all commands together
}

func (n *Node) deltaLimits(baseSize int64) deltaLimits {
	l := deltaLimits{maxSize: n.cfg.MaxPackageSize, maxCopied: n.cfg.MaxPackageSize}
	if baseSize <= l.maxCopied/DeltaCopyFactor {
		l.maxCopied = baseSize * DeltaCopyFactor
	}
	return l
}

// tooLarge is the refusal of a delta that would exceed lim.
func tooLarge(msg string, err error) *deltaStatus {
	return &deltaStatus{http.StatusRequestEntityTooLarge, msg + " Nothing was stored; upload the full package.", err}
}

// patchResult describes an applied delta.
type patchResult struct {
	read int64  // delta bytes read
	size int64  // bytes of the patched package
	hash string // its SHA-1, lower-case hex
}

// errWrite marks a failure of the package store (a 5xx), as opposed to a
// bad or incomplete delta (a 4xx).
type errWrite struct{ err error }

func (e *errWrite) Error() string { return e.err.Error() }
func (e *errWrite) Unwrap() error { return e.err }

// patch applies the Octodiff delta read from delta to base (baseSize
// bytes) and writes the result to out, in blocks of copyBlock bytes. The
// result's SHA-1 must be the one the delta names. Errors: *deltaStatus for
// a delta that is malformed, incomplete, does not fit the base or does not
// produce the package it describes; *errWrite for a failing store;
// anything else from reading the base.
//
// The output is bounded by lim while it is written: a command that would
// take the package past lim.maxSize, or the copies past lim.maxCopied, is
// refused (413) before any of its bytes are written.
func (n *Node) patch(base io.ReadSeeker, baseSize int64, delta io.Reader, out io.Writer, lim deltaLimits) (patchResult, error) {
	var res patchResult
	rec := &countingReader{r: delta}
	dr := octodiff.NewBinaryDeltaReader(fullReader{bufio.NewReaderSize(rec, bodyBufferSize)})
	bad := func(msg string, err error) error {
		if rec.err != nil && !errors.Is(rec.err, io.EOF) {
			// The body broke off: the cause, not a symptom.
			return &deltaStatus{http.StatusBadRequest, "The upload was incomplete.", rec.err}
		}
		return &deltaStatus{http.StatusBadRequest, msg, err}
	}
	want, err := dr.ExpectedHash()
	if err != nil {
		return res, bad("The file is not an Octodiff delta.", err)
	}
	sum := sha1.New() //nolint:gosec
	hw := &hashWriter{w: out, h: sum}
	bw := bufio.NewWriterSize(hw, copyBlock)
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	pos := int64(-1) // base's read position, to skip needless seeks
	var rangeErr error
	var bound *deltaStatus
	var produced, copied int64 // bytes handed to bw, and of them copied
	err = dr.Apply(
		func(b []byte) error {
			if int64(len(b)) > lim.maxSize-produced {
				bound = tooLarge(fmt.Sprintf("The delta would produce a package larger than this server's maximum package size of %d bytes.", lim.maxSize),
					fmt.Errorf("a data command of %d bytes after %d bytes of output", len(b), produced))
				return bound
			}
			produced += int64(len(b))
			_, err := bw.Write(b)
			return err
		},
		func(off, length int64) error {
			if off < 0 || length <= 0 || off > baseSize || length > baseSize-off {
				rangeErr = fmt.Errorf("copy of %d bytes at %d from a base of %d bytes", length, off, baseSize)
				return rangeErr
			}
			switch {
			case length > lim.maxSize-produced:
				bound = tooLarge(fmt.Sprintf("The delta would produce a package larger than this server's maximum package size of %d bytes.", lim.maxSize),
					fmt.Errorf("a copy of %d bytes after %d bytes of output", length, produced))
			case length > lim.maxCopied-copied:
				bound = tooLarge(fmt.Sprintf("The delta copies more than %d bytes from its base of %d bytes (at most %d times the base's size); a delta built by an Octopus client copies each part of its base about once.", lim.maxCopied, baseSize, DeltaCopyFactor),
					fmt.Errorf("a copy of %d bytes after %d bytes copied", length, copied))
			}
			if bound != nil {
				return bound
			}
			produced += length
			copied += length
			if off != pos {
				if _, err := base.Seek(off, io.SeekStart); err != nil {
					return &baseError{fmt.Errorf("seek base to %d: %w", off, err)}
				}
			}
			c, err := io.CopyBuffer(bw, io.LimitReader(base, length), *bp)
			pos = off + c
			switch {
			case hw.err != nil:
				return err
			case err != nil:
				return &baseError{err}
			case c != length:
				return &baseError{fmt.Errorf("base ended at %d, %d bytes short of a copy", pos, length-c)}
			}
			return nil
		})
	if err == nil {
		err = bw.Flush()
	}
	res.read, res.size = rec.n, hw.n
	var be *baseError
	switch {
	case hw.err != nil:
		return res, &errWrite{hw.err}
	case bound != nil:
		return res, bound
	case rangeErr != nil:
		return res, &deltaStatus{http.StatusConflict, "The delta does not fit the base version on the server (it was built against another file); upload the full package.", rangeErr}
	case rec.err != nil && !errors.Is(rec.err, io.EOF):
		return res, bad("", nil)
	case errors.As(err, &be):
		return res, fmt.Errorf("read the base: %w", be.err)
	case err != nil:
		return res, bad("The delta is malformed.", err)
	}
	res.hash = hex.EncodeToString(sum.Sum(nil))
	if !strings.EqualFold(res.hash, hex.EncodeToString(want)) {
		return res, &deltaStatus{http.StatusConflict,
			fmt.Sprintf("The package patched from the base version has SHA-1 %s, but the delta describes a package with SHA-1 %x: the base on the server is not the file the delta was built against (corrupt or replaced), or the delta is damaged. Nothing was stored; upload the full package.", res.hash, want),
			errors.New("patched package hash mismatch")}
	}
	if res.size == 0 {
		return res, &deltaStatus{http.StatusBadRequest, "The patched package is empty.", errors.New(octopusapi.IssueEmptyFile)}
	}
	return res, nil
}

// baseError is a failure to read the base file.
type baseError struct{ err error }

func (e *baseError) Error() string { return e.err.Error() }

// fullReader fills each Read completely unless the stream ends: Octodiff's
// delta reader takes one Read of a header or a command for the whole of
// it, which a network stream need not give.
type fullReader struct{ r io.Reader }

func (f fullReader) Read(p []byte) (int, error) { return io.ReadFull(f.r, p) }

// countingReader counts bytes and remembers the first error.
type countingReader struct {
	r   io.Reader
	n   int64
	err error
}

func (c *countingReader) Read(p []byte) (int, error) {
	k, err := c.r.Read(p)
	c.n += int64(k)
	if err != nil && c.err == nil {
		c.err = err
	}
	return k, err
}

// hashWriter writes through to w and into h, counting, and remembers the
// first write error.
type hashWriter struct {
	w   io.Writer
	h   hash.Hash
	n   int64
	err error
}

func (hw *hashWriter) Write(p []byte) (int, error) {
	k, err := hw.w.Write(p)
	hw.h.Write(p[:k])
	hw.n += int64(k)
	if err != nil && hw.err == nil {
		hw.err = err
	}
	return k, err
}

// seekSize returns a seekable file's size and rewinds it.
func seekSize(f io.Reader) (int64, error) {
	s, ok := f.(io.Seeker)
	if !ok {
		return 0, errors.New("not seekable")
	}
	size, err := s.Seek(0, io.SeekEnd)
	if err != nil {
		return 0, err
	}
	_, err = s.Seek(0, io.SeekStart)
	return size, err
}
