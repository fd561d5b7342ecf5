package toxiproxy_test

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/octoha/octoha/internal/testbin"
	"github.com/octoha/octoha/services/toxiproxy"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testbin.Cleanup()
	os.Exit(code)
}

// Addresses on this package's own loopback network.
const (
	network  = "127.0.140.0/24"
	echoAddr = "127.0.140.20:9000"
	linkAddr = "127.0.140.21:9000"
)

func startServer(t *testing.T) *toxiproxy.Server {
	t.Helper()
	return startServerAt(t, filepath.Join(t.TempDir(), "api", "api.sock"))
}

// startServerAt starts the server with its API on the unix socket sock.
func startServerAt(t *testing.T, sock string) *toxiproxy.Server {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: runs the octoha binary")
	}
	bin, err := testbin.Octoha()
	if err != nil {
		t.Fatalf("build octoha: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := toxiproxy.Start(ctx, toxiproxy.Options{Binary: bin, Socket: sock, Allow: []string{network}, Dir: filepath.Dir(sock)})
	if err != nil {
		t.Fatalf("start toxiproxy: %v", err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

// echoServer answers every connection by echoing what it reads.
func echoServer(t *testing.T) {
	t.Helper()
	l, err := net.Listen("tcp", echoAddr)
	if err != nil {
		t.Fatalf("echo server: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
}

// roundTrip sends a byte through the link and times the echo.
func roundTrip(t *testing.T, addr string) (time.Duration, error) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	start := time.Now()
	if _, err := c.Write([]byte("x")); err != nil {
		return 0, err
	}
	b := make([]byte, 1)
	if _, err := io.ReadFull(c, b); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

func unixDial(path string) func(context.Context, string, string) (net.Conn, error) {
	return func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}
}

func portFree(addr string) bool {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	l.Close()
	return true
}

func TestToxicsAddedAndRemoved(t *testing.T) {
	s := startServer(t)
	echoServer(t)
	ctx := context.Background()
	if err := s.AddLink(ctx, "probe", linkAddr, echoAddr); err != nil {
		t.Fatal(err)
	}
	base, err := roundTrip(t, linkAddr)
	if err != nil {
		t.Fatalf("through the link without toxics: %v", err)
	}
	if err := s.AddToxic(ctx, "probe", toxiproxy.Latency("slow", toxiproxy.Downstream, 300*time.Millisecond, 0)); err != nil {
		t.Fatal(err)
	}
	l, err := s.Link(ctx, "probe")
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Toxics) != 1 || l.Toxics[0].Name != "slow" || l.Toxics[0].Type != "latency" {
		t.Fatalf("link toxics = %+v, want one latency toxic named slow", l.Toxics)
	}
	slow, err := roundTrip(t, linkAddr)
	if err != nil {
		t.Fatalf("through the slowed link: %v", err)
	}
	if slow < 300*time.Millisecond {
		t.Fatalf("round trip with 300ms latency took %v", slow)
	}
	if err := s.RemoveToxic(ctx, "probe", "slow"); err != nil {
		t.Fatal(err)
	}
	// Removing again is not an error: recoveries are idempotent.
	if err := s.RemoveToxic(ctx, "probe", "slow"); err != nil {
		t.Fatalf("second removal: %v", err)
	}
	fast, err := roundTrip(t, linkAddr)
	if err != nil {
		t.Fatal(err)
	}
	if fast >= 300*time.Millisecond {
		t.Fatalf("round trip after the toxic was removed took %v (before any toxic: %v)", fast, base)
	}

	// A cut: the disabled link stops listening; enabling restores it.
	if err := s.SetEnabled(ctx, "probe", false); err != nil {
		t.Fatal(err)
	}
	if _, err := roundTrip(t, linkAddr); err == nil {
		t.Fatal("a disabled link still carried data")
	}
	if err := s.SetEnabled(ctx, "probe", true); err != nil {
		t.Fatal(err)
	}
	if _, err := roundTrip(t, linkAddr); err != nil {
		t.Fatalf("re-enabled link: %v", err)
	}
	// Reset mid-stream: the connection is reset once data flows.
	if err := s.AddToxic(ctx, "probe", toxiproxy.ResetPeer("rst", toxiproxy.Upstream, 0)); err != nil {
		t.Fatal(err)
	}
	if _, err := roundTrip(t, linkAddr); err == nil {
		t.Fatal("reset_peer toxic: the round trip succeeded")
	}
	if err := s.RemoveToxic(ctx, "probe", "rst"); err != nil {
		t.Fatal(err)
	}
}

func TestCancelledCallsAndNothingLeftListening(t *testing.T) {
	s := startServer(t)
	echoServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	if err := s.AddLink(ctx, "probe", linkAddr, echoAddr); err != nil {
		t.Fatal(err)
	}
	if err := s.AddToxic(ctx, "probe", toxiproxy.Timeout("hole", toxiproxy.Upstream, 0)); err != nil {
		t.Fatal(err)
	}
	cancel()
	// After Ctrl-C (a cancelled context) the client refuses new work, and
	// the recovery runs on a context that is not cancelled.
	if err := s.AddToxic(ctx, "probe", toxiproxy.Latency("late", toxiproxy.Upstream, time.Second, 0)); err == nil {
		t.Fatal("AddToxic on a cancelled context succeeded")
	}
	if err := s.RemoveToxic(context.WithoutCancel(ctx), "probe", "hole"); err != nil {
		t.Fatal(err)
	}
	if _, err := roundTrip(t, linkAddr); err != nil {
		t.Fatalf("after the black hole was removed: %v", err)
	}
	pid := s.PID()
	if err := s.Close(context.Background()); err != nil {
		t.Fatalf("close: %v", err)
	}
	if s.PID() != 0 {
		t.Fatalf("toxiproxy (pid %d) still running after Close", pid)
	}
	if !portFree(linkAddr) {
		t.Errorf("%s still in use after Close", linkAddr)
	}
	if _, err := os.Stat(s.Addr()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("API socket %s after Close: %v, want it removed", s.Addr(), err)
	}
}
