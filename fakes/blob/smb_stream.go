package blob

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
	"time"

	smb2 "github.com/cloudsoda/go-smb2"
)

const statusDeletePending = 0xC0000056

var errAborted = errors.New("writer aborted")

type writerState int

const (
	writerOpen writerState = iota
	writerCommitted
	writerFailed // Close failed; Abort cleans up
	writerAborted
)

// smbWriter streams a file onto the share over its own session. Writes are
// gathered into writeChunk buffers and sent as WriteAt requests at fixed
// offsets, up to inFlight at once, so the connection is never idle while
// the caller produces the next megabyte. A failed WRITE is never retried:
// its error is returned by the next Write or by Close.
type smbWriter struct {
	s    *smbStore
	name string
	full string
	ctx  context.Context // the caller's
	// wctx carries the stream's requests: the caller's context without its
	// cancellation (so clean-up can still talk to the server) plus cancel,
	// which fires when the caller's context ends or the writer gives up.
	wctx   context.Context
	cancel context.CancelFunc
	stop   func() bool // unregisters the caller-context watcher
	conn   *smbConn
	f      *smb2.File

	inFlight  int
	free      chan []byte
	allocated int
	buf       []byte // being filled; nil when none is taken
	off       int64  // file offset of buf[0]
	wg        sync.WaitGroup

	errMu sync.Mutex
	err   error // first write error

	mu    sync.Mutex // serialises Write, Close and Abort
	state writerState
	fOpen bool
}

func newSMBWriter(ctx context.Context, s *smbStore, name string) (*smbWriter, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c, err := s.dial(ctx)
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	full := s.full(name)
	f, err := c.sh.WithContext(wctx).OpenFile(full, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		cancel()
		logoff(c.sess, true)
		return nil, err
	}
	return &smbWriter{
		s: s, name: name, full: full, ctx: ctx, wctx: wctx, cancel: cancel,
		stop:     context.AfterFunc(ctx, cancel),
		conn:     c,
		f:        f,
		inFlight: s.o.writesInFlight,
		free:     make(chan []byte, s.o.writesInFlight+1),
		fOpen:    true,
	}, nil
}

// failure is the error that stops the stream: a failed write, or the end
// of the caller's context.
func (w *smbWriter) failure() error {
	w.errMu.Lock()
	err := w.err
	w.errMu.Unlock()
	if err != nil {
		return err
	}
	if err := w.ctx.Err(); err != nil {
		return err
	}
	return nil
}

func (w *smbWriter) setErr(err error) {
	w.errMu.Lock()
	if w.err == nil {
		w.err = err
	}
	w.errMu.Unlock()
}

func (w *smbWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.state != writerOpen {
		return 0, fmt.Errorf("blob: write %s: writer is closed", w.name)
	}
	if err := w.failure(); err != nil {
		return 0, w.s.smbErr("write", w.name, err)
	}
	n := 0
	for len(p) > 0 {
		if w.buf == nil {
			b, err := w.takeBuf()
			if err != nil {
				return n, w.s.smbErr("write", w.name, err)
			}
			w.buf = b
		}
		c := copy(w.buf[len(w.buf):cap(w.buf)], p)
		w.buf = w.buf[:len(w.buf)+c]
		p = p[c:]
		n += c
		if len(w.buf) == cap(w.buf) {
			w.send()
		}
	}
	return n, nil
}

// takeBuf returns an empty buffer, waiting while inFlight writes are
// outstanding.
func (w *smbWriter) takeBuf() ([]byte, error) {
	select {
	case b := <-w.free:
		return b[:0], nil
	default:
	}
	if w.allocated <= w.inFlight {
		w.allocated++
		return make([]byte, 0, writeChunk), nil
	}
	select {
	case b := <-w.free:
		if err := w.failure(); err != nil {
			w.free <- b
			return nil, err
		}
		return b[:0], nil
	case <-w.wctx.Done():
		if err := w.failure(); err != nil {
			return nil, err
		}
		return nil, w.wctx.Err()
	}
}

// send writes the current buffer at its offset in the background.
func (w *smbWriter) send() {
	b, off := w.buf, w.off
	w.off += int64(len(b))
	w.buf = nil
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		if w.failure() == nil {
			if _, err := w.f.WriteAt(b, off); err != nil {
				w.setErr(fmt.Errorf("write %d bytes at offset %d: %w", len(b), off, err))
			}
		}
		w.free <- b
	}()
}

func (w *smbWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch w.state {
	case writerCommitted:
		return nil
	case writerFailed, writerAborted:
		return fmt.Errorf("blob: close %s: writer already failed or aborted", w.name)
	}
	if len(w.buf) > 0 {
		w.send()
	}
	w.wg.Wait()
	err := w.failure()
	if err == nil {
		if err = w.f.Close(); err == nil {
			w.fOpen = false
		}
	}
	if err != nil {
		w.state = writerFailed
		return w.s.smbErr("close", w.name, err)
	}
	w.state = writerCommitted
	w.release()
	return nil
}

// release ends the stream's session.
func (w *smbWriter) release() {
	w.stop()
	polite := w.wctx.Err() == nil
	w.cancel()
	logoff(w.conn.sess, polite)
}

