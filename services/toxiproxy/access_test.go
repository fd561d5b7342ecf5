package toxiproxy_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/octoha/octoha/internal/otheruser"
	"github.com/octoha/octoha/internal/testbin"
	"github.com/octoha/octoha/services/toxiproxy"
)

// TestOtherUserHelper is the body of the probes otheruser.Run runs as nobody.
func TestOtherUserHelper(t *testing.T) { otheruser.Serve(t) }

// TestAPIOnlyForOwner: another local user (nobody) can neither reach the
// API's socket nor, through it, open a proxy on all interfaces (the
// reproduction of issue 22: 0.0.0.0:81 relaying to a loopback-only
// service). The socket sits in a private directory under a directory that
// others may traverse, as a run directory is for root.
func TestAPIOnlyForOwner(t *testing.T) {
	otheruser.Skip(t)
	base, err := os.MkdirTemp("", "octoha-tp-access-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(base) })
	if err := os.Chmod(base, 0o711); err != nil {
		t.Fatal(err)
	}
	s := startServerAt(t, filepath.Join(base, "toxiproxy", "api.sock"))
	echoServer(t)
	fi, err := os.Stat(filepath.Dir(s.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o700 {
		t.Errorf("the socket's directory has mode %#o, want 0700", perm)
	}
	res := otheruser.Run(t, "TestOtherUserHelper", []otheruser.Probe{
		{Name: "control", Kind: "dial-tcp", Target: echoAddr},
		{Name: "dial", Kind: "dial-unix", Target: s.Addr()},
		{Name: "create", Kind: "http", Method: http.MethodPost, Socket: s.Addr(), Target: "http://toxiproxy/proxies",
			Body: `{"name":"evil","listen":"0.0.0.0:81","upstream":"` + echoAddr + `"}`},
	})
	if r := res["control"]; r.Err != "" {
		t.Fatalf("%s could not reach a loopback listener at all (%s): the probes below prove nothing", otheruser.User, r.Err)
	}
	for _, name := range []string{"dial", "create"} {
		r := res[name]
		if r.Err == "" {
			t.Errorf("%s: %s got through: %s", name, otheruser.User, r.Detail)
		} else if !strings.Contains(r.Err, "permission denied") {
			t.Errorf("%s: %s failed for another reason than permission (%s): is the probe right?", name, otheruser.User, r.Err)
		}
	}
	links, err := s.Links(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(links) != 0 {
		t.Errorf("links after %s's attempts: %+v, want none", otheruser.User, links)
	}
}

// TestProxiesOnlyOnAllowedNetworks: even the owner cannot make Toxiproxy
// listen outside the cluster's network: not on all interfaces, not on
// another loopback address, not on a name; and an update may not move a
// proxy out either.
func TestProxiesOnlyOnAllowedNetworks(t *testing.T) {
	s := startServer(t)
	ctx := context.Background()
	for _, listen := range []string{"0.0.0.0:18181", "[::]:18181", "127.0.0.1:18181", "localhost:18181", "127.0.141.20:18181", ":18181"} {
		err := s.AddLink(ctx, "out", listen, echoAddr)
		var ae *toxiproxy.APIError
		if !errors.As(err, &ae) || ae.Status != http.StatusForbidden || !strings.Contains(ae.Message, toxiproxy.ErrListenRefused.Error()) {
			t.Errorf("AddLink listening on %s: %v, want 403 %q", listen, err, toxiproxy.ErrListenRefused)
		}
	}
	if err := s.AddLink(ctx, "in", linkAddr, echoAddr); err != nil {
		t.Fatalf("a link on the cluster's network: %v", err)
	}
	// Moving it out with an update is refused too; toggling it is not.
	c := &http.Client{Transport: &http.Transport{DialContext: unixDial(s.Addr())}}
	resp, err := c.Post("http://toxiproxy/proxies/in", "application/json", bytes.NewReader([]byte(`{"listen":"0.0.0.0:18182"}`)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("update moving the link to 0.0.0.0: %s, want 403", resp.Status)
	}
	if err := s.SetEnabled(ctx, "in", false); err != nil {
		t.Fatalf("disable: %v", err)
	}
	if err := s.SetEnabled(ctx, "in", true); err != nil {
		t.Fatalf("enable: %v", err)
	}
	l, err := s.Link(ctx, "in")
	if err != nil || l.Listen != linkAddr || !l.Enabled {
		t.Errorf("link after the refused update: %+v %v, want enabled on %s", l, err, linkAddr)
	}
}

// TestTCPNeedsSecret: the TCP API (the docker provider's, inside the
// cluster's network) answers only requests carrying the cluster's secret,
// and refuses to start without one.
func TestTCPNeedsSecret(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs the octoha binary")
	}
	bin, err := testbin.Octoha()
	if err != nil {
		t.Fatal(err)
	}
	const addr = "127.0.140.8:8474"
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, toxiproxy.Subcommand, "--listen", addr, "--allow", network).CombinedOutput()
	if err == nil || !strings.Contains(string(out), toxiproxy.SecretEnv) {
		t.Errorf("TCP API without a secret: %v %s, want a refusal naming $%s", err, out, toxiproxy.SecretEnv)
	}
	const secret = "0123456789abcdef0123456789abcdef"
	cmd := exec.CommandContext(ctx, bin, toxiproxy.Subcommand, "--listen", addr, "--allow", network)
	cmd.Env = append(os.Environ(), toxiproxy.SecretEnv+"="+secret)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	good := toxiproxy.NewTCPClient(addr, secret)
	for {
		if err := good.Ping(ctx); err == nil {
			break
		} else if ctx.Err() != nil {
			t.Fatalf("TCP API never answered: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, c := range []*toxiproxy.Client{toxiproxy.NewTCPClient(addr, ""), toxiproxy.NewTCPClient(addr, strings.Repeat("x", len(secret)))} {
		err := c.AddLink(ctx, "evil", linkAddr, echoAddr)
		var ae *toxiproxy.APIError
		if !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized {
			t.Errorf("AddLink without the right secret: %v, want 401", err)
		}
	}
	if err := good.AddLink(ctx, "in", linkAddr, echoAddr); err != nil {
		t.Errorf("AddLink with the secret: %v", err)
	}
}
