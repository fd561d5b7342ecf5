package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	smb2 "github.com/cloudsoda/go-smb2"
	"github.com/octoha/octoha/internal/redact"
)

const (
	// smbDefaultPort is SMB over TCP.
	smbDefaultPort = "445"
	// writeChunk is the size of one SMB WRITE: the most go-smb2 sends in
	// one request (it caps at 1 MiB, the Windows limit, even when Samba
	// offers 8 MiB).
	writeChunk = 1 << 20
	// cleanupTimeout bounds the clean-up after a failed or abandoned
	// stream (closing handles, logging off, removing a partial file).
	cleanupTimeout = 10 * time.Second
	// logoffTimeout bounds the polite LOGOFF before a connection is closed.
	logoffTimeout = 2 * time.Second
)

// NTSTATUS codes that mean the session or tree is gone (the server
// restarted or dropped us) rather than an answer about a file.
const (
	statusNetworkNameDeleted    = 0xC00000C9
	statusUserSessionDeleted    = 0xC0000203
	statusNetworkSessionExpired = 0xC000035C
	statusConnectionDisconnect  = 0xC000020C
	statusConnectionReset       = 0xC000020D
	statusSharingViolation      = 0xC0000043
)

// smbStore is a Store on an SMB share. Metadata operations share one
// session that is re-dialled after connection errors; every Writer and
// reader gets a session of its own, so a stream that is abandoned or fails
// can be torn down (the server then drops its handles) without disturbing
// the others, and each stream has the full credit window for pipelining.
type smbStore struct {
	addr     string // host:port
	share    string
	base     string // directory in the share, slash-separated, "" for its root
	user     string
	password string
	display  string // the location without the password
	o        options
	// credits is the dialer's MaxCreditBalance.
	credits uint16
	// dialSession replaces newDialer().Dial in tests.
	dialSession func(ctx context.Context, addr string) (*smb2.Session, error)

	sem    chan struct{} // guards conn and dialling; a channel so waits honour ctx
	conn   *smbConn
	closed bool
}

// smbConn is one TCP connection with its session and mounted share.
type smbConn struct {
	sess *smb2.Session
	sh   *smb2.Share
}

func openSMB(ctx context.Context, location string, o options) (Store, error) {
	bad := func(why string) error {
		return fmt.Errorf("blob: bad location %s: %s (want smb://user[:password]@host[:port]/share[/dir])", Redact(location), why)
	}
	u, err := url.Parse(location)
	if err != nil {
		// url.Parse quotes the whole URL, password included; say less.
		return nil, bad("not a valid URL")
	}
	if u.User == nil || u.User.Username() == "" {
		return nil, bad("no user name")
	}
	host := u.Hostname()
	if host == "" {
		return nil, bad("no host")
	}
	port := u.Port()
	if port == "" {
		port = smbDefaultPort
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return nil, bad("bad port")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, bad("query strings and fragments are not allowed")
	}
	share, dir, _ := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/")
	if share == "" {
		return nil, bad("no share name")
	}
	dir = strings.TrimSuffix(dir, "/")
	if err := checkDir(dir); err != nil {
		return nil, bad(fmt.Sprintf("directory: %v", err))
	}
	password, hasPassword := u.User.Password()
	if !hasPassword {
		if o.hasPassword {
			password = o.password
		} else {
			password = os.Getenv(PasswordEnv)
		}
	}
	if password == "" {
		return nil, bad("no password: give it in the URL, with WithPassword, or in " + PasswordEnv)
	}
	display := (&url.URL{Scheme: "smb", User: url.User(u.User.Username()), Host: net.JoinHostPort(host, port), Path: "/" + share}).String()
	if dir != "" {
		display += "/" + dir
	}
	s := &smbStore{
		addr:     net.JoinHostPort(host, port),
		share:    share,
		base:     dir,
		user:     u.User.Username(),
		password: password,
		display:  display,
		o:        o,
		sem:      make(chan struct{}, 1),
		// Enough credits for every pipelined write of a stream, twice
		// over, so the window never shrinks below the pipeline.
		credits: uint16(max(128, min(4096, 2*o.writesInFlight*writeChunk/(64<<10)))),
	}
	if !o.lazy {
		err := s.do(ctx, true, func(sh *smb2.Share) error {
			if dir == "" {
				_, err := sh.Stat("")
				return err
			}
			return sh.MkdirAll(dir, 0o755)
		})
		if err != nil {
			s.Close()
			return nil, s.safe(fmt.Errorf("blob: open %s: %w", display, err))
		}
	}
	return s, nil
}

