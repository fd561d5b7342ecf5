package lb

import (
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Issue 11 item 4: the node accepts ?apikey= (as Octopus does), and the
// load balancer wrote it into world-readable logs.
func TestLogsHoldNoQueryStringAndArePrivate(t *testing.T) {
	const secret = "API-LOGGEDKEY123456"
	for _, kind := range []Kind{HAProxy, Nginx, Caddy, Embedded} {
		t.Run(string(kind), func(t *testing.T) {
			requireKind(t, kind)
			nodes := startFakeNodes(t, 1)
			o := testOptions(t, kind, nodes)
			b := startLB(t, o)
			c := newClient(t, b)
			if r := c.do(http.MethodGet, "/api?apikey="+secret, nil, ""); r.err != nil {
				t.Fatal(r.err)
			}
			// HAProxy and nginx log a request once it ends; wait for it.
			logFile := map[Kind]string{HAProxy: "haproxy.log", Nginx: "access.log"}[kind]
			deadline := time.Now().Add(5 * time.Second)
			for logFile != "" {
				b, _ := os.ReadFile(filepath.Join(o.Dir, logFile))
				if strings.Contains(string(b), "GET /api") {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s never logged the request:\n%s", logFile, b)
				}
				time.Sleep(50 * time.Millisecond)
			}
			logs, _ := filepath.Glob(filepath.Join(o.Dir, "*.log"))
			if len(logs) == 0 {
				t.Fatal("no log files")
			}
			for _, p := range logs {
				st, err := os.Stat(p)
				if err != nil {
					t.Fatal(err)
				}
				if runtime.GOOS != "windows" && st.Mode().Perm() != 0o600 {
					t.Errorf("%s has mode %v, want 0600", filepath.Base(p), st.Mode().Perm())
				}
				if b, _ := os.ReadFile(p); strings.Contains(string(b), secret) {
					t.Errorf("%s holds the key:\n%s", filepath.Base(p), b)
				}
			}
		})
	}
}
