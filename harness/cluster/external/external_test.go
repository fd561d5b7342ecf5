package external

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/cluster/local"
	"github.com/octoha/octoha/harness/lb"
	"github.com/octoha/octoha/internal/testbin"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testbin.Cleanup()
	os.Exit(code)
}

// A simulated cluster stands in for the real one: the external provider
// must only use what a real cluster offers (URLs, an API key, hooks).
func TestConnectToARunningCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: starts a local cluster")
	}
	bin, err := testbin.Octoha()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	spec := cluster.Defaults()
	spec.Name, spec.Network, spec.Nodes = "ext-test", "127.0.26", 2
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	lc, err := local.Up(ctx, spec, local.Options{Binary: bin, Logger: quiet, RunDir: filepath.Join(t.TempDir(), "run")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lc.Down(context.Background()) })

	marker := filepath.Join(t.TempDir(), "hooks.log")
	ext := cluster.Spec{Provider: cluster.ProviderExternal, External: &cluster.ExternalSpec{
		LBURL:     lc.URL(),
		APIKeyEnv: "OCTOHA_EXT_TEST_KEY",
		Nodes:     []cluster.ExternalNode{{Name: "Node1", URL: lc.Nodes()[0].URL}, {Name: "Node2", URL: lc.Nodes()[1].URL}},
		Hooks:     map[string]string{HookKill: "echo kill {node} >> " + marker, HookStart: "echo start {node} >> " + marker},
	}}

	t.Setenv("OCTOHA_EXT_TEST_KEY", "")
	if _, err := Connect(ctx, ext, Options{Logger: quiet}); err == nil || !strings.Contains(err.Error(), "$OCTOHA_EXT_TEST_KEY") {
		t.Fatalf("missing key: %v", err)
	}
	t.Setenv("OCTOHA_EXT_TEST_KEY", "API-WRONGKEY")
	if _, err := Connect(ctx, ext, Options{Logger: quiet}); err == nil || !strings.Contains(err.Error(), "API key") {
		t.Fatalf("wrong key: %v", err)
	}
	t.Setenv("OCTOHA_EXT_TEST_KEY", lc.APIKey())
	c, err := Connect(ctx, ext, Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if n := c.Nodes(); len(n) != 2 || n[0].ID != "OctopusServerNodes-1" || n[1].ID != "OctopusServerNodes-2" {
		t.Fatalf("nodes (IDs learned from their ping bodies) = %+v", n)
	}
	states, _ := c.LBStates(ctx)
	for _, s := range states {
		if s.State != lb.StateUnknown {
			t.Fatalf("an external load balancer's state is not observable, got %+v", s)
		}
	}
	if err := c.Down(ctx); err != nil {
		t.Fatal(err)
	}

	// Destructive faults: refused until allowed, then only with hooks.
	if err := c.Can(cluster.CapKill); err == nil || !strings.Contains(err.Error(), "allowDestructive") {
		t.Fatalf("kill without permission: %v", err)
	}
	if err := c.Can(cluster.CapDrain); err != nil {
		t.Fatalf("drain must always be possible: %v", err)
	}
	ext.External.AllowDestructive = true
	c, err = Connect(ctx, ext, Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Can(cluster.CapKill); err != nil {
		t.Fatalf("kill with hooks: %v", err)
	}
	if err := c.Can(cluster.CapDBOutage); err == nil || !strings.Contains(err.Error(), "db-stop") {
		t.Fatalf("db outage without hooks: %v", err)
	}
	if err := c.KillNode(ctx, "Node2"); err != nil {
		t.Fatal(err)
	}
	if err := c.StartNode(ctx, "Node2"); err != nil { // the node answers: the wait returns at once
		t.Fatal(err)
	}
	b, _ := os.ReadFile(marker)
	if string(b) != "kill Node2\nstart Node2\n" {
		t.Fatalf("hooks ran as %q", b)
	}
	if err := c.PauseNode(ctx, "Node1"); err == nil {
		t.Fatal("pause without a pause hook succeeded")
	}
}

func TestConnectRefusesIncompleteSpecs(t *testing.T) {
	ctx := context.Background()
	for _, ext := range []*cluster.ExternalSpec{nil, {LBURL: "http://127.0.0.1:1"}, {LBURL: "http://127.0.0.1:1", Nodes: []cluster.ExternalNode{{Name: "A"}}}} {
		t.Setenv(DefaultAPIKeyEnv, "API-X")
		if _, err := Connect(ctx, cluster.Spec{External: ext}, Options{}); err == nil {
			t.Errorf("%+v accepted", ext)
		}
	}
}

// Issue 11 item 6: a node name goes into a hook's shell command only when
// it is a plain name, and then quoted; the hook also gets it in
// $OCTOHA_NODE.
func TestHookCommandValidatesAndQuotesNodeNames(t *testing.T) {
	for _, bad := range []string{"Node1; rm -rf /tmp/x", "$(id)", "a b", "`x`", "-rf", "", "Node1\n"} {
		if bad == "" {
			continue // "" is the database and share hooks' (no node)
		}
		if cmd, err := HookCommand("stop {node}", bad); err == nil {
			t.Errorf("node name %q accepted: %q", bad, cmd)
		}
	}
	cmd, err := HookCommand("ssh {node} 'sudo systemctl stop OctopusDeploy'", "octo-1.staging")
	if err != nil || cmd != "ssh 'octo-1.staging' 'sudo systemctl stop OctopusDeploy'" {
		t.Fatalf("HookCommand = %q, %v", cmd, err)
	}
	if got := ShellQuote("it's"); got != `'it'\''s'` {
		t.Fatalf("ShellQuote = %s", got)
	}
	// The hook really runs with the quoted name and $OCTOHA_NODE set.
	out := filepath.Join(t.TempDir(), "hook.out")
	c := &Cluster{allow: true, hooks: map[string]string{HookStop: "printf '%s %s' {node} \"$OCTOHA_NODE\" > " + ShellQuote(out)}, log: slog.New(slog.DiscardHandler), hookTO: 10 * time.Second}
	if err := c.StopNode(context.Background(), "Node2"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(out); string(b) != "Node2 Node2" {
		t.Fatalf("hook wrote %q", b)
	}
	if err := c.StopNode(context.Background(), "Node2; touch "+out+".pwned"); err == nil {
		t.Fatal("a hook ran with a name holding shell syntax")
	}
	if _, err := os.Stat(out + ".pwned"); err == nil {
		t.Fatal("shell syntax in a node name was executed")
	}
}