func (s *smbStore) String() string { return s.display }

// full is a name's path inside the share.
func (s *smbStore) full(name string) string {
	if s.base == "" {
		return name
	}
	if name == "" {
		return s.base
	}
	return s.base + "/" + name
}

// safe makes sure no error leaving the store carries the password, even if
// a library were to echo it.
func (s *smbStore) safe(err error) error { return redact.Error(err, []string{s.password}) }

// errLibraryPanic marks a session set-up that panicked inside go-smb2.
var errLibraryPanic = errors.New("go-smb2 panicked during session set-up")

// newDialer returns a dialer for one session set-up. go-smb2's
// NTLMInitiator keeps the NTLM exchange in progress (its client, hence the
// session key) in itself, so an initiator shared by set-ups that overlap
// (every stream dials its own session: a node serving several task logs
// at once) mixes their exchanges up: the server refuses the AUTHENTICATE
// (STATUS_ACCESS_DENIED, "permission denied"), a session signs with another
// one's key ("packet failed signature verification"), or Sum finds a
// client swapped for a fresh one without a session (a nil dereference).
// A fresh initiator per set-up shares nothing.
func (s *smbStore) newDialer() *smb2.Dialer {
	return &smb2.Dialer{
		MaxCreditBalance: s.credits,
		Initiator:        &smb2.NTLMInitiator{User: s.user, Password: s.password},
	}
}

// dial opens a new connection, authenticates and mounts the share.
func (s *smbStore) dial(ctx context.Context) (*smbConn, error) {
	sess, err := s.sessionDial(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect to %s as %s: %w", s.addr, s.user, err)
	}
	sh, err := sess.WithContext(ctx).Mount(s.share)
	if err != nil {
		logoff(sess, ctx.Err() == nil)
		return nil, fmt.Errorf("mount share %q on %s: %w", s.share, s.addr, err)
	}
	return &smbConn{sess: sess, sh: sh}, nil
}

// sessionDial sets up one session. A panic in the library becomes an
// error, so a request fails rather than the whole node. It is not retried:
// the only panic seen (nil NTLM session in Sum) came from the shared
// initiator newDialer no longer makes; another would be a new bug to see.
func (s *smbStore) sessionDial(ctx context.Context) (sess *smb2.Session, err error) {
	defer func() {
		if p := recover(); p != nil {
			sess, err = nil, fmt.Errorf("%w: %v", errLibraryPanic, p)
		}
	}()
	if s.dialSession != nil {
		return s.dialSession(ctx, s.addr)
	}
	return s.newDialer().Dial(ctx, s.addr)
}

// logoff ends a session and closes its connection (go-smb2 closes the
// transport whatever the LOGOFF's fate), bounded in time. After a request
// on the connection was abandoned through its context, polite must be
// false: go-smb2 may then still be writing that request from the buffer it
// would encode the LOGOFF into, so the connection is only closed.
func logoff(sess *smb2.Session, polite bool) {
	ctx, cancel := context.WithTimeout(context.Background(), logoffTimeout)
	defer cancel()
	if !polite {
		cancel() // a cancelled context sends nothing and closes the transport
	}
	_ = sess.WithContext(ctx).Logoff()
}

// shared returns the metadata connection, dialling it if needed.
func (s *smbStore) shared(ctx context.Context) (*smbConn, error) {
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-s.sem }()
	if s.closed {
		return nil, errors.New("store is closed")
	}
	if s.conn != nil {
		return s.conn, nil
	}
	c, err := s.dial(ctx)
	if err != nil {
		return nil, err
	}
	s.conn = c
	return c, nil
}

