package local_test

import (
	"context"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/cluster/local"
	"github.com/octoha/octoha/harness/lb"
	"github.com/octoha/octoha/harness/traffic"
	"github.com/octoha/octoha/internal/otheruser"
)

// TestOtherUserHelper is the body of the probes otheruser.Run runs as nobody.
func TestOtherUserHelper(t *testing.T) { otheruser.Serve(t) }

// TestOtherUsersLockedOut runs a cluster as root with every link through
// Toxiproxy, in a run directory others may traverse (0711, as the default
// /tmp/octoha-0 is), stores packages, and then tries as nobody what issue
// 22 found: the Toxiproxy API on its old loopback TCP address (create a
// proxy on 0.0.0.0:81 to a node, re-point client-lb), and every file and
// socket in the run directory (the database, the stored packages, the
// logs, the control socket, HAProxy's runtime socket, Caddy's admin
// socket, Toxiproxy's socket). Each must be refused; the load balancer,
// which is public by design, must answer (so the probes did run). Two
// clusters: HAProxy on SQLite and a local directory, and Caddy on
// PostgreSQL (run as its own user) and Samba.
func TestOtherUsersLockedOut(t *testing.T) {
	otheruser.Skip(t)
	for _, tc := range []struct {
		network     string
		lb          lb.Kind
		db, storage string
		must        []string // files or sockets (relative) the probes must include
	}{
		{"127.0.152", lb.HAProxy, cluster.DBSQLite, cluster.StorageLocal,
			[]string{"db/octopus.db", "share/Packages/", "lb/haproxy.sock", "toxiproxy/api.sock", local.ControlSocket}},
		{"127.0.153", lb.Caddy, cluster.DBPostgres, cluster.StorageSMB,
			[]string{"postgres/data/PG_VERSION", "samba/share/Packages/", "lb/admin/", "toxiproxy/api.sock", local.ControlSocket}},
	} {
		t.Run(string(tc.lb)+"-"+tc.db+"-"+tc.storage, func(t *testing.T) {
			bin := needLocal(t, tc.lb, tc.db, tc.storage)
			spec := testSpec(tc.network, tc.lb, tc.db, tc.storage)
			spec.Nodes = 2
			spec.Toxiproxy = true
			lockedOut(t, bin, spec, tc.must)
		})
	}
}

