package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/octoha/octoha/services/samba"
)

// One Samba server for the whole package test run, started on first use
// (so -run filters that need none start none) and stopped by TestMain.
var sambaOnce struct {
	sync.Once
	srv     *samba.Server
	dir     string
	skip    error // Samba is not usable on this machine
	failure error // Samba is there but would not start
}

func TestMain(m *testing.M) {
	code := m.Run()
	if s := sambaOnce.srv; s != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		if err := s.Close(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "stop samba:", err)
			code = 1
		}
		cancel()
	}
	if sambaOnce.dir != "" {
		_ = os.RemoveAll(sambaOnce.dir)
	}
	os.Exit(code)
}

func sambaServer(tb testing.TB) *samba.Server {
	tb.Helper()
	if testing.Short() {
		tb.Skip("-short: SMB tests need a real smbd")
	}
	sambaOnce.Do(func() {
		if _, err := samba.Available(); err != nil {
			sambaOnce.skip = err
			return
		}
		dir, err := os.MkdirTemp("", "octoha-blob-samba-")
		if err != nil {
			sambaOnce.failure = err
			return
		}
		sambaOnce.dir = dir
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		sambaOnce.srv, sambaOnce.failure = samba.Start(ctx, samba.Options{Dir: dir, Host: "127.0.0.1"})
	})
	if sambaOnce.skip != nil {
		tb.Skipf("SMB tests need a local Samba: %v", sambaOnce.skip)
	}
	if sambaOnce.failure != nil {
		tb.Fatalf("start Samba: %v", sambaOnce.failure)
	}
	return sambaOnce.srv
}

// ensureRunning restarts the shared server after a test that stopped it,
// even if that test failed half-way.
func ensureRunning(t *testing.T, srv *samba.Server) {
	t.Cleanup(func() {
		if srv.Running() {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := srv.StartAgain(ctx); err != nil {
			t.Errorf("restart Samba for the next tests: %v", err)
		}
	})
}

var dirSeq atomic.Int64

// freshDir is a new directory name in the share for one test.
func freshDir(t *testing.T) string {
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, t.Name())
	return fmt.Sprintf("t/%s-%d", name, dirSeq.Add(1))
}

func openSMBStore(t *testing.T, srv *samba.Server, dir string, opts ...Option) Store {
	t.Helper()
	s, err := Open(testCtx(t), srv.URL(dir), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestSMBConformance(t *testing.T) {
	srv := sambaServer(t)
	runConformance(t, func(t *testing.T) Store {
		return openSMBStore(t, srv, freshDir(t))
	})
}

func TestSMBFilesLandInTheShare(t *testing.T) {
	srv := sambaServer(t)
	dir := freshDir(t)
	s := openSMBStore(t, srv, dir)
	writeFile(t, s, "tmp/a.tmp", []byte("content"))
	if err := s.Publish(testCtx(t), "tmp/a.tmp", "Spaces-1/a.zip", false); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(srv.SharePath(), dir, "Spaces-1", "a.zip"))
	if err != nil || string(b) != "content" {
		t.Fatalf("on disk: %q, %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(srv.SharePath(), dir, "tmp", "a.tmp")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("source still on disk: %v", err)
	}
}

func TestSMBLocationsAndSecrets(t *testing.T) {
	srv := sambaServer(t)
	ctx := testCtx(t)
	pw := srv.Password()
	dir := freshDir(t)

	// Password from the option, then from the environment.
	s, err := Open(ctx, srv.URLWithoutPassword(dir), WithPassword(pw))
	if err != nil {
		t.Fatalf("Open with WithPassword: %v", err)
	}
	if strings.Contains(s.String(), pw) || s.String() != srv.URLWithoutPassword(dir) {
		t.Errorf("String() = %q", s.String())
	}
	writeFile(t, s, "x", []byte("x"))
	s.Close()
	t.Setenv(PasswordEnv, pw)
	s, err = Open(ctx, srv.URLWithoutPassword(dir))
	if err != nil {
		t.Fatalf("Open with %s: %v", PasswordEnv, err)
	}
	if got := readFile(t, s, "x"); string(got) != "x" {
		t.Errorf("read %q", got)
	}
	s.Close()
	t.Setenv(PasswordEnv, "")

	// The share's root as the store's root.
	root := openSMBStore(t, srv, "")
	if err := root.Ping(ctx); err != nil {
		t.Fatalf("Ping of the share root: %v", err)
	}
	if got := readFile(t, root, dir+"/x"); string(got) != "x" {
		t.Errorf("via the share root: %q", got)
	}

	host := srv.Addr()
	for _, tc := range []struct{ loc, want string }{
		{srv.URLWithoutPassword(dir), "no password"},
		{"smb://" + host + "/octoha", "no user"},
		{"smb://u:hunter2@/octoha", "no host"},
		{"smb://u:hunter2@" + host, "no share"},
		{"smb://u:hunter2@" + host + "/", "no share"},
		{"smb://u:hunter2@127.0.0.1:99999/octoha", "bad port"},
		{"smb://u:hunter2@127.0.0.1:x/octoha", "not a valid URL"},
		{"smb://u:hunter2@" + host + "/octoha/../x", "directory"},
		{"smb://u:hunter2@" + host + "/octoha/a?b=c", "query"},
		{"smb://u:hunter2%zz@" + host + "/octoha", "not a valid URL"},
	} {
		_, err := Open(ctx, tc.loc)
		if err == nil {
			t.Errorf("Open(%s) succeeded", Redact(tc.loc))
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%s) = %v, want it to say %q", Redact(tc.loc), err, tc.want)
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("error shows the password: %v", err)
		}
	}

	// A wrong password fails at Open, without showing either password.
	wrong := "wrong-" + pw
	_, err = Open(ctx, strings.Replace(srv.URL(dir), pw, wrong, 1))
	if err == nil {
		t.Fatal("Open with a wrong password succeeded")
	}
	if strings.Contains(err.Error(), wrong) || strings.Contains(err.Error(), pw) {
		t.Errorf("error shows a password: %v", err)
	}
	// Nothing listens there: a clear error within the context's bounds.
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := Open(dctx, "smb://u:hunter2@127.0.0.1:1/octoha"); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("Open of a closed port: %v", err)
	}
	// Lazy: Open succeeds, Ping says the share is unreachable.
	lz, err := Open(dctx, "smb://u:hunter2@127.0.0.1:1/octoha", WithLazyConnect())
	if err != nil {
		t.Fatalf("lazy Open: %v", err)
	}
	if err := lz.Ping(dctx); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("Ping of an unreachable share: %v", err)
	}
	lz.Close()
}