// drop forgets the metadata connection so the next operation dials: after
// a connection error, or after a request abandoned through its context
// (which go-smb2 may have left half-sent).
func (s *smbStore) drop(c *smbConn, cause error) {
	s.sem <- struct{}{}
	mine := s.conn == c
	if mine {
		s.conn = nil
	}
	<-s.sem
	if !mine {
		return
	}
	if errors.Is(cause, context.Canceled) || errors.Is(cause, context.DeadlineExceeded) {
		s.o.logger.Debug("blob: closing the SMB connection after an abandoned request", "store", s.display, "err", s.safe(cause))
	} else {
		s.o.logger.Info("blob: SMB connection lost; will reconnect", "store", s.display, "err", s.safe(cause))
	}
	logoff(c.sess, false)
}

// isConnErr reports whether err says the connection or session is unusable
// (rather than being the server's answer about a file, or our own
// context ending).
func isConnErr(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrExist) || errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.ENOTDIR) {
		return false
	}
	var re *smb2.ResponseError
	if errors.As(err, &re) {
		switch re.Code {
		case statusNetworkNameDeleted, statusUserSessionDeleted, statusNetworkSessionExpired, statusConnectionDisconnect, statusConnectionReset:
			return true
		}
		return false
	}
	// Transport errors, EOF, malformed responses: start afresh.
	return true
}

// do runs fn on the metadata connection. A connection error drops the
// connection; idempotent operations are then tried once more on a new one.
// Non-idempotent ones return the error: their effect is unknown.
func (s *smbStore) do(ctx context.Context, idempotent bool, fn func(sh *smb2.Share) error) error {
	for attempt := 0; ; attempt++ {
		c, err := s.shared(ctx)
		if err != nil {
			return err
		}
		err = fn(c.sh.WithContext(ctx))
		if err != nil && ctx.Err() != nil {
			s.drop(c, ctx.Err())
			return err
		}
		if err == nil || !isConnErr(err) {
			return err
		}
		s.drop(c, err)
		if !idempotent || attempt > 0 {
			return err
		}
	}
}

// smbErr wraps an error of op on name, mapping to the sentinel errors.
func (s *smbStore) smbErr(op, name string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, fs.ErrNotExist):
		err = fmt.Errorf("blob: %s %s on %s: %w (%v)", op, name, s.display, ErrNotExist, err)
	case errors.Is(err, fs.ErrExist):
		err = fmt.Errorf("blob: %s %s on %s: %w (%v)", op, name, s.display, ErrExist, err)
	default:
		err = fmt.Errorf("blob: %s %s on %s: %w", op, name, s.display, err)
	}
	return s.safe(err)
}

func (s *smbStore) mkdirParent(ctx context.Context, name string) error {
	dir := parentDir(name)
	if dir == "" && s.base == "" {
		return nil
	}
	return s.do(ctx, true, func(sh *smb2.Share) error {
		return sh.MkdirAll(s.full(dir), 0o755)
	})
}

func (s *smbStore) Create(ctx context.Context, name string) (Writer, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	if err := s.mkdirParent(ctx, name); err != nil {
		return nil, s.smbErr("create parent of", name, err)
	}
	w, err := newSMBWriter(ctx, s, name)
	if err != nil {
		return nil, s.smbErr("create", name, err)
	}
	return w, nil
}

func (s *smbStore) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	rd, err := newSMBReader(ctx, s, name)
	if err != nil {
		return nil, s.smbErr("open", name, err)
	}
	return rd, nil
}

func (s *smbStore) Stat(ctx context.Context, name string) (Info, error) {
	if err := checkName(name); err != nil {
		return Info{}, err
	}
	var info Info
	err := s.do(ctx, true, func(sh *smb2.Share) error {
		st, err := sh.Stat(s.full(name))
		if err != nil {
			return err
		}
		info = Info{Name: name, Size: st.Size(), ModTime: st.ModTime(), IsDir: st.IsDir()}
		return nil
	})
	return info, s.smbErr("stat", name, err)
}

