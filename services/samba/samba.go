// Package samba runs a throwaway Samba file server (smbd) on a loopback
// address for tests and for the local cluster provider: one writable share,
// one user, every file it touches (configuration, state, locks, passdb,
// logs and the shared directory itself) under one run directory, and no
// system service or system account changed.
//
// It imports no harness or fakes package, so both can use it.
package samba

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	smb2 "github.com/cloudsoda/go-smb2"

	"github.com/octoha/octoha/internal/proc"
	"github.com/octoha/octoha/internal/redact"
)

// Defaults for Options.
const (
	DefaultHost  = "127.0.0.1"
	DefaultShare = "octoha"
	DefaultUser  = "octoha"
	// stopGrace is how long Stop waits after SIGTERM before SIGKILL.
	stopGrace = 5 * time.Second
)

// Well-known locations of the Samba binaries (Debian package "samba").
var (
	smbdPaths     = []string{"/usr/sbin/smbd", "/usr/local/samba/sbin/smbd"}
	smbpasswdPath = []string{"/usr/bin/smbpasswd", "/usr/local/samba/bin/smbpasswd"}
	pdbeditPaths  = []string{"/usr/bin/pdbedit", "/usr/local/samba/bin/pdbedit"}
)

// Options configures a Server.
type Options struct {
	// Dir is the run directory: smb.conf, state, locks, private (passdb),
	// logs and the shared directory (Dir/share). Created if missing; the
	// caller owns it and removes it.
	Dir string
	// Host is the loopback address smbd binds, e.g. 127.0.0.6. Default
	// DefaultHost.
	Host string
	// Port is the TCP port; 0 picks a free one (kept for StartAgain).
	Port int
	// Share is the share name; default DefaultShare.
	Share string
	// User and Password are the SMB credentials; defaults DefaultUser and a
	// random password.
	User, Password string
	// Log receives smbd's debug output; nil discards it.
	Log io.Writer
}

// Server is a running (or stopped, restartable) smbd.
type Server struct {
	opts      Options
	smbd      string
	confPath  string
	sharePath string
	tail      *proc.Tail

	mu sync.Mutex
	p  *proc.Process
}

// Available reports the path of smbd, or an error saying what is missing
// and how to install it.
func Available() (smbd string, err error) {
	smbd = firstExecutable(smbdPaths, "smbd")
	var missing []string
	if smbd == "" {
		missing = append(missing, "smbd")
	}
	if firstExecutable(smbpasswdPath, "smbpasswd") == "" && firstExecutable(pdbeditPaths, "pdbedit") == "" {
		missing = append(missing, "smbpasswd or pdbedit")
	}
	if len(missing) > 0 {
		return "", fmt.Errorf("samba: %s not found (install with: apt-get install samba)", strings.Join(missing, " and "))
	}
	if os.Geteuid() != 0 {
		// smbd switches to the connecting user's Unix identity per
		// connection, which only root can do.
		return "", errors.New("samba: smbd must run as root (it changes to the SMB user's Unix identity per connection); run as root or skip")
	}
	return smbd, nil
}

