package docker

import (
	"context"
	"flag"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/lb"
	"github.com/octoha/octoha/internal/proc"
)

var update = flag.Bool("update", false, "rewrite docker/compose/haproxy.cfg from harness/lb")

// repoRoot is the module root, three levels up from this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root not found at %s: %v", root, err)
	}
	return root
}

func composeBinary(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("docker-compose")
	if err != nil {
		t.Skip("docker-compose is not installed (Debian: apt-get install docker-compose); docker-compose.yml not validated")
	}
	return bin
}

const composeHeader = "# HAProxy config of docker-compose.yml, rendered by harness/lb for its\n" +
	"# topology. Regenerate: go test ./harness/cluster/docker -run TestComposeHAProxyConfig -update\n"

// composeHAProxyConfig renders the config for the compose topology: the
// harness's own HAProxy config (same checks and timeouts as every run).
func composeHAProxyConfig(t *testing.T) string {
	t.Helper()
	var backends []lb.Backend
	for i := range 3 {
		backends = append(backends, lb.Backend{Name: cluster.NodeName(i), Addr: "node" + strconv.Itoa(i+1) + ":8080"})
	}
	cfg, err := lb.HAProxyConfig(lb.Options{Listen: "0.0.0.0:8080", Backends: backends},
		lb.HAProxyConfigOptions{StatsSocket: HAProxyRuntimeSocket + " mode 600", Resolver: dockerDNS})
	if err != nil {
		t.Fatal(err)
	}
	return composeHeader + cfg
}

// TestComposeHAProxyConfig keeps docker/compose/haproxy.cfg equal to what
// harness/lb renders, so the compose stack balances like the harness.
func TestComposeHAProxyConfig(t *testing.T) {
	path := filepath.Join(repoRoot(t), "docker", "compose", "haproxy.cfg")
	want := composeHAProxyConfig(t)
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("%s is stale; regenerate it with -update. Want:\n%s", path, want)
	}
}

// TestComposeConfigValid runs `docker-compose config -q` on the file with
// its defaults (official images) and with docker/compose/local.env.
func TestComposeConfigValid(t *testing.T) {
	bin := composeBinary(t)
	root := repoRoot(t)
	// No fixed default API key: without OCTOHA_API_KEY the file is refused,
	// naming the variable.
	{
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cmd := exec.CommandContext(ctx, bin, "-f", "docker-compose.yml", "config", "-q")
		cmd.Dir = root
		cmd.Env = withoutVar(os.Environ(), "OCTOHA_API_KEY")
		out, err := cmd.CombinedOutput()
		cancel()
		if err == nil || !strings.Contains(string(out), "OCTOHA_API_KEY") {
			t.Errorf("docker-compose config without OCTOHA_API_KEY: %v %s, want a refusal naming it (no fixed default key)", err, out)
		}
	}
	keyed := append(withoutVar(os.Environ(), "OCTOHA_API_KEY"), "OCTOHA_API_KEY=API-COMPOSECONFIGTEST00000000")
	for _, args := range [][]string{
		{"-f", "docker-compose.yml", "config", "-q"},
		{"--env-file", filepath.Join("docker", "compose", "local.env"), "-f", "docker-compose.yml", "config", "-q"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Dir = root
		cmd.Env = keyed
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			t.Errorf("docker-compose %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	// The defaults are the official images.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-f", "docker-compose.yml", "config")
	cmd.Dir = root
	cmd.Env = withoutImageVars(keyed)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("docker-compose config: %v", err)
	}
	// The runtime API (level admin) is published nowhere.
	if strings.Contains(string(out), "9999") || !strings.Contains(string(out), "127.0.0.1") {
		t.Errorf("compose config publishes HAProxy's runtime API port:\n%s", out)
	}
	for _, img := range []string{"mcr.microsoft.com/mssql/server:", "haproxy:2.6", "samba", "127.0.0.1:8080"} {
		if !strings.Contains(string(out), img) {
			t.Errorf("default compose config lacks %q:\n%s", img, out)
		}
	}
}

// withoutVar drops name from env.
func withoutVar(env []string, name string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// withoutImageVars drops OCTOHA_IMAGE_* so compose's defaults show.
func withoutImageVars(env []string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, "OCTOHA_IMAGE_") && !strings.HasPrefix(kv, "OCTOHA_DB_DSN=") {
			out = append(out, kv)
		}
	}
	return out
}

