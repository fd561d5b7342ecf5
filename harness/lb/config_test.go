package lb

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func configOptions(t *testing.T, kind Kind) Options {
	o, err := Options{
		Kind:     kind,
		Listen:   "127.0.0.110:18080",
		Backends: []Backend{{"Node1", "127.0.0.11:8080"}, {"Node2", "127.0.0.12:8080"}},
		Dir:      shortTempDir(t),
	}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// checkHAProxyConfig runs `haproxy -c` on cfg when HAProxy is installed.
func checkHAProxyConfig(t *testing.T, dir, cfg string) {
	t.Helper()
	bin, err := findBinary("haproxy", "")
	if err != nil {
		t.Logf("haproxy not installed; config checked textually only: %v", err)
		return
	}
	path := filepath.Join(dir, "check.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "-c", "-f", path).CombinedOutput()
	if err != nil || strings.Contains(string(out), "WARNING") {
		t.Errorf("haproxy -c: %v\n%s\n%s", err, out, cfg)
	}
}

func TestHAProxyConfig(t *testing.T) {
	o := configOptions(t, HAProxy)
	cfg := haproxyConfig(o)
	for _, want := range []string{
		"stats socket " + filepath.Join(o.Dir, "haproxy.sock") + " mode 600 level admin",
		"log stdout format raw local0 info",
		"log-format " + haproxyLogFormat,
		"timeout connect 5s", "timeout client 600s", "timeout server 900s", "timeout http-request 30s",
		"bind 127.0.0.110:18080",
		"balance roundrobin",
		"option httpchk GET /api/octopusservernodes/ping",
		"http-check expect status 200\n",
		"default-server inter 500ms fall 2 rise 2\n",
		"server Node1 127.0.0.11:8080 check\n",
	} {
		if !strings.Contains(cfg, want) {
			t.Errorf("config lacks %q:\n%s", want, cfg)
		}
	}
	for _, not := range []string{"cookie", "L7OKC", "shutdown-sessions", "http-buffer-request", "deny", "{+Q}r", "%HU", "%HQ", "option httplog"} {
		if strings.Contains(cfg, not) {
			t.Errorf("default config has %q:\n%s", not, cfg)
		}
	}
	checkHAProxyConfig(t, o.Dir, cfg)

	o.Drain, o.Sticky, o.ShutdownSessions = DrainNOLB, true, true
	cfg = haproxyConfig(o)
	for _, want := range []string{
		"http-check send meth GET uri /api/octopusservernodes/ping",
		"http-check expect status 200,418\n",
		"http-check expect status 200 error-status L7OKC",
		"on-marked-down shutdown-sessions",
		"cookie SRV insert indirect nocache",
		"server Node2 127.0.0.12:8080 check cookie Node2",
	} {
		if !strings.Contains(cfg, want) {
			t.Errorf("NOLB/sticky config lacks %q:\n%s", want, cfg)
		}
	}
	checkHAProxyConfig(t, o.Dir, cfg)
}

func TestNginxConfig(t *testing.T) {
	bin, binErr := findBinary("nginx", "")
	for _, kind := range []Kind{Nginx, NginxDefaults} {
		t.Run(string(kind), func(t *testing.T) {
			o := configOptions(t, kind)
			cfg := nginxConfig(o, true, map[string]bool{"Node2": true})
			common := []string{
				"user root;", "pid nginx.pid;", "client_body_temp_path tmp/client_body;",
				"listen 127.0.0.110:18080;", "proxy_pass http://octo;", "proxy_set_header Host $host;",
				"server 127.0.0.11:8080", "127.0.0.12:8080", "down;  # Node2",
			}
			tuned := []string{
				"client_max_body_size 0;", "proxy_request_buffering off;", "proxy_http_version 1.1;",
				"max_fails=3 fail_timeout=10s", "keepalive 16;", "proxy_read_timeout 900s;",
				"client_body_timeout 600s;",
			}
			for _, want := range common {
				if !strings.Contains(cfg, want) {
					t.Errorf("config lacks %q:\n%s", want, cfg)
				}
			}
			for _, s := range tuned {
				if has := strings.Contains(cfg, s); has != (kind == Nginx) {
					t.Errorf("%s config: has %q = %v:\n%s", kind, s, has, cfg)
				}
			}
			if strings.Contains(nginxConfig(o, false, nil), "user ") {
				t.Error("non-root config sets user")
			}
			if binErr != nil {
				t.Logf("nginx not installed; config checked textually only: %v", binErr)
				return
			}
			for _, d := range nginxTempDirs {
				if err := os.MkdirAll(filepath.Join(o.Dir, d.dir), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(filepath.Join(o.Dir, "nginx.conf"), []byte(cfg), 0o644); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			n := &nginxLB{o: o, bin: bin}
			if out, err := exec.CommandContext(ctx, bin, n.args("-t")...).CombinedOutput(); err != nil {
				t.Errorf("nginx -t: %v\n%s\n%s", err, out, cfg)
			}
		})
	}
}

// The polling Tentacles' layouts: one TCP frontend per node on
// consecutive ports, and one balanced frontend; haproxy -c accepts them.
func TestHAProxyPollingConfig(t *testing.T) {
	o := configOptions(t, HAProxy)
	o.Polling = &Polling{UniqueHost: "127.0.0.110", Port: 10943, ViaLB: "127.0.0.109:10943",
		Backends: []Backend{{"Node1", "127.0.0.11:10943"}, {"Node2", "127.0.0.12:10943"}}}
	cfg := haproxyConfig(o)
	for _, want := range []string{
		"defaults\n    mode tcp\n",
		"frontend polling-Node1\n    bind 127.0.0.110:10943\n",
		"frontend polling-Node2\n    bind 127.0.0.110:10944\n",
		"backend polling-Node2\n    default-server inter 500ms fall 2 rise 2\n    server Node2 127.0.0.12:10943 check\n",
		"frontend polling-lb\n    bind 127.0.0.109:10943\n",
		"backend polling-all\n    balance roundrobin\n",
	} {
		if !strings.Contains(cfg, want) {
			t.Errorf("config lacks %q:\n%s", want, cfg)
		}
	}
	checkHAProxyConfig(t, o.Dir, cfg)
}
