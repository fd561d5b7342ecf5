package traffic

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
	"golang.org/x/time/rate"

	"github.com/octoha/octoha/harness/history"
	"github.com/octoha/octoha/harness/payload"
	"github.com/octoha/octoha/internal/redact"
	"github.com/octoha/octoha/octopusapi"
)

// genBuf is the size of each generated block written into the pipe, and of
// the chunks the transport sends (see pipeBody.WriteTo).
const genBuf = 256 << 10

// errAttemptOver unblocks the body writer once the attempt has a response.
var errAttemptOver = errors.New("attempt finished before the body was sent")

// attemptResult is one HTTP attempt at uploading one package.
type attemptResult struct {
	n          int
	opID       string
	seq        uint64
	start, end time.Time
	status     int
	node       string
	header     http.Header
	respBody   []byte
	bodyBytes  int64 // request body bytes the transport took
	sentAll    bool  // the whole multipart body was taken
	outcome    history.Outcome
	err        error
	note       string
	// verdict is what this attempt says about the package; retry says
	// whether another attempt may help.
	verdict history.Outcome
	retry   bool
}

// pipeBody is the request body: the read end of the pipe the multipart
// writer feeds. Its WriteTo lets the transport send big chunks (one per
// generated block) instead of io.Copy's 32 KiB ones, and both paths count
// the bytes the transport took.
type pipeBody struct {
	pr *io.PipeReader
	n  *atomic.Int64
}

func (b pipeBody) Read(p []byte) (int, error) {
	n, err := b.pr.Read(p)
	b.n.Add(int64(n))
	return n, err
}

