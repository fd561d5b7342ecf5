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
	pf, ok := parseUploadName(w, part)
	if !ok {
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
	if exists && n.uploadOfExisting(w, r, space, mode, body, existing, log) {
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
		handedOff = true
		n.ackBeforeStore(w, log, tmp, row, mode)
		return
	}
	n.publishAndAnswer(ctx, w, log, tmp, row, mode)
}

// parseUploadName reads the package ID, version and extension from the
// file part's name, answering 400 with Octopus's issue code when it is
// not a package file name.
func parseUploadName(w http.ResponseWriter, part *multipart.Part) (octopusapi.PackageFile, bool) {
	pf, err := octopusapi.ParseFileName(rawFileName(part))
	if err != nil {
		issue := octopusapi.IssueInvalidPackageID
		var fe *octopusapi.FileNameError
		if errors.As(err, &fe) {
			issue = fe.Issue
		}
		writeError(w, http.StatusBadRequest, "The package file name is not valid: "+err.Error(), []string{issue})
		return pf, false
	}
	return pf, true
}

// uploadOfExisting handles an upload of a version that exists already:
// replacing it (OverwriteExisting) needs more than pushing (Octopus:
// BuiltInFeedPush to add, BuiltInFeedAdminister to replace); otherwise the
// body is read to its end, so the client sees the answer rather than a
// reset while still sending, and the answer is 409 or 200. It reports
// whether the upload has been answered.
func (n *Node) uploadOfExisting(w http.ResponseWriter, r *http.Request, space, mode string, body *stallReader, existing store.Package, log *slog.Logger) bool {
	if mode == octopusapi.OverwriteExisting {
		return !n.may(w, r, octopusapi.PermissionBuiltInFeedAdminister, space)
	}
	if _, err := io.Copy(io.Discard, body); err != nil {
		if body.stalled(err) {
			n.answerStall(w, log, 0)
		}
		return true
	}
	n.answerExisting(w, mode, existing, log)
	return true
}

// ackBeforeStore is the deliberately broken node: it acknowledges the
// upload first and publishes it only after UnsafeStoreDelay, in the
// background, which then owns tmp.
func (n *Node) ackBeforeStore(w http.ResponseWriter, log *slog.Logger, tmp string, row store.Package, mode string) {
	log.Warn("UNSAFE: acknowledging the upload before it is stored", "delay", n.cfg.UnsafeStoreDelay)
	writeJSON(w, http.StatusCreated, n.packageResource(row))
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