func (w *smbWriter) Abort() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch w.state {
	case writerCommitted, writerAborted:
		return nil
	}
	w.state = writerAborted
	w.setErr(errAborted) // queued writes are skipped
	removed := false
	if w.ctx.Err() == nil && w.wctx.Err() == nil {
		// Healthy: let in-flight writes finish, close and delete over our
		// own session, all bounded in time.
		t := time.AfterFunc(cleanupTimeout, w.cancel)
		w.wg.Wait()
		if w.fOpen && w.f.Close() == nil {
			w.fOpen = false
		}
		if !w.fOpen {
			err := w.conn.sh.WithContext(w.wctx).Remove(w.full)
			removed = err == nil || errors.Is(err, fs.ErrNotExist)
		}
		t.Stop()
	}
	w.cancel()
	w.wg.Wait()
	w.release()
	if removed {
		return nil
	}
	// Our session is gone (we just logged it off), so the server drops the
	// handle; delete over the metadata connection once it has.
	return w.removeLeftover()
}

// removeLeftover deletes the file by name, retrying while the server still
// holds the old session's handle (sharing violation).
func (w *smbWriter) removeLeftover() error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(w.ctx), cleanupTimeout)
	defer cancel()
	delay := 20 * time.Millisecond
	for {
		err := w.s.do(ctx, true, func(sh *smb2.Share) error {
			return sh.Remove(w.full)
		})
		var re *smb2.ResponseError
		switch {
		case err == nil, errors.Is(err, fs.ErrNotExist):
			return nil
		case errors.As(err, &re) && re.Code == statusDeletePending:
			return nil
		case !(errors.As(err, &re) && re.Code == statusSharingViolation) && !errors.Is(err, fs.ErrPermission) && !isConnErr(err):
			return w.s.smbErr("abort (remove)", w.name, err)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return w.s.smbErr("abort (remove)", w.name, fmt.Errorf("%w (last: %v)", ctx.Err(), err))
		case <-t.C:
		}
		delay = min(2*delay, 500*time.Millisecond)
	}
}

var _ io.ReadSeeker = (*smbReader)(nil)

// smbReader reads a file over its own session, a megabyte per request.
type smbReader struct {
	s      *smbStore
	name   string
	ctx    context.Context
	rctx   context.Context
	cancel context.CancelFunc
	stop   func() bool
	conn   *smbConn
	f      *smb2.File
	br     *bufio.Reader

	mu     sync.Mutex
	closed bool
}

func newSMBReader(ctx context.Context, s *smbStore, name string) (*smbReader, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c, err := s.dial(ctx)
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	f, err := c.sh.WithContext(rctx).Open(s.full(name))
	if err == nil {
		var st os.FileInfo
		if st, err = f.Stat(); err == nil && st.IsDir() {
			err = errors.New("is a directory")
		}
		if err != nil {
			_ = f.Close()
		}
	}
	if err != nil {
		cancel()
		logoff(c.sess, true)
		return nil, err
	}
	return &smbReader{
		s: s, name: name, ctx: ctx, rctx: rctx, cancel: cancel,
		stop: context.AfterFunc(ctx, cancel),
		conn: c, f: f,
		br: bufio.NewReaderSize(f, writeChunk),
	}, nil
}

func (r *smbReader) readErr(err error) error {
	if err == nil || err == io.EOF {
		return err
	}
	if cerr := r.ctx.Err(); cerr != nil {
		err = fmt.Errorf("%w (%v)", cerr, err)
	}
	return r.s.smbErr("read", r.name, err)
}

func (r *smbReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, r.readErr(err)
	}
	n, err := r.br.Read(p)
	return n, r.readErr(err)
}

// Seek moves the read position (patching a delta seeks in its base file).
// Buffered bytes are dropped; SEEK_CUR counts from the position the caller
// has read to, not from what was read ahead.
func (r *smbReader) Seek(offset int64, whence int) (int64, error) {
	if whence == io.SeekCurrent {
		pos, err := r.f.Seek(0, io.SeekCurrent)
		if err != nil {
			return 0, r.s.smbErr("seek", r.name, err)
		}
		offset, whence = pos-int64(r.br.Buffered())+offset, io.SeekStart
	}
	abs, err := r.f.Seek(offset, whence)
	if err != nil {
		return 0, r.s.smbErr("seek", r.name, err)
	}
	r.br.Reset(r.f)
	return abs, nil
}

// WriteTo lets io.Copy read in whole megabytes whatever its buffer size.
func (r *smbReader) WriteTo(w io.Writer) (int64, error) {
	n, err := r.br.WriteTo(w)
	return n, r.readErr(err)
}

func (r *smbReader) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	r.stop()
	if r.rctx.Err() == nil {
		t := time.AfterFunc(cleanupTimeout, r.cancel)
		_ = r.f.Close()
		t.Stop()
	}
	polite := r.rctx.Err() == nil
	r.cancel()
	// Logging off closes the connection; the server drops any handle left.
	logoff(r.conn.sess, polite)
	return nil
}