// Publish renames from to to. go-smb2's Rename always sets
// ReplaceIfExists, so without replace the target is first created
// exclusively (an SMB CREATE with FILE_CREATE: atomic, exactly one of
// several publishers succeeds) and then the complete file is renamed over
// that empty placeholder. The cost: for one round trip an empty file is
// visible under the final name, and a publisher killed in that instant
// leaves it behind.
func (s *smbStore) Publish(ctx context.Context, from, to string, replace bool) error {
	if err := checkName(from); err != nil {
		return err
	}
	if err := checkName(to); err != nil {
		return err
	}
	if err := s.mkdirParent(ctx, to); err != nil {
		return s.smbErr("create parent of", to, err)
	}
	if !replace {
		// Without a source there is nothing to publish: do not reserve.
		err := s.do(ctx, true, func(sh *smb2.Share) error {
			_, err := sh.Stat(s.full(from))
			return err
		})
		if err != nil {
			return s.smbErr("publish from", from, err)
		}
		err = s.do(ctx, false, func(sh *smb2.Share) error {
			f, err := sh.OpenFile(s.full(to), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
			if err != nil {
				return err
			}
			return f.Close()
		})
		if err != nil {
			return s.smbErr("publish "+from+" to", to, err)
		}
	}
	err := s.do(ctx, false, func(sh *smb2.Share) error {
		return sh.Rename(s.full(from), s.full(to))
	})
	if err != nil && !replace {
		s.removePlaceholder(ctx, to)
	}
	return s.smbErr("publish "+from+" to", to, err)
}

// removePlaceholder removes the empty file a failed no-replace Publish
// reserved, if it is still empty (never someone's published content).
func (s *smbStore) removePlaceholder(ctx context.Context, to string) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	err := s.do(cctx, true, func(sh *smb2.Share) error {
		st, err := sh.Stat(s.full(to))
		if err != nil || st.Size() != 0 {
			return err
		}
		return sh.Remove(s.full(to))
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.o.logger.Warn("blob: cannot remove the placeholder of a failed publish", "store", s.display, "name", to, "err", s.safe(err))
	}
}

func (s *smbStore) Remove(ctx context.Context, name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	err := s.do(ctx, true, func(sh *smb2.Share) error {
		return sh.Remove(s.full(name))
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return s.smbErr("remove", name, err)
}

func (s *smbStore) Walk(ctx context.Context, dir string) ([]Info, error) {
	if err := checkDir(dir); err != nil {
		return nil, err
	}
	var out []Info
	err := s.do(ctx, true, func(sh *smb2.Share) error {
		out = out[:0]
		var walk func(rel string, top bool) error
		walk = func(rel string, top bool) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			ents, err := sh.ReadDir(s.full(rel))
			if err != nil {
				// A missing start means nothing under it; a directory
				// removed while we walk is not an error either.
				if errors.Is(err, fs.ErrNotExist) {
					return nil
				}
				if top && errors.Is(err, syscall.ENOTDIR) {
					return nil
				}
				return err
			}
			for _, e := range ents {
				if e.Name() == "." || e.Name() == ".." {
					continue
				}
				child := e.Name()
				if rel != "" {
					child = rel + "/" + child
				}
				if e.IsDir() {
					if err := walk(child, false); err != nil {
						return err
					}
					continue
				}
				out = append(out, Info{Name: child, Size: e.Size(), ModTime: e.ModTime()})
			}
			return nil
		}
		return walk(dir, true)
	})
	if err != nil {
		return nil, s.smbErr("walk", strconv.Quote(dir), err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Ping stats the root directory over the metadata connection (dialling
// it if needed), so it fails while the share is unreachable.
func (s *smbStore) Ping(ctx context.Context) error {
	err := s.do(ctx, true, func(sh *smb2.Share) error {
		st, err := sh.Stat(s.full(""))
		if err == nil && !st.IsDir() {
			err = fmt.Errorf("%s is not a directory", path.Join(s.share, s.base))
		}
		return err
	})
	if err != nil {
		return s.safe(fmt.Errorf("blob: ping %s: %w", s.display, err))
	}
	return nil
}

// Close logs off the metadata connection; open streams keep their own.
func (s *smbStore) Close() error {
	s.sem <- struct{}{}
	c := s.conn
	s.conn, s.closed = nil, true
	<-s.sem
	if c != nil {
		logoff(c.sess, true)
	}
	return nil
}