func firstExecutable(paths []string, name string) string {
	for _, p := range paths {
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	return ""
}

// Start writes the configuration, creates the passdb entry and starts smbd,
// returning once an SMB session can mount the share (bounded by ctx).
func Start(ctx context.Context, opts Options) (*Server, error) {
	smbd, err := Available()
	if err != nil {
		return nil, err
	}
	if opts.Dir == "" {
		return nil, errors.New("samba: Options.Dir is required")
	}
	if opts.Host == "" {
		opts.Host = DefaultHost
	}
	if net.ParseIP(opts.Host) == nil {
		return nil, fmt.Errorf("samba: host %q is not an IP address", opts.Host)
	}
	if opts.Share == "" {
		opts.Share = DefaultShare
	}
	if opts.User == "" {
		opts.User = DefaultUser
	}
	if opts.Password == "" {
		b := make([]byte, 12)
		if _, err := rand.Read(b); err != nil {
			return nil, fmt.Errorf("samba: random password: %w", err)
		}
		opts.Password = hex.EncodeToString(b)
	}
	if strings.ContainsAny(opts.Password, "\n\r") {
		return nil, errors.New("samba: password must not contain line breaks")
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("samba: run directory: %w", err)
	}
	opts.Dir = dir
	if opts.Port == 0 {
		if opts.Port, err = proc.FreePort(opts.Host); err != nil {
			return nil, err
		}
	}
	s := &Server{
		opts:      opts,
		smbd:      smbd,
		confPath:  filepath.Join(dir, "smb.conf"),
		sharePath: filepath.Join(dir, "share"),
		tail:      proc.NewTail(8<<10, opts.Log),
	}
	if err := s.writeConfig(); err != nil {
		return nil, err
	}
	if err := s.addUser(ctx); err != nil {
		return nil, err
	}
	if err := s.start(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// unixUser is the Unix account SMB sessions run as: the current user,
// mapped from the SMB user name with "username map", so no system account
// is created.
func unixUser() (string, error) {
	u, err := user.Current()
	if err != nil {
		return "", fmt.Errorf("samba: current Unix user: %w", err)
	}
	return u.Username, nil
}

// interfacesValue is smbd's "interfaces" entry for host. Samba only binds
// addresses it finds on an interface; 127.0.0.6 is not configured on lo
// (only 127.0.0.1/8 is), but given with the /8 netmask Samba accepts it as
// part of lo's network and binds exactly that address.
func interfacesValue(host string) string {
	ip := net.ParseIP(host)
	if ip4 := ip.To4(); ip4 != nil && ip4[0] == 127 {
		return host + "/8"
	}
	return host
}

func (s *Server) writeConfig() error {
	d := s.opts.Dir
	for _, sub := range []string{"lock", "state", "cache", "private", "run", "ncalrpc", "log", "binddns", "usershares", "share"} {
		mode := os.FileMode(0o755)
		if sub == "private" {
			mode = 0o700
		}
		if err := os.MkdirAll(filepath.Join(d, sub), mode); err != nil {
			return fmt.Errorf("samba: create run directory: %w", err)
		}
	}
	uu, err := unixUser()
	if err != nil {
		return err
	}
	mapPath := filepath.Join(d, "usermap")
	if err := os.WriteFile(mapPath, []byte(uu+" = "+s.opts.User+"\n"), 0o644); err != nil {
		return fmt.Errorf("samba: write username map: %w", err)
	}
	var b strings.Builder
	p := func(k, v string) { fmt.Fprintf(&b, "  %s = %s\n", k, v) }
	b.WriteString("# Generated by octoha services/samba; every path is under the run directory.\n[global]\n")
	p("server role", "standalone server")
	p("netbios name", "OCTOHA")
	p("workgroup", "WORKGROUP")
	p("security", "user")
	p("smb ports", strconv.Itoa(s.opts.Port))
	p("interfaces", interfacesValue(s.opts.Host))
	p("bind interfaces only", "yes")
	p("disable netbios", "yes")
	p("lock directory", filepath.Join(d, "lock"))
	p("state directory", filepath.Join(d, "state"))
	p("cache directory", filepath.Join(d, "cache"))
	p("private dir", filepath.Join(d, "private"))
	p("pid directory", filepath.Join(d, "run"))
	p("ncalrpc dir", filepath.Join(d, "ncalrpc"))
	p("binddns dir", filepath.Join(d, "binddns"))
	p("usershare path", filepath.Join(d, "usershares"))
	p("log file", filepath.Join(d, "log", "smbd.log"))
	p("max log size", "1000")
	p("log level", "1")
	p("passdb backend", "tdbsam:"+filepath.Join(d, "private", "passdb.tdb"))
	p("username map", mapPath)
	p("map to guest", "Never")
	p("restrict anonymous", "2")
	p("server min protocol", "SMB2_10")
	p("server max protocol", "SMB3")
	p("load printers", "no")
	p("printing", "bsd")
	p("printcap name", "/dev/null")
	p("disable spoolss", "yes")
	p("obey pam restrictions", "no")
	p("unix password sync", "no")
	p("registry shares", "no")
	p("config backend", "file")
	p("kernel oplocks", "no")
	fmt.Fprintf(&b, "[%s]\n", s.opts.Share)
	p("path", s.sharePath)
	p("read only", "no")
	p("browseable", "yes")
	p("map archive", "no") // keep files 0644 rather than marking them executable
	p("create mask", "0644")
	p("directory mask", "0755")
	if err := os.WriteFile(s.confPath, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("samba: write smb.conf: %w", err)
	}
	return nil
}

// addUser puts the Unix user (mapped to the SMB user) with the password
// into the run directory's tdbsam passdb; the password goes over stdin.
func (s *Server) addUser(ctx context.Context) error {
	uu, err := unixUser()
	if err != nil {
		return err
	}
	var cmd *exec.Cmd
	if p := firstExecutable(smbpasswdPath, "smbpasswd"); p != "" {
		cmd = exec.CommandContext(ctx, p, "-c", s.confPath, "-a", "-s", uu)
	} else {
		cmd = exec.CommandContext(ctx, firstExecutable(pdbeditPaths, "pdbedit"), "-c", s.confPath, "-a", "-t", "-u", uu)
	}
	cmd.Stdin = strings.NewReader(s.opts.Password + "\n" + s.opts.Password + "\n")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return redact.Error(fmt.Errorf("samba: add user %s to passdb (%s): %w: %s", uu, filepath.Base(cmd.Path), err, strings.TrimSpace(string(out))), []string{s.opts.Password})
	}
	return nil
}

func (s *Server) start(ctx context.Context) error {
	s.mu.Lock()
	if s.p != nil && !s.p.Exited() {
		s.mu.Unlock()
		return fmt.Errorf("samba: smbd already running (pid %d)", s.p.PID())
	}
	// smbd binds with SO_REUSEPORT, so a second smbd (a leftover, or
	// another run's) would share the port silently and take half the
	// connections; make sure the port is really free first.
	l, err := net.Listen("tcp", s.Addr())
	if err != nil {
		s.mu.Unlock()
		return fmt.Errorf("samba: port %s is not free: %w", s.Addr(), err)
	}
	_ = l.Close()
	// A stale pid file would make smbd refuse to start.
	_ = os.Remove(filepath.Join(s.opts.Dir, "run", "smbd.pid"))
	p, err := proc.Start(proc.Spec{
		Name: "smbd " + s.Addr(),
		Path: s.smbd,
		Args: []string{"--foreground", "--no-process-group", "--debug-stdout", "--configfile=" + s.confPath},
		Dir:  s.opts.Dir,
		Log:  s.tail,
	})
	if err != nil {
		s.mu.Unlock()
		return fmt.Errorf("samba: %w", err)
	}
	s.p = p
	s.mu.Unlock()
	if err := s.waitReady(ctx, p); err != nil {
		kctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = p.Kill(kctx)
		return err
	}
	return nil
}

// waitReady polls until a real SMB session mounts the share, smbd exits,
// or ctx ends.
func (s *Server) waitReady(ctx context.Context, p *proc.Process) error {
	delay := 10 * time.Millisecond
	var last error
	for {
		if p.Exited() {
			return fmt.Errorf("samba: smbd exited during start-up (%v); last output:\n%s", p.Err(), s.tail.String())
		}
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		last = s.probe(actx)
		cancel()
		if last == nil {
			return nil
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("samba: smbd on %s not ready: %w (last attempt: %v)", s.Addr(), ctx.Err(), last)
		case <-p.Done():
			t.Stop()
		case <-t.C:
		}
		delay = min(delay*2, 200*time.Millisecond)
	}
}

// probe dials, authenticates and mounts the share once.
func (s *Server) probe(ctx context.Context) error {
	d := &smb2.Dialer{Initiator: &smb2.NTLMInitiator{User: s.opts.User, Password: s.opts.Password}}
	sess, err := d.Dial(ctx, s.Addr())
	if err != nil {
		return redact.Error(err, []string{s.opts.Password})
	}
	sess = sess.WithContext(ctx)
	defer sess.Logoff()
	sh, err := sess.Mount(s.opts.Share)
	if err != nil {
		return redact.Error(err, []string{s.opts.Password})
	}
	_ = sh.WithContext(ctx).Umount()
	return nil
}

// Addr is host:port.
func (s *Server) Addr() string {
	return net.JoinHostPort(s.opts.Host, strconv.Itoa(s.opts.Port))
}

// Host is the address smbd binds.
func (s *Server) Host() string { return s.opts.Host }

// Port is smbd's TCP port.
func (s *Server) Port() int { return s.opts.Port }

// Share is the share name.
func (s *Server) Share() string { return s.opts.Share }

// User is the SMB user name.
func (s *Server) User() string { return s.opts.User }

// Password is the SMB password.
func (s *Server) Password() string { return s.opts.Password }

// SharePath is the local directory backing the share, for inspection.
func (s *Server) SharePath() string { return s.sharePath }

// ConfigPath is the generated smb.conf (useful with smbclient --configfile).
func (s *Server) ConfigPath() string { return s.confPath }

// URL is smb://user:password@host:port/share/dir (dir may be empty).
func (s *Server) URL(dir string) string {
	return s.url(dir, url.UserPassword(s.opts.User, s.opts.Password))
}

// URLWithoutPassword is URL without the password, for command lines and
// logs; the password then travels separately (e.g. OCTOHA_SMB_PASSWORD).
func (s *Server) URLWithoutPassword(dir string) string {
	return s.url(dir, url.User(s.opts.User))
}

func (s *Server) url(dir string, u *url.Userinfo) string {
	p := "/" + s.opts.Share
	if dir = strings.Trim(dir, "/"); dir != "" {
		p += "/" + dir
	}
	return (&url.URL{Scheme: "smb", User: u, Host: s.Addr(), Path: p}).String()
}

// PID is the current smbd's process ID, or 0 when it is not running.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.p == nil || s.p.Exited() {
		return 0
	}
	return s.p.PID()
}

