package samba

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	smb2 "github.com/cloudsoda/go-smb2"

	"github.com/octoha/octoha/internal/proc"
)

func startServer(t *testing.T, ctx context.Context, opts Options) *Server {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: needs a real smbd")
	}
	if _, err := Available(); err != nil {
		t.Skipf("samba not usable here: %v", err)
	}
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	s, err := Start(ctx, opts)
	if err != nil {
		t.Fatalf("start samba: %v", err)
	}
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Close(cctx); err != nil {
			t.Errorf("close samba: %v", err)
		}
	})
	return s
}

// smbclientPut uploads local as name with smbclient; the password goes in
// the PASSWD environment variable, not on the command line.
func smbclientPut(ctx context.Context, s *Server, local, name string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "smbclient", "-p", strconv.Itoa(s.Port()),
		"//"+s.Host()+"/"+s.Share(), "-U", s.User(), "-c", "put "+local+" "+name)
	cmd.Env = append(os.Environ(), "PASSWD="+s.Password())
	return cmd.CombinedOutput()
}

func goSMBRoundTrip(ctx context.Context, s *Server, name string, data []byte) ([]byte, error) {
	d := &smb2.Dialer{Initiator: &smb2.NTLMInitiator{User: s.User(), Password: s.Password()}}
	sess, err := d.Dial(ctx, s.Addr())
	if err != nil {
		return nil, err
	}
	defer sess.Logoff()
	sh, err := sess.WithContext(ctx).Mount(s.Share())
	if err != nil {
		return nil, err
	}
	defer sh.Umount()
	if err := sh.WriteFile(name, data, 0o644); err != nil {
		return nil, err
	}
	return sh.ReadFile(name)
}

// smbdProcesses lists PIDs whose command line names this server's config.
func smbdProcesses(t *testing.T, conf string) []int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if bytes.Contains(b, []byte(conf)) && proc.Alive(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func TestServerLifecycle(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s := startServer(t, ctx, Options{Host: "127.0.0.6"})

	if !strings.HasPrefix(s.Addr(), "127.0.0.6:") || s.Port() == 0 {
		t.Fatalf("Addr() = %q", s.Addr())
	}
	wantURL := "smb://octoha:" + s.Password() + "@" + s.Addr() + "/octoha/pkgs"
	if got := s.URL("pkgs"); got != wantURL {
		t.Errorf("URL = %q, want %q", got, wantURL)
	}
	if got := s.URLWithoutPassword("/pkgs/"); strings.Contains(got, s.Password()) || got != "smb://octoha@"+s.Addr()+"/octoha/pkgs" {
		t.Errorf("URLWithoutPassword = %q", got)
	}

	// smbclient put.
	local := filepath.Join(t.TempDir(), "in.bin")
	data := bytes.Repeat([]byte("octoha-samba "), 100_000)
	if err := os.WriteFile(local, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := smbclientPut(ctx, s, local, "put.bin"); err != nil {
		t.Fatalf("smbclient put: %v\n%s", err, out)
	}
	got, err := os.ReadFile(filepath.Join(s.SharePath(), "put.bin"))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("file put by smbclient: err=%v, %d bytes, want %d", err, len(got), len(data))
	}

	// go-smb2.
	back, err := goSMBRoundTrip(ctx, s, "go.txt", []byte("hello"))
	if err != nil || string(back) != "hello" {
		t.Fatalf("go-smb2 round trip: %q, %v", back, err)
	}

	// Stop: nothing answers, nothing is left running.
	pid := s.PID()
	if pid == 0 {
		t.Fatal("PID() = 0 while running")
	}
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if proc.Alive(pid) || s.PID() != 0 {
		t.Fatalf("smbd %d alive after Stop", pid)
	}
	if left := smbdProcesses(t, s.ConfigPath()); len(left) > 0 {
		t.Fatalf("smbd processes left after Stop: %v", left)
	}
	shortCtx, c2 := context.WithTimeout(ctx, 2*time.Second)
	if _, err := goSMBRoundTrip(shortCtx, s, "down.txt", []byte("x")); err == nil {
		t.Fatal("SMB worked while smbd was stopped")
	}
	c2()

	// Start again: same address and credentials, old files still there.
	if err := s.StartAgain(ctx); err != nil {
		t.Fatal(err)
	}
	if s.PID() == 0 || s.PID() == pid {
		t.Fatalf("PID after StartAgain = %d (old %d)", s.PID(), pid)
	}
	back, err = goSMBRoundTrip(ctx, s, "again.txt", []byte("again"))
	if err != nil || string(back) != "again" {
		t.Fatalf("go-smb2 after StartAgain: %q, %v", back, err)
	}
	if _, err := os.Stat(filepath.Join(s.SharePath(), "go.txt")); err != nil {
		t.Fatalf("file from before the restart: %v", err)
	}

	// Kill takes the whole group, including per-connection children.
	if err := s.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	if left := smbdProcesses(t, s.ConfigPath()); len(left) > 0 {
		t.Fatalf("smbd processes left after Kill: %v", left)
	}
	if err := s.StartAgain(ctx); err != nil {
		t.Fatalf("start after kill: %v", err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if left := smbdProcesses(t, s.ConfigPath()); len(left) > 0 {
		t.Fatalf("smbd processes left after Close: %v", left)
	}
}

func TestPauseResume(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s := startServer(t, ctx, Options{Host: "127.0.0.7", User: "alice", Password: "s3cret-pw", Share: "data"})
	if err := s.Pause(); err != nil {
		t.Fatal(err)
	}
	pctx, c := context.WithTimeout(ctx, 500*time.Millisecond)
	_, err := goSMBRoundTrip(pctx, s, "paused.txt", []byte("x"))
	c()
	if err == nil {
		t.Fatal("SMB worked while smbd was paused")
	}
	if err := s.Resume(); err != nil {
		t.Fatal(err)
	}
	back, err := goSMBRoundTrip(ctx, s, "resumed.txt", []byte("resumed"))
	if err != nil || string(back) != "resumed" {
		t.Fatalf("after resume: %q, %v", back, err)
	}
}

func TestStartErrors(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: needs a real smbd")
	}
	if _, err := Available(); err != nil {
		t.Skipf("samba not usable here: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := Start(ctx, Options{}); err == nil || !strings.Contains(err.Error(), "Dir") {
		t.Errorf("Start without Dir: %v", err)
	}
	if _, err := Start(ctx, Options{Dir: t.TempDir(), Host: "localhost"}); err == nil {
		t.Error("Start with a host name instead of an IP succeeded")
	}
	// A port that is taken (smbd would share it through SO_REUSEPORT): the
	// error says so at once rather than waiting for ctx.
	s := startServer(t, ctx, Options{Host: "127.0.0.8"})
	start := time.Now()
	_, err := Start(ctx, Options{Dir: t.TempDir(), Host: "127.0.0.8", Port: s.Port(), Password: "pw-not-in-errors"})
	if err == nil {
		t.Fatal("second smbd on the same port started")
	}
	if strings.Contains(err.Error(), "pw-not-in-errors") {
		t.Errorf("error contains the password: %v", err)
	}
	if time.Since(start) > 15*time.Second {
		t.Errorf("failure took %v", time.Since(start))
	}
}