func lockedOut(t *testing.T, bin string, spec cluster.Spec, must []string) {
	base, err := os.MkdirTemp("", "octoha-otheruser-run-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(base) })
	if err := os.Chmod(base, 0o711); err != nil {
		t.Fatal(err)
	}
	runDir := filepath.Join(base, "run")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, err := local.Up(ctx, spec, local.Options{RunDir: runDir, Binary: bin, Logger: testLogger(t), NoFallback: true, ReadyTimeout: 60 * time.Second})
	if err != nil {
		t.Fatalf("local.Up: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if err := c.Down(ctx); err != nil {
			t.Errorf("cleanup: Down: %v", err)
		}
	})
	ctlCtx, stopCtl := context.WithCancel(ctx)
	ctlDone := make(chan error, 1)
	go func() { ctlDone <- c.ServeControl(ctlCtx) }()
	t.Cleanup(func() { stopCtl(); <-ctlDone })
	waitUntil(t, 10*time.Second, "the control socket", func() (bool, string) {
		_, err := os.Stat(filepath.Join(runDir, local.ControlSocket))
		return err == nil, "no control socket yet"
	})
	sum, err := traffic.Upload(ctx, traffic.UploadOptions{URL: c.URL(), APIKey: c.APIKey(), Size: 64 << 10, Count: 2, Concurrency: 1, Seed: 22})
	if err != nil || sum.Err() != nil {
		t.Fatalf("upload: %v %v", err, sum.Err())
	}

	// Every file and socket in the run directory, as root sees it
	// (PostgreSQL's data directory: one file of it stands for the rest).
	var probes []otheruser.Probe
	found := map[string]bool{}
	err = filepath.WalkDir(runDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(runDir, p)
		rel = filepath.ToSlash(rel)
		switch {
		case d.IsDir() && rel == "postgres/data":
			probes = append(probes, otheruser.Probe{Name: "read postgres/data/PG_VERSION", Kind: "read", Target: filepath.Join(p, "PG_VERSION")})
			found["postgres/data/PG_VERSION"] = true
			return filepath.SkipDir
		case d.Type().IsRegular():
			probes = append(probes, otheruser.Probe{Name: "read " + rel, Kind: "read", Target: p})
			// What the nodes write (the SQLite database, packages in a
			// local directory) is 0600 too: they run with umask 077.
			if strings.HasPrefix(rel, "db/") || strings.HasPrefix(rel, "share/") {
				if fi, err := d.Info(); err == nil && fi.Mode().Perm()&0o077 != 0 {
					t.Errorf("%s has mode %#o, want no access for group or others", rel, fi.Mode().Perm())
				}
			}
		case d.Type()&fs.ModeSocket != 0:
			probes = append(probes, otheruser.Probe{Name: "dial " + rel, Kind: "dial-unix", Target: p})
		default:
			return nil
		}
		for _, m := range must {
			if rel == m || strings.HasSuffix(m, "/") && strings.HasPrefix(rel, m) {
				found[m] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range must {
		if !found[m] {
			t.Errorf("the run directory has no %s: the probes miss it (is Toxiproxy's API still a unix socket there? it is at %s)", m, c.Toxiproxy().Addr())
		}
	}
	oldAPI := "http://" + spec.Network + ".7:8474"
	node := strings.TrimPrefix(c.Nodes()[0].URL, "http://")
	probes = append(probes,
		otheruser.Probe{Name: "lb answers", Kind: "http", Method: http.MethodGet, Target: c.URL() + "/api"},
		otheruser.Probe{Name: "toxiproxy tcp: proxy on 0.0.0.0:81", Kind: "http", Method: http.MethodPost, Target: oldAPI + "/proxies",
			Body: `{"name":"evil","listen":"0.0.0.0:81","upstream":"` + node + `"}`},
		otheruser.Probe{Name: "toxiproxy tcp: re-point client-lb", Kind: "http", Method: http.MethodPost, Target: oldAPI + "/proxies/client-lb",
			Body: `{"upstream":"127.0.0.1:9"}`},
		otheruser.Probe{Name: "toxiproxy socket: proxy on 0.0.0.0:81", Kind: "http", Method: http.MethodPost, Socket: c.Toxiproxy().Addr(), Target: "http://toxiproxy/proxies",
			Body: `{"name":"evil","listen":"0.0.0.0:81","upstream":"` + node + `"}`},
	)
	res := otheruser.Run(t, "TestOtherUserHelper", probes)
	if r := res["lb answers"]; r.Err != "" {
		t.Fatalf("%s could not reach the load balancer (%s): the probes prove nothing", otheruser.User, r.Err)
	}
	for _, p := range probes {
		r := res[p.Name]
		switch {
		case p.Name == "lb answers":
		case r.Err == "":
			t.Errorf("%s: %s got through: %s", p.Name, otheruser.User, r.Detail)
		case p.Kind != "http" && !strings.Contains(r.Err, "permission denied"):
			t.Errorf("%s: refused for another reason than permission (%s): is the probe right?", p.Name, r.Err)
		}
	}
	// Nothing was changed behind the owner's back, and the cluster works.
	links, err := c.Toxiproxy().Links(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range links {
		if l.Name == "evil" || l.Name == "client-lb" && l.Upstream == "127.0.0.1:9" {
			t.Errorf("link %+v was made by %s", l, otheruser.User)
		}
	}
	directPing(t, c.URL(), http.StatusOK, 10*time.Second)
	if _, err := traffic.Upload(ctx, traffic.UploadOptions{URL: c.URL(), APIKey: c.APIKey(), Size: 64 << 10, Count: 1, Seed: 23}); err != nil {
		t.Errorf("upload after the probes: %v", err)
	}
}
