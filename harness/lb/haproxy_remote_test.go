package lb

import (
	"context"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// TestHAProxyConfigForContainers: host names (resolvable here, so haproxy
// -c does not warn) re-resolved at run time, runtime API on TCP.
func TestHAProxyConfigForContainers(t *testing.T) {
	o := Options{
		Listen:   "0.0.0.0:8080",
		Backends: []Backend{{"Node1", "localhost:18081"}, {"Node2", "localhost:18082"}},
		Drain:    DrainNOLB,
	}
	cfg, err := HAProxyConfig(o, HAProxyConfigOptions{StatsSocket: "ipv4@0.0.0.0:9999", Resolver: "127.0.0.11:53"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"stats socket ipv4@0.0.0.0:9999 level admin\n",
		"resolvers dns\n    nameserver dns1 127.0.0.11:53\n",
		"hold nx 3600s\n",
		"bind 0.0.0.0:8080\n",
		"http-check expect status 200 error-status L7OKC\n",
		"default-server inter 500ms fall 2 rise 2 resolvers dns resolve-prefer ipv4 init-addr last,libc,none\n",
		"server Node2 localhost:18082 check\n",
	} {
		if !strings.Contains(cfg, want) {
			t.Errorf("config lacks %q:\n%s", want, cfg)
		}
	}
	if strings.Contains(cfg, "mode 600") {
		t.Errorf("a TCP stats socket got a unix socket mode:\n%s", cfg)
	}
	checkHAProxyConfig(t, t.TempDir(), cfg)

	// Without extras it is exactly the driver's config.
	o2 := configOptions(t, HAProxy)
	plain, err := HAProxyConfig(o2, HAProxyConfigOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if plain != haproxyConfig(o2) {
		t.Errorf("HAProxyConfig without extras differs from the driver's config")
	}
	if _, err := HAProxyConfig(Options{Listen: "0.0.0.0:8080"}, HAProxyConfigOptions{StatsSocket: "ipv4@0.0.0.0:9999"}); err == nil {
		t.Error("no backends: want an error")
	}
}

// TestHAProxyStatesTCP serves a recorded `show stat` on a TCP socket, as a
// containerised HAProxy's published runtime API would.
func TestHAProxyStatesTCP(t *testing.T) {
	csv, err := os.ReadFile("testdata/show_stat.csv")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	got := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 64)
		n, _ := c.Read(buf)
		got <- string(buf[:n])
		_, _ = c.Write(csv)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	states, err := HAProxyStates(ctx, "tcp", ln.Addr().String(), []string{"Node2", "Node1", "Nope"})
	if err != nil {
		t.Fatal(err)
	}
	if cmd := <-got; cmd != "show stat\n" {
		t.Errorf("sent %q, want %q", cmd, "show stat\n")
	}
	want := []struct {
		name  string
		state State
	}{{"Node2", StateNOLB}, {"Node1", StateUp}, {"Nope", StateUnknown}}
	if len(states) != len(want) {
		t.Fatalf("got %+v", states)
	}
	for i, w := range want {
		if states[i].Name != w.name || states[i].State != w.state {
			t.Errorf("state %d = %+v, want %s %s", i, states[i], w.name, w.state)
		}
	}
	if _, err := HAProxyStates(ctx, "tcp", "127.0.0.1:1", []string{"Node1"}); err == nil {
		t.Error("nothing listening: want an error")
	}
}