// TestComposeUpLocal starts docker-compose.yml with docker/compose/local.env
// (the images `make images` builds) on free loopback ports and checks that
// HAProxy balances over three nodes that all report UP.
func TestComposeUpLocal(t *testing.T) {
	bin := composeBinary(t)
	needDocker(t)
	root := repoRoot(t)
	project := "octohacompose" + newRunID()
	env := os.Environ()
	ports := map[string]int{}
	// The compose file has no default key: without one it refuses to start.
	env = append(env, "OCTOHA_API_KEY=API-"+strings.ToUpper(randomSecret(13)))
	for _, v := range []string{"OCTOHA_LB_PORT", "OCTOHA_NODE1_PORT", "OCTOHA_NODE2_PORT", "OCTOHA_NODE3_PORT"} {
		p, err := proc.FreePort("127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		ports[v] = p
		env = append(env, v+"="+strconv.Itoa(p))
	}
	run := func(ctx context.Context, args ...string) ([]byte, error) {
		full := append([]string{"--env-file", filepath.Join(root, "docker", "compose", "local.env"), "-f", filepath.Join(root, "docker-compose.yml"), "-p", project}, args...)
		cmd := exec.CommandContext(ctx, bin, full...)
		cmd.Dir = root
		cmd.Env = env
		return cmd.CombinedOutput()
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if out, err := run(ctx, "down", "-v", "--remove-orphans", "-t", "5"); err != nil {
			t.Errorf("docker-compose down: %v\n%s", err, out)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	if out, err := run(ctx, "up", "-d"); err != nil {
		t.Fatalf("docker-compose up: %v\n%s", err, out)
	}
	lbURL := "http://127.0.0.1:" + strconv.Itoa(ports["OCTOHA_LB_PORT"])
	wctx, wcancel := context.WithTimeout(ctx, 90*time.Second)
	defer wcancel()
	names := []string{"Node1", "Node2", "Node3"}
	var last []lb.ServerState
	for {
		// The runtime API is a unix socket inside the container, as in the
		// provider: read through the engine.
		var states []lb.ServerState
		out, err := run(wctx, "exec", "-T", "lb", "sh", "-c", `printf '%s\n' "$1" | socat -t 5 stdio unix-connect:`+HAProxyRuntimeSocket, "sh", "show stat")
		if err == nil {
			states, err = lb.HAProxyStatesFrom(string(out), names)
		}
		up := 0
		if err == nil {
			last = states
			for _, s := range states {
				if s.State == lb.StateUp && !strings.HasPrefix(s.Check, "INI") {
					up++
				}
			}
		}
		if up == 3 {
			break
		}
		select {
		case <-wctx.Done():
			out, _ := run(context.Background(), "logs", "--tail", "10")
			t.Fatalf("compose stack not ready (HAProxy: %+v): %v\n%s", last, wctx.Err(), out)
		case <-time.After(200 * time.Millisecond):
		}
	}
	t.Logf("compose stack ready in %v", time.Since(start).Round(time.Millisecond))
	seen := map[string]int{}
	hc := &http.Client{Timeout: 5 * time.Second}
	for range 12 {
		code, node, err := cluster.PingStatus(ctx, hc, lbURL)
		if err != nil || code != http.StatusOK {
			t.Fatalf("ping through compose HAProxy: %d %v", code, err)
		}
		seen[node]++
	}
	for _, n := range names {
		if seen[n] == 0 {
			t.Errorf("%s got no ping through HAProxy: %v", n, seen)
		}
	}
	code, node, err := cluster.PingStatus(ctx, hc, "http://127.0.0.1:"+strconv.Itoa(ports["OCTOHA_NODE2_PORT"]))
	if err != nil || code != http.StatusOK || node != "Node2" {
		t.Errorf("Node2 directly: %d %q %v", code, node, err)
	}
}
