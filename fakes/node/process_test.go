package node_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha1" //nolint:gosec
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/octoha/octoha/fakes/blob"
	"github.com/octoha/octoha/internal/proc"
	"github.com/octoha/octoha/internal/testbin"
	"github.com/octoha/octoha/octopusapi"
	"github.com/octoha/octoha/services/postgres"
	"github.com/octoha/octoha/services/samba"
)

const procKey = "API-PROCESSTEST00000000000000001"

func TestMain(m *testing.M) {
	code := m.Run()
	testbin.Cleanup()
	os.Exit(code)
}

// backend is one shared database + share setup for the node processes.
type backend struct {
	dsn, packages string
	env           []string
	files         func(t testing.TB) []blob.Info
}

func sqliteLocal(t testing.TB) backend {
	dir := t.TempDir()
	pk := filepath.Join(dir, "Packages")
	return backend{
		dsn: "sqlite:" + filepath.Join(dir, "octopus.db"), packages: pk,
		files: func(t testing.TB) []blob.Info { return walk(t, pk, "") },
	}
}

func postgresSamba(t testing.TB) backend {
	b, _ := postgresSambaWithServer(t)
	return b
}

func postgresSambaWithServer(t testing.TB) (backend, *samba.Server) {
	if testing.Short() {
		t.Skip("-short: skipping the PostgreSQL + Samba processes")
	}
	if _, err := postgres.Available(); err != nil {
		t.Skipf("PostgreSQL not installed (make deps installs it): %v", err)
	}
	if _, err := samba.Available(); err != nil {
		t.Skipf("Samba not usable here (make deps installs it; smbd needs root): %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pg, err := postgres.Start(ctx, postgres.Options{Host: "127.0.0.5"})
	if err != nil {
		t.Fatalf("start PostgreSQL: %v", err)
	}
	t.Cleanup(func() { pg.Close(context.Background()) })
	smb, err := samba.Start(ctx, samba.Options{Dir: t.TempDir(), Host: "127.0.0.6"})
	if err != nil {
		t.Fatalf("start Samba: %v", err)
	}
	t.Cleanup(func() { smb.Close(context.Background()) })
	loc := smb.URLWithoutPassword("Packages")
	return backend{
		dsn: pg.DSN(), packages: loc,
		env: []string{blob.PasswordEnv + "=" + smb.Password()},
		files: func(t testing.TB) []blob.Info {
			return walk(t, loc, smb.Password())
		},
	}, smb
}

func walk(t testing.TB, loc, password string) []blob.Info {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	st, err := blob.Open(ctx, loc, blob.WithPassword(password))
	if err != nil {
		t.Fatalf("open %s: %v", blob.Redact(loc), err)
	}
	defer st.Close()
	files, err := st.Walk(ctx, "")
	if err != nil {
		t.Fatalf("walk: %v", err)
	}
	return files
}

type nodeProc struct {
	name, url string
	p         *proc.Process
	log       *bytes.Buffer
}

// freePortOnBoth finds a port free on both addresses ("unique address, same port").
func freePortOnBoth(t testing.TB, hosts ...string) int {
	t.Helper()
	for range 50 {
		l, err := net.Listen("tcp", hosts[0]+":0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		ok := true
		for _, h := range hosts[1:] {
			l2, err := net.Listen("tcp", net.JoinHostPort(h, strconv.Itoa(port)))
			if err != nil {
				ok = false
				break
			}
			l2.Close()
		}
		if ok {
			return port
		}
	}
	t.Fatal("no common free port")
	return 0
}

func startNode(t testing.TB, b backend, i, port int) *nodeProc {
	t.Helper()
	bin, err := testbin.Octoha()
	if err != nil {
		t.Fatal(err)
	}
	host := "127.0.0." + strconv.Itoa(10+i)
	name := "Node" + strconv.Itoa(i)
	var logBuf bytes.Buffer
	p, err := proc.Start(proc.Spec{
		Name: name, Path: bin, Log: &syncWriter{w: &logBuf},
		Args: []string{"node", "--id", "OctopusServerNodes-" + strconv.Itoa(i), "--name", name,
			"--listen", net.JoinHostPort(host, strconv.Itoa(port)), "--packages", b.packages,
			"--heartbeat", "200ms", "--unhealthy-after", "1s"},
		Env: append(os.Environ(), append(b.env, "OCTOHA_DB="+b.dsn, "OCTOHA_API_KEY="+procKey)...),
	})
	if err != nil {
		t.Fatal(err)
	}
	n := &nodeProc{name: name, url: "http://" + net.JoinHostPort(host, strconv.Itoa(port)), p: p, log: &logBuf}
	t.Cleanup(func() {
		p.Kill(context.Background())
		if t.Failed() {
			t.Logf("%s log:\n%s", name, logBuf.String())
		}
	})
	n.waitPing(t, 200, 30*time.Second)
	return n
}

func (n *nodeProc) ping(t testing.TB) int {
	resp, err := http.Get(n.url + octopusapi.PingPath)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func (n *nodeProc) waitPing(t testing.TB, want int, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		if got := n.ping(t); got == want {
			return time.Since(start)
		}
		if n.p.Exited() {
			t.Fatalf("%s exited: %v\n%s", n.name, n.p.Err(), n.log.String())
		}
		if time.Since(start) > within {
			t.Fatalf("%s ping never answered %d within %v (last %d)", n.name, want, within, n.ping(t))
		}
		time.Sleep(20 * time.Millisecond) // polling a condition with a deadline
	}
}

func request(t testing.TB, method, url string, body io.Reader, hdr ...string) (int, []byte, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(method, url, body)
	req.Header.Set(octopusapi.HeaderAPIKey, procKey)
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] == "" {
			req.Header.Del(hdr[i])
		} else {
			req.Header.Set(hdr[i], hdr[i+1])
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header
}

func upload(t *testing.T, base, mode, file string, content []byte) (int, []byte) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, _ := mw.CreateFormFile("file", file)
	fw.Write(content)
	mw.Close()
	code, body, _ := request(t, http.MethodPost, base+octopusapi.UploadPath("Spaces-1", mode), &buf, "Content-Type", mw.FormDataContentType())
	return code, body
}

func hexSHA1(b []byte) string {
	s := sha1.Sum(b) //nolint:gosec
	return hex.EncodeToString(s[:])
}

// TestTwoNodeProcesses runs two node processes on 127.0.0.11 and .12 (same
// port) sharing a database and a share, for both embedded and real backends.
func TestTwoNodeProcesses(t *testing.T) {
	for name, mk := range map[string]func(testing.TB) backend{"sqlite+local": sqliteLocal, "postgres+samba": postgresSamba} {
		t.Run(name, func(t *testing.T) {
			b := mk(t)
			port := freePortOnBoth(t, "127.0.0.11", "127.0.0.12")
			a := startNode(t, b, 1, port)
			bn := startNode(t, b, 2, port)

			// Drain B through A: B's ping turns 418 within one heartbeat.
			code, body, _ := request(t, http.MethodPut, a.url+octopusapi.NodePath("OctopusServerNodes-2"), strings.NewReader(`{"Id":"OctopusServerNodes-2","IsInMaintenanceMode":true}`))
			if code != 200 {
				t.Fatalf("drain via A: %d %s", code, body)
			}
			took := bn.waitPing(t, http.StatusTeapot, 2*time.Second)
			t.Logf("B answered 418 %v after the drain through A (heartbeat 200ms)", took)
			if a.ping(t) != 200 {
				t.Fatal("A stopped serving when B was drained")
			}
			request(t, http.MethodPut, a.url+octopusapi.NodePath("OctopusServerNodes-2"), strings.NewReader(`{"Id":"OctopusServerNodes-2","IsInMaintenanceMode":false}`))
			bn.waitPing(t, 200, 2*time.Second)

			// Upload through A, read back through B.
			content := make([]byte, 3<<20+17)
			rand.Read(content)
			code, body = upload(t, a.url, octopusapi.FailIfExists, "Shared.Pkg.1.0.0.zip", content)
			if code != 201 {
				t.Fatalf("upload via A: %d %s", code, body)
			}
			code, got, hdr := request(t, http.MethodGet, bn.url+octopusapi.PackageRawPath("Spaces-1", "packages-Shared.Pkg.1.0.0"), nil)
			if code != 200 || !bytes.Equal(got, content) || hdr.Get(octopusapi.HeaderNode) != "Node2" {
				t.Fatalf("read back via B: %d, %d bytes, node %q", code, len(got), hdr.Get(octopusapi.HeaderNode))
			}
			var meta octopusapi.Package
			_, mb, _ := request(t, http.MethodGet, bn.url+octopusapi.PackagePath("Spaces-1", "packages-Shared.Pkg.1.0.0"), nil)
			if json.Unmarshal(mb, &meta) != nil || meta.Hash != hexSHA1(content) {
				t.Fatalf("metadata via B: %s", mb)
			}

			// Duplicates through B, in each mode.
			other := []byte("other content")
			if code, body := upload(t, bn.url, octopusapi.FailIfExists, "Shared.Pkg.1.0.0.zip", other); code != 409 {
				t.Fatalf("FailIfExists duplicate: %d %s", code, body)
			}
			if code, body := upload(t, bn.url, octopusapi.IgnoreIfExists, "Shared.Pkg.1.0.0.zip", other); code != 200 || !strings.Contains(string(body), hexSHA1(content)) {
				t.Fatalf("IgnoreIfExists: %d %s", code, body)
			}
			if code, body := upload(t, bn.url, octopusapi.OverwriteExisting, "Shared.Pkg.1.0.0.zip", other); code != 201 || !strings.Contains(string(body), hexSHA1(other)) {
				t.Fatalf("OverwriteExisting: %d %s", code, body)
			}
			if _, got, _ := request(t, http.MethodGet, a.url+octopusapi.PackageRawPath("Spaces-1", "packages-Shared.Pkg.1.0.0"), nil); !bytes.Equal(got, other) {
				t.Fatal("A does not serve the overwritten content")
			}

			// Bad input.
			if code, _ := upload(t, a.url, "", "../escape.1.0.0.zip", other); code != 400 {
				t.Fatalf("escaping name: %d", code)
			}
			if code, _, _ := request(t, http.MethodGet, a.url+octopusapi.NodesPath, nil, octopusapi.HeaderAPIKey, ""); code != 401 {
				t.Fatalf("no key: %d", code)
			}
			if code, _, _ := request(t, http.MethodGet, a.url+octopusapi.NodesPath, nil, octopusapi.HeaderAPIKey, "API-NOPE"); code != 401 {
				t.Fatalf("wrong key: %d", code)
			}

			// SIGKILL A in the middle of an upload; B sweeps A's partial file
			// once A's heartbeat is stale, leaving the share consistent.
			killMidUpload(t, a, b)

			// SIGTERM: graceful exit.
			if err := bn.p.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			if err := bn.p.Wait(ctx); err != nil || bn.p.Err() != nil {
				t.Fatalf("B did not exit cleanly on SIGTERM: %v %v", err, bn.p.Err())
			}
			for _, f := range b.files(t) {
				if strings.Contains(f.Name, ".octoha-tmp") {
					t.Fatalf("temporary file left: %s", f.Name)
				}
			}
		})
	}
}

func killMidUpload(t *testing.T, a *nodeProc, b backend) {
	t.Helper()
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	req, _ := http.NewRequest(http.MethodPost, a.url+octopusapi.UploadPath("Spaces-1", octopusapi.FailIfExists), pr)
	req.Header.Set(octopusapi.HeaderAPIKey, procKey)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	done := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			err = fmt.Errorf("upload answered %d", resp.StatusCode)
		}
		done <- err
	}()
	fw, _ := mw.CreateFormFile("file", "Killed.Mid.1.0.0.zip")
	chunk := make([]byte, 1<<20)
	tempSeen := func() bool {
		for _, f := range b.files(t) {
			if strings.Contains(f.Name, ".octoha-tmp/OctopusServerNodes-1_") {
				return true
			}
		}
		return false
	}
	deadline := time.Now().Add(10 * time.Second)
	for !tempSeen() {
		if _, err := fw.Write(chunk); err != nil {
			t.Fatalf("write upload body: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatal("node A never created a temporary file")
		}
	}
	if err := a.p.Kill(context.Background()); err != nil {
		t.Fatal(err)
	}
	pw.CloseWithError(io.ErrClosedPipe)
	if err := <-done; err == nil {
		t.Fatal("upload to a killed node reported success")
	}
	// Node B is alive; it must remove A's partial file after A goes stale
	// (OfflineAfter = max(5 heartbeats, 5s)) plus a janitor pass (5s).
	deadline = time.Now().Add(20 * time.Second)
	for tempSeen() {
		if time.Now().After(deadline) {
			t.Fatal("the killed node's partial upload was never swept")
		}
		time.Sleep(200 * time.Millisecond) // polling a condition with a deadline
	}
	for _, f := range b.files(t) {
		if strings.Contains(f.Name, "Killed.Mid") {
			t.Fatalf("a killed upload left %s", f.Name)
		}
	}
}

// syncWriter serialises writes from a child's stdout and stderr.
type syncWriter struct {
	w  io.Writer
	mu chanMutex
}

type chanMutex struct{ ch chan struct{} }

func (m *chanMutex) lock() {
	if m.ch == nil {
		m.ch = make(chan struct{}, 1)
	}
	m.ch <- struct{}{}
}
func (m *chanMutex) unlock() { <-m.ch }

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.lock()
	defer s.mu.unlock()
	return s.w.Write(p)
}