// TestSMBOutageAndRecovery stops smbd under an open store and a writer,
// then starts it again: operations fail while it is down and work again on
// the same Store afterwards.
func TestSMBOutageAndRecovery(t *testing.T) {
	srv := sambaServer(t)
	ensureRunning(t, srv)
	var logs strings.Builder
	var logMu sync.Mutex
	logger := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		logMu.Lock()
		defer logMu.Unlock()
		return logs.Write(p)
	}), nil))
	dir := freshDir(t)
	s := openSMBStore(t, srv, dir, WithLogger(logger))
	ctx := testCtx(t)
	writeFile(t, s, "before", []byte("before"))
	w, err := s.Create(ctx, "tmp/inflight.tmp")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(randomBytes(4, 3<<20)); err != nil {
		t.Fatal(err)
	}

	for _, outage := range []string{"stop", "kill"} {
		switch outage {
		case "stop":
			err = srv.Stop(ctx)
		case "kill":
			err = srv.Kill(ctx)
		}
		if err != nil {
			t.Fatal(err)
		}
		octx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if err := s.Ping(octx); err == nil {
			t.Errorf("%s: Ping succeeded while smbd is down", outage)
		}
		if _, err := s.Stat(octx, "before"); err == nil || errors.Is(err, ErrNotExist) {
			t.Errorf("%s: Stat while down: %v", outage, err)
		}
		if _, err := s.Create(octx, "during"); err == nil {
			t.Errorf("%s: Create succeeded while smbd is down", outage)
		}
		if _, err := s.Open(octx, "before"); err == nil {
			t.Errorf("%s: Open succeeded while smbd is down", outage)
		}
		if outage == "stop" {
			// The writer's connection is gone: its next writes fail and
			// Close reports it, rather than pretending the file is whole.
			var werr error
			for i := 0; i < 8 && werr == nil; i++ {
				_, werr = w.Write(randomBytes(5, 1<<20))
			}
			if werr == nil {
				werr = w.Close()
			}
			if werr == nil {
				t.Error("writer survived an outage without an error")
			}
		}
		cancel()
		if err := srv.StartAgain(ctx); err != nil {
			t.Fatal(err)
		}
		if err := s.Ping(ctx); err != nil {
			t.Fatalf("%s: Ping after StartAgain: %v", outage, err)
		}
		if got := readFile(t, s, "before"); string(got) != "before" {
			t.Errorf("%s: after restart: %q", outage, got)
		}
		name := "after-" + outage
		writeFile(t, s, "tmp/"+name, []byte(name))
		if err := s.Publish(ctx, "tmp/"+name, name, false); err != nil {
			t.Fatalf("%s: Publish after restart: %v", outage, err)
		}
		if got := readFile(t, s, name); string(got) != name {
			t.Errorf("%s: %q", outage, got)
		}
	}
	// The writer cut off by the outage cleans up after itself.
	if err := w.Abort(); err != nil {
		t.Errorf("Abort of the interrupted writer: %v", err)
	}
	if _, err := s.Stat(ctx, "tmp/inflight.tmp"); !errors.Is(err, ErrNotExist) {
		t.Errorf("interrupted writer's file after Abort: %v", err)
	}
	logMu.Lock()
	defer logMu.Unlock()
	if !strings.Contains(logs.String(), "reconnect") {
		t.Errorf("no reconnect logged: %s", logs.String())
	}
	if strings.Contains(logs.String(), srv.Password()) {
		t.Error("log shows the password")
	}
}

// TestSMBPause freezes smbd: operations time out with the caller's
// context, and the same connection works once smbd is resumed.
func TestSMBPause(t *testing.T) {
	srv := sambaServer(t)
	s := openSMBStore(t, srv, freshDir(t))
	ctx := testCtx(t)
	writeFile(t, s, "f", []byte("f"))
	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	resumed := false
	t.Cleanup(func() {
		if !resumed {
			_ = srv.Resume()
		}
	})
	pctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	err := s.Ping(pctx)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Ping while paused: %v", err)
	}
	pctx, cancel = context.WithTimeout(ctx, 300*time.Millisecond)
	_, err = s.Create(pctx, "paused")
	cancel()
	if err == nil {
		t.Error("Create succeeded while paused")
	}
	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	resumed = true
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping after Resume: %v", err)
	}
	if got := readFile(t, s, "f"); string(got) != "f" {
		t.Errorf("after resume: %q", got)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

var _ io.Writer = writerFunc(nil)