// Running reports whether smbd is running (it may be paused).
func (s *Server) Running() bool { return s.PID() != 0 }

func (s *Server) current() *proc.Process {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.p
}

// Stop asks smbd (and its per-connection children) to exit, killing them
// after a grace period. Stopping a stopped server is a no-op.
func (s *Server) Stop(ctx context.Context) error {
	p := s.current()
	if p == nil {
		return nil
	}
	if err := p.Stop(ctx, stopGrace); err != nil {
		return fmt.Errorf("samba: stop: %w", err)
	}
	return nil
}

// Kill kills smbd's whole process group at once (a crash, not a shutdown).
func (s *Server) Kill(ctx context.Context) error {
	p := s.current()
	if p == nil {
		return nil
	}
	if err := p.Kill(ctx); err != nil {
		return fmt.Errorf("samba: kill: %w", err)
	}
	return nil
}

// StartAgain starts smbd again with the same configuration, port and
// credentials after Stop or Kill, and waits until the share mounts.
func (s *Server) StartAgain(ctx context.Context) error {
	return s.start(ctx)
}

// Pause freezes smbd and its children (SIGSTOP): connections hang rather
// than fail.
func (s *Server) Pause() error {
	p := s.current()
	if p == nil {
		return errors.New("samba: pause: not running")
	}
	return p.Pause()
}

// Resume continues a paused smbd.
func (s *Server) Resume() error {
	p := s.current()
	if p == nil {
		return errors.New("samba: resume: not running")
	}
	return p.Resume()
}

// Close stops smbd. The run directory stays (the caller owns it).
func (s *Server) Close(ctx context.Context) error {
	return s.Stop(ctx)
}