func (b pipeBody) WriteTo(w io.Writer) (int64, error) {
	buf := make([]byte, genBuf+4096)
	var total int64
	for {
		n, err := b.pr.Read(buf)
		if n > 0 {
			m, werr := w.Write(buf[:n])
			total += int64(m)
			b.n.Add(int64(m))
			if werr != nil {
				return total, werr
			}
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

func (b pipeBody) Close() error { return b.pr.Close() }

// limiter paces one attempt's body at opts.Rate (nil: unpaced). The burst
// is small (at most 64 KiB, a twentieth of a second's worth) so the pace is
// even at the scale of the load balancer's timeouts.
func (u *uploader) limiter() *rate.Limiter {
	if u.opts.Rate <= 0 {
		return nil
	}
	burst := int(max(1, min(64<<10, u.opts.Rate/20)))
	return rate.NewLimiter(rate.Limit(u.opts.Rate), burst)
}

// writeBody writes the multipart body into pw: one part, field "file",
// filename "<ID>.<Version><ext>", as the Octopus CLI sends it. It hashes the
// payload on the way unless h is nil (the hash is known: the bytes are a
// function of the spec) and reports payload progress.
func writeBody(ctx context.Context, pw *io.PipeWriter, mw *multipart.Writer, spec payload.Spec, h hash.Hash, progress *atomic.Int64, lim *rate.Limiter) error {
	var r io.Reader = spec.Reader()
	if h != nil {
		r = io.TeeReader(r, h)
	}
	return writePart(ctx, pw, mw, spec, r, progress, lim)
}

// writeDeltaBody is writeBody for a delta upload: the part is the delta
// file, under the new package's file name.
func writeDeltaBody(ctx context.Context, pw *io.PipeWriter, mw *multipart.Writer, spec payload.Spec, path string, progress *atomic.Int64, lim *rate.Limiter) error {
	f, err := os.Open(path)
	if err != nil {
		err = fmt.Errorf("open the delta: %w", err)
		pw.CloseWithError(err)
		return err
	}
	defer f.Close()
	return writePart(ctx, pw, mw, spec, f, progress, lim)
}

// writePart writes r as the body's one file part and closes the body. A
// slow client (lim set): each chunk, at most the burst, waits for its
// tokens before it is written.
func writePart(ctx context.Context, pw *io.PipeWriter, mw *multipart.Writer, spec payload.Spec, r io.Reader, progress *atomic.Int64, lim *rate.Limiter) error {
	fail := func(err error) error {
		pw.CloseWithError(err)
		return err
	}
	hdr := textproto.MIMEHeader{}
	hdr.Set("Content-Disposition", `form-data; name="file"; filename="`+quoteEscaper.Replace(spec.FileName())+`"`)
	hdr.Set("Content-Type", "application/octet-stream")
	part, err := mw.CreatePart(hdr)
	if err != nil {
		return fail(err)
	}
	buf := make([]byte, genBuf)
	for {
		n, rerr := r.Read(buf)
		for chunk := buf[:n]; len(chunk) > 0; {
			m := len(chunk)
			if lim != nil {
				m = min(m, lim.Burst())
				if err := lim.WaitN(ctx, m); err != nil {
					return fail(err)
				}
			}
			if _, err := part.Write(chunk[:m]); err != nil {
				return fail(err)
			}
			progress.Add(int64(m))
			chunk = chunk[m:]
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return fail(rerr)
		}
	}
	if err := mw.Close(); err != nil {
		return fail(err)
	}
	return pw.Close()
}

var quoteEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`)

// attempt makes one upload attempt and records it.
func (u *uploader) attempt(ctx context.Context, j *job, n int) (a attemptResult) {
	a.n = n
	a.opID = u.opts.ClientName + "-" + u.nonce + "-" + strconv.Itoa(j.index) + "-" + strconv.Itoa(n)
	a.seq, a.start = u.nextSeq()
	defer func() {
		a.end = time.Now()
		u.record(j, &a)
	}()

	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var started atomic.Bool // request headers written: from here on the server may act
	actx = httptrace.WithClientTrace(actx, &httptrace.ClientTrace{
		WroteHeaders: func() { started.Store(true) },
	})

	pr, pw := io.Pipe()
	var bodyBytes, respBytes atomic.Int64
	mw := multipart.NewWriter(pw)
	target := u.uploadURL
	if j.delta != nil {
		target = j.delta.url
	}
	req, err := http.NewRequestWithContext(actx, http.MethodPost, target, pipeBody{pr: pr, n: &bodyBytes})
	if err != nil {
		a.outcome, a.verdict, a.err = history.Failed, history.Failed, fmt.Errorf("build request: %w", err)
		return a
	}
	req.ContentLength = -1 // chunked, no Content-Length, like the CLI
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set(octopusapi.HeaderOp, a.opID)

	// SHA-1 costs the loader more CPU than generating and sending the
	// bytes together: hash them on the way only when no earlier upload of
	// the same content (this run, or a replay through the on-disk cache)
	// has.
	var h hash.Hash
	if j.hash == "" && j.delta == nil {
		if known, ok := payload.KnownHash(j.spec); ok {
			j.hash = known
		} else {
			h = sha1.New()
		}
	}
	progress := u.prog.counter(j.index)
	writerDone := make(chan error, 1)
	go func() {
		if j.delta != nil {
			writerDone <- writeDeltaBody(actx, pw, mw, j.spec, j.delta.path, progress, u.limiter())
			return
		}
		writerDone <- writeBody(actx, pw, mw, j.spec, h, progress, u.limiter())
	}()

	stopWatch := u.watchStall(actx, cancel, &bodyBytes, &respBytes)
	resp, doErr := u.client.Do(req)
	if doErr == nil {
		a.status = resp.StatusCode
		a.header = resp.Header
		a.node = resp.Header.Get(octopusapi.HeaderNode)
		a.respBody, err = io.ReadAll(io.LimitReader(countingReader{resp.Body, &respBytes}, maxResponseBody))
		resp.Body.Close()
		if err != nil {
			doErr = fmt.Errorf("read response: %w", err)
		}
	}
	stopWatch()
	// The server may answer before taking the whole body (a 409 or 413);
	// make sure the writer is not left blocked on the pipe.
	pr.CloseWithError(errAttemptOver)
	werr := <-writerDone
	a.bodyBytes = bodyBytes.Load()
	if werr == nil {
		a.sentAll = true
		if h != nil {
			j.hash = hex.EncodeToString(h.Sum(nil))
			payload.RememberHash(j.spec, j.hash)
		}
	}
	if doErr != nil && a.status == 0 {
		// No answer. Cancellation by the stall watchdog shows as "context
		// canceled"; its cause says why.
		if cause := context.Cause(actx); cause != nil && ctx.Err() == nil && errors.Is(cause, ErrStalled) {
			doErr = fmt.Errorf("%w (%v)", cause, doErr)
		}
		if !started.Load() {
			a.outcome, a.verdict = history.Failed, history.Failed
			a.err = fmt.Errorf("request not sent: %w", doErr)
		} else {
			a.outcome, a.verdict = history.Unknown, history.Unknown
			a.err = fmt.Errorf("connection broke after the request started (%s of body sent): %w", payload.FormatSize(a.bodyBytes), doErr)
		}
		a.retry = ctx.Err() == nil
		return a
	}
	u.judge(ctx, j, &a, doErr)
	return a
}

// judge classifies an answered attempt.
func (u *uploader) judge(ctx context.Context, j *job, a *attemptResult, readErr error) {
	code := a.status
	switch {
	case code >= 200 && code < 300:
		// The server acknowledged the package: the op is ok whatever we
		// find below, so checkers know it claims to hold it. A response we
		// cannot verify makes the package (not the op) fail.
		a.outcome, a.verdict = history.OK, history.OK
		if readErr != nil {
			a.verdict, a.err = history.Failed, fmt.Errorf("%d but %w", code, readErr)
			return
		}
		if len(bytes.TrimSpace(a.respBody)) == 0 {
			a.verdict, a.err = history.Failed, fmt.Errorf("%s: %d %s, no package resource", history.EmptyAck, code, http.StatusText(code))
			return
		}
		if err := u.checkStored(a.respBody, j); err != nil {
			a.verdict, a.err = history.Failed, err
		}
	case code == http.StatusConflict && u.opts.OverwriteMode == octopusapi.FailIfExists && j.hadUnknown:
		a.outcome, a.verdict = history.Failed, history.Failed
		a.err = fmt.Errorf("409 Conflict: %s", octopusapi.ErrorText(a.respBody))
		ours, detail, err := u.verifyExisting(ctx, j, a)
		switch {
		case err != nil:
			// Cannot tell yet whose package it is; trying again re-asks.
			a.note = "409 after an unknown attempt; could not read the stored package: " + err.Error()
			a.retry = true
		case ours:
			a.outcome, a.verdict, a.err = history.OK, history.OK, nil
			a.note = "409 Conflict after an unknown attempt; " + detail + ", so an earlier attempt stored it"
		default:
			// Someone else's bytes hold the name, so (with FailIfExists)
			// the earlier unknown attempt cannot have stored ours.
			a.err = fmt.Errorf("conflict: %s", detail)
			j.hadUnknown = false
		}
	case code == http.StatusConflict:
		a.outcome, a.verdict = history.Failed, history.Failed
		a.err = fmt.Errorf("409 Conflict (package already exists): %s", octopusapi.ErrorText(a.respBody))
	case code == http.StatusBadGateway || code == http.StatusGatewayTimeout:
		// A proxy lost the node or gave up waiting: the node may have
		// stored the package.
		a.outcome, a.verdict = history.Unknown, history.Unknown
		a.err = fmt.Errorf("%d %s from a proxy: %s", code, http.StatusText(code), octopusapi.ErrorText(a.respBody))
		a.retry = true
	case code >= 500:
		a.outcome, a.verdict = history.Failed, history.Failed
		a.err = fmt.Errorf("%d %s: %s", code, http.StatusText(code), octopusapi.ErrorText(a.respBody))
		a.retry = true
	case code >= 300 && code < 400:
		a.outcome, a.verdict = history.Failed, history.Failed
		a.err = fmt.Errorf("unexpected redirect %d to %q", code, a.header.Get("Location"))
	default:
		a.outcome, a.verdict = history.Failed, history.Failed
		a.err = fmt.Errorf("%d %s: %s", code, http.StatusText(code), octopusapi.ErrorText(a.respBody))
	}
}

// checkStored compares the package resource the server returned with what
// was sent.
func (u *uploader) checkStored(body []byte, j *job) error {
	var p octopusapi.Package
	if err := json.Unmarshal(body, &p); err != nil {
		return fmt.Errorf("server acknowledged but its response is not a package resource: %w", err)
	}
	want := j.expectedHash()
	if !strings.EqualFold(p.Hash, want) {
		return fmt.Errorf("server stored hash %q, sent %s", p.Hash, want)
	}
	if p.PackageSizeBytes != j.spec.Size {
		return fmt.Errorf("server stored %d bytes, sent %d", p.PackageSizeBytes, j.spec.Size)
	}
	if (p.PackageId != "" && p.PackageId != j.spec.PackageID) || (p.Version != "" && p.Version != j.spec.Version) {
		return fmt.Errorf("server stored package %s %s, sent %s %s", p.PackageId, p.Version, j.spec.PackageID, j.spec.Version)
	}
	return nil
}

// verifyExisting reads the stored package's metadata after a 409 and says
// whether it is ours (same hash and size). The read is recorded too.
func (u *uploader) verifyExisting(ctx context.Context, j *job, a *attemptResult) (ours bool, detail string, err error) {
	path := octopusapi.PackagePath(u.opts.SpaceID, octopusapi.PackageResourceID(j.spec.PackageID, j.spec.Version))
	op := history.Op{
		ID: a.opID + "-verify", Client: j.client, Kind: history.KindPackages, Via: u.opts.Via,
		URL: redact.URL(u.base + path), PackageID: j.spec.PackageID, Version: j.spec.Version,
		Hash: j.expectedHash(), Size: j.spec.Size, Attempt: a.n, Start: time.Now(),
	}
	defer func() {
		op.End = time.Now()
		op.Outcome = history.OK
		if err != nil {
			op.Outcome, op.Error = history.Failed, err.Error()
		} else if !ours {
			op.Note = "stored package differs: " + detail
		}
		u.opts.Recorder.Op(op)
	}()
	timeout := u.opts.StallTimeout
	if timeout <= 0 {
		timeout = DefaultStallTimeout
	}
	gctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(gctx, http.MethodGet, u.base+path, nil)
	if err != nil {
		return false, "", fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set(octopusapi.HeaderOp, op.ID)
	resp, err := u.client.Do(req)
	if err != nil {
		return false, "", fmt.Errorf("GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	op.Status = resp.StatusCode
	op.Node = resp.Header.Get(octopusapi.HeaderNode)
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	if err != nil {
		return false, "", fmt.Errorf("GET %s: read: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return false, "", fmt.Errorf("GET %s: %d %s: %s", path, resp.StatusCode, http.StatusText(resp.StatusCode), octopusapi.ErrorText(body))
	}
	var p octopusapi.Package
	if err := json.Unmarshal(body, &p); err != nil {
		return false, "", fmt.Errorf("GET %s: not a package resource: %w", path, err)
	}
	want := j.expectedHash()
	if strings.EqualFold(p.Hash, want) && p.PackageSizeBytes == j.spec.Size {
		return true, fmt.Sprintf("GET %s shows our hash and size", path), nil
	}
	return false, fmt.Sprintf("package exists with hash %s and %d bytes, ours is %s and %d bytes", p.Hash, p.PackageSizeBytes, want, j.spec.Size), nil
}

// record writes the attempt to the history and the results stream.
func (u *uploader) record(j *job, a *attemptResult) {
	op := history.Op{
		ID: a.opID, Client: j.client, Kind: history.KindUpload,
		Start: a.start, End: a.end, Outcome: a.outcome, Status: a.status, Node: a.node,
		Via: u.opts.Via, URL: u.shownURL, Bytes: a.bodyBytes,
		PackageID: j.spec.PackageID, Version: j.spec.Version,
		Size: j.spec.Size, Attempt: a.n, Note: a.note,
	}
	shown := u.shownURL
	if j.delta != nil {
		shown = j.delta.shownURL
		op.URL, op.BaseVersion, op.DeltaBytes = shown, j.delta.base, j.delta.size
	}
	// Checkers need the expected hash of every attempt that may have stored
	// the package, also of one cut short; generating it costs about half a
	// second per GiB, once per package. A refused attempt gets it only if
	// known, so a run of 401s does not hash every package.
	if a.outcome != history.Failed || a.sentAll {
		op.Hash = j.expectedHash()
	} else {
		op.Hash = j.hash
	}
	if a.err != nil {
		op.Error = redact.Text(a.err.Error())
	}
	u.opts.Recorder.Op(op)

	r := vegeta.Result{
		Attack:    UploadAttackName,
		Seq:       a.seq,
		Code:      uint16(a.status),
		Timestamp: a.start,
		Latency:   a.end.Sub(a.start),
		BytesOut:  uint64(a.bodyBytes),
		BytesIn:   uint64(len(a.respBody)),
		Body:      a.respBody,
		Method:    http.MethodPost,
		URL:       shown,
		Headers:   a.header,
	}
	r.Error = op.Error
	u.results.write(&r)
	if u.opts.Observe != nil {
		u.opts.Observe(&r)
	}
}

// watchStall cancels the attempt when neither request nor response bytes
// move for the stall timeout. The returned func stops watching.
func (u *uploader) watchStall(ctx context.Context, cancel context.CancelCauseFunc, sent, recv *atomic.Int64) func() {
	limit := u.opts.StallTimeout
	if limit <= 0 {
		return func() {}
	}
	tick := max(min(limit/4, time.Second), 10*time.Millisecond)
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(tick)
		defer t.Stop()
		last, lastMove := sent.Load()+recv.Load(), time.Now()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case now := <-t.C:
				if p := sent.Load() + recv.Load(); p != last {
					last, lastMove = p, now
				} else if now.Sub(lastMove) >= limit {
					cancel(fmt.Errorf("%w: no bytes moved for %s", ErrStalled, limit))
					return
				}
			}
		}
	}()
	return func() { close(done) }
}

// countingReader counts bytes read through it.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}
