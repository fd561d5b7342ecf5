package node

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/octoha/octoha/fakes/store"
	"github.com/octoha/octoha/octopusapi"
)

// Bad input and stalled clients: issue 11, items 10 and 11.

// recordingHandler keeps the log records at or above Warn.
type recordingHandler struct {
	mu      sync.Mutex
	records []slog.Record
}

func (h *recordingHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (h *recordingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, r.Clone())
	return nil
}
func (h *recordingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordingHandler) WithGroup(string) slog.Handler      { return h }

// at returns the messages logged at level l, with their attributes.
func (h *recordingHandler) at(l slog.Level) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, r := range h.records {
		if r.Level != l {
			continue
		}
		s := r.Message
		r.Attrs(func(a slog.Attr) bool { s += " " + a.String(); return true })
		out = append(out, s)
	}
	return out
}

func withLogger(h slog.Handler) nodeOpt {
	return func(c *Config) { c.Logger = slog.New(h) }
}

// Item 10: paging parameters that overflow, on every list endpoint.
func TestPagingClamped(t *testing.T) {
	a := newTestNode(t, nil)
	newTestNode(t, a) // two nodes, so that skip=1 leaves one to window
	for _, v := range []string{"1.0.0", "2.0.0", "3.0.0"} {
		if r, body := a.upload(t, "", "Page."+v+".zip", []byte(v)); r.StatusCode != 201 {
			t.Fatalf("upload = %d %s", r.StatusCode, body)
		}
	}
	const maxInt64 = "9223372036854775807"
	for _, tc := range []struct {
		path  string
		items int // with skip=1 and an enormous take
	}{
		{octopusapi.NodesPath, 1},
		{octopusapi.PackagesPath("Spaces-1"), 2},
		{"/api/packages", 2},
		{octopusapi.SpacesPath, 0},
		{octopusapi.TasksPath, 0},
	} {
		for _, q := range []string{
			"skip=1&take=" + maxInt64,
			"skip=" + maxInt64 + "&take=" + maxInt64,
			"skip=1&take=99999999999999999999999",
			"skip=-99999999999999999999999&take=-1",
			"skip=1&take=2147483647",
		} {
			resp, body := a.do(t, http.MethodGet, tc.path+"?"+q, nil, nil)
			var page struct {
				Items        []json.RawMessage
				ItemsPerPage int
				Links        map[string]string
			}
			if resp.StatusCode != 200 || json.Unmarshal(body, &page) != nil {
				t.Fatalf("GET %s?%s = %d %s", tc.path, q, resp.StatusCode, body)
			}
			if page.ItemsPerPage <= 0 || page.ItemsPerPage > store.MaxPage {
				t.Errorf("GET %s?%s: ItemsPerPage %d", tc.path, q, page.ItemsPerPage)
			}
			if strings.HasPrefix(q, "skip=1&") && len(page.Items) != tc.items {
				t.Errorf("GET %s?%s: %d items, want %d", tc.path, q, len(page.Items), tc.items)
			}
			if next := page.Links["Page.Next"]; next != "" {
				t.Errorf("GET %s?%s: a next page (%s) after everything", tc.path, q, next)
			}
		}
	}
}

// panicWriter panics when the response starts, as a handler bug would.
type panicWriter struct {
	h      http.Header
	status int
	calls  int
}

func (p *panicWriter) Header() http.Header { return p.h }
func (p *panicWriter) Write(b []byte) (int, error) {
	if p.status == 0 {
		p.WriteHeader(http.StatusOK)
	}
	return len(b), nil
}
func (p *panicWriter) WriteHeader(code int) {
	p.calls++
	if p.calls == 1 {
		panic("boom: a handler bug")
	}
	p.status = code
}

// Item 10: a recovered panic is logged at Error, not at net/http's Debug.
func TestPanicLoggedAtError(t *testing.T) {
	rec := &recordingHandler{}
	a := newTestNode(t, nil, withLogger(rec))
	w := &panicWriter{h: http.Header{}}
	req := httptest.NewRequest(http.MethodGet, "/api", nil)
	func() {
		defer func() {
			// The node may abort the response (http.ErrAbortHandler);
			// anything else is the handler's panic escaping.
			if v := recover(); v != nil && v != http.ErrAbortHandler { //nolint:errorlint
				t.Errorf("the handler's panic escaped ServeHTTP: %v", v)
			}
		}()
		a.ServeHTTP(w, req)
	}()
	errs := rec.at(slog.LevelError)
	if len(errs) != 1 || !strings.Contains(errs[0], "boom: a handler bug") || !strings.Contains(errs[0], "stack=") {
		t.Fatalf("Error records = %q, want one naming the panic, with its stack", errs)
	}
}

// Item 10's fuzz target: package file names and paging parameters, straight
// into the handler. Nothing may panic or be logged at Error, no answer may
// be a 5xx, and a stored package must sit under its space's feed. Run as a
// test, it checks the seed corpus; go test -fuzz=FuzzPackageNamesAndPaging
// ./fakes/node explores further.
func FuzzPackageNamesAndPaging(f *testing.F) {
	for _, s := range []struct{ name, skip, take string }{
		{"Acme.Web.1.0.0.zip", "0", "30"},
		{"Case.1.0.0.zip", "1", "9223372036854775807"},
		{"case.1.0.0.tgz", "9223372036854775807", "9223372036854775807"},
		{"CASE.1.0.0.tar.gz", "-1", "-9223372036854775808"},
		{"../../etc/passwd.1.0.zip", "", ""},
		{"a..b.1.0.zip", "x", "1e9"},
		{"Ünïcode.1.0.0.zip", "2147483648", "2147483647"},
		{"x.1.0.0-beta.1+build.5.nupkg", " 3", "+4"},
		{"NoVersion.zip", "99999999999999999999", "0"},
		{"Pkg.1.0.0.tar.Z", "1", "1"},
		{"pkg.1.0.0.TAR.z", "0x10", "010"},
		{strings.Repeat("A", 190) + ".1.0.zip", "1", "2"},
		{"Trailing.1.0.0.zip ", "", "1"},
		{"Semi;colon.1.0.zip", "1", "1"},
		{"", "0", "0"},
	} {
		f.Add(s.name, s.skip, s.take)
	}
	rec := &recordingHandler{}
	a := newTestNode(f, nil, withLogger(rec))
	newTestNode(f, a) // two nodes to list
	f.Fuzz(func(t *testing.T, name, skip, take string) {
		serve := func(req *http.Request) *httptest.ResponseRecorder {
			t.Helper()
			req.Header.Set(octopusapi.HeaderAPIKey, testKey)
			w := httptest.NewRecorder()
			a.ServeHTTP(w, req)
			if w.Code >= 500 {
				t.Fatalf("%s %s = %d %s", req.Method, req.URL, w.Code, w.Body)
			}
			if errs := rec.at(slog.LevelError); len(errs) > 0 {
				t.Fatalf("%s %s logged at Error: %q", req.Method, req.URL, errs)
			}
			return w
		}
		if cd := mime.FormatMediaType("form-data", map[string]string{"name": "file", "filename": name}); cd != "" {
			var buf bytes.Buffer
			mw := multipart.NewWriter(&buf)
			pw, err := mw.CreatePart(textproto.MIMEHeader{"Content-Disposition": {cd}})
			if err != nil {
				t.Fatal(err)
			}
			pw.Write([]byte("content of " + name))
			mw.Close()
			req := httptest.NewRequest(http.MethodPost, "/api/Spaces-1/packages/raw?overwriteMode=OverwriteExisting", &buf)
			req.Header.Set("Content-Type", mw.FormDataContentType())
			w := serve(req)
			if w.Code == http.StatusCreated {
				var p octopusapi.Package
				if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
					t.Fatalf("upload of %q: %v", name, err)
				}
				row, err := a.db.Package(context.Background(), "Spaces-1", p.PackageId, p.Version)
				if err != nil {
					t.Fatalf("upload of %q answered 201 but: %v", name, err)
				}
				clean := filepath.ToSlash(filepath.Clean(row.Path))
				if clean != row.Path || !strings.HasPrefix(row.Path, "Spaces-1/feeds-builtin/"+row.PackageID+"/") {
					t.Fatalf("upload of %q stored at %q", name, row.Path)
				}
			}
		}
		q := url.Values{"skip": {skip}, "take": {take}}.Encode()
		for _, p := range []string{octopusapi.NodesPath, octopusapi.PackagesPath("Spaces-1"), octopusapi.SpacesPath, octopusapi.TasksPath,
			octopusapi.PackagesPath("Spaces-1") + "?filter=" + url.QueryEscape(name) + "&nuGetPackageId=" + url.QueryEscape(name) + "&"} {
			sep := "?"
			if strings.Contains(p, "?") {
				sep = ""
			}
			w := serve(httptest.NewRequest(http.MethodGet, p+sep+q, nil))
			var page struct {
				Items        []json.RawMessage
				ItemsPerPage int
			}
			if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &page) != nil || page.ItemsPerPage <= 0 || page.ItemsPerPage > store.MaxPage ||
				len(page.Items) > page.ItemsPerPage {
				t.Fatalf("GET %s%s%s = %d %s", p, sep, q, w.Code, w.Body)
			}
		}
	})
}

// stalledUpload sends an authenticated upload's headers and the start of
// its body over conn, then nothing more.
func stalledUpload(t *testing.T, conn net.Conn, host string) {
	t.Helper()
	start := "--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"Stall.1.0.0.zip\"\r\n\r\n" + strings.Repeat("x", 10_000)
	fmt.Fprintf(conn, "POST /api/Spaces-1/packages/raw HTTP/1.1\r\nHost: %s\r\n%s: %s\r\nContent-Type: multipart/form-data; boundary=b\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n",
		host, octopusapi.HeaderAPIKey, testKey, len(start), start)
}

// Item 11: an upload whose client stops sending is aborted after the stall
// timeout; its temporary file is removed and the abort logged.
func TestUploadStallTimeout(t *testing.T) {
	rec := &recordingHandler{}
	a := newTestNode(t, nil, withLogger(rec), func(c *Config) { c.UploadStallTimeout = 300 * time.Millisecond })
	conn, err := net.Dial("tcp", a.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	stalledUpload(t, conn, a.srv.Listener.Addr().String())
	waitFor(t, 5*time.Second, "the upload to start", func() bool { return len(tempFiles(t, a)) == 1 })
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a stalled upload within 5s (stall timeout 300ms): %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Fatalf("stalled upload = %d %s, want 408", resp.StatusCode, body)
	}
	waitFor(t, 2*time.Second, "the temporary file to go", func() bool { return len(tempFiles(t, a)) == 0 })
	if n := a.receiving.Load(); n != 0 {
		t.Fatalf("%d uploads still receiving", n)
	}
	if w := rec.at(slog.LevelWarn); len(w) != 1 || !strings.Contains(w[0], "stalled") {
		t.Fatalf("Warn records = %q, want the stall", w)
	}
	assertNoPackages(t, a)

	// An upload that keeps sending, however slowly, is not cut off.
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		fw, _ := mw.CreateFormFile("file", "Slow.1.0.0.zip")
		for range 8 {
			time.Sleep(100 * time.Millisecond)
			fw.Write([]byte("a slow but steady client "))
		}
		mw.Close()
		pw.Close()
	}()
	r, body := a.do(t, http.MethodPost, "/api/Spaces-1/packages/raw", pr, map[string]string{"Content-Type": mw.FormDataContentType()})
	if r.StatusCode != 201 {
		t.Fatalf("slow upload = %d %s", r.StatusCode, body)
	}
}

// Item 11: the server closes idle keep-alive connections.
func TestIdleConnectionsClosed(t *testing.T) {
	a := newTestNode(t, nil, func(c *Config) { c.IdleTimeout = 200 * time.Millisecond })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- a.ServeListener(ctx, ln, time.Second) }()
	defer func() {
		cancel()
		<-served
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", octopusapi.PingPath)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.Close {
		t.Fatal("the server closed the connection after one request; cannot test idling")
	}
	conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	start := time.Now()
	if _, err := br.ReadByte(); err != io.EOF { //nolint:errorlint
		t.Fatalf("idle keep-alive connection after %v: %v, want it closed (EOF) after the 200ms idle timeout", time.Since(start).Round(time.Millisecond), err)
	}
}

// Every request body is read under an idle deadline, not only uploads: an
// unauthenticated POST that announces 100 bytes and sends one no longer
// holds its connection and goroutine forever (net/http waits for the rest
// after the 401, to reuse the connection); it is closed once the body has
// been silent for BodyIdleTimeout. The deadline bounds silence, not
// length: a slow JSON body that keeps sending is answered, and uploads
// keep their own, longer stall timeout.
func TestBodyIdleDeadline(t *testing.T) {
	const idle = 300 * time.Millisecond
	a := newTestNode(t, nil, func(c *Config) { c.BodyIdleTimeout = idle })
	conn, err := net.Dial("tcp", a.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	fmt.Fprintf(conn, "POST /api/tasks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(conn) // the answer, then EOF when the server closes
	closed := time.Since(start)
	if err != nil {
		t.Fatalf("the connection of a body that stopped after 1 of 100 bytes is still open after %v (idle deadline %v): %v", closed.Round(time.Millisecond), idle, err)
	}
	if !strings.HasPrefix(string(got), "HTTP/1.1 401") {
		t.Fatalf("answer %q, want 401", got)
	}
	t.Logf("a 1-of-100-byte unauthenticated body: 401 and connection closed after %v (idle deadline %v)", closed.Round(time.Millisecond), idle)

	// A JSON body trickling in over several idle periods, never silent
	// for one, is read and answered.
	pr, pw := io.Pipe()
	go func() {
		for _, part := range []string{`{"Name":`, `"` + octopusapi.TaskKindHealth[:3], octopusapi.TaskKindHealth[3:] + `",`, `"Arguments":{}}`} {
			time.Sleep(idle / 3)
			pw.Write([]byte(part))
		}
		pw.Close()
	}()
	r, body := a.do(t, http.MethodPost, "/api/Spaces-1/tasks", pr, map[string]string{"Content-Type": "application/json"})
	if r.StatusCode != http.StatusCreated {
		t.Fatalf("slow JSON body = %d %s, want 201", r.StatusCode, body)
	}

	// An upload silent for longer than the idle deadline (but shorter
	// than its stall timeout) is not cut off.
	pr, pw = io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		fw, _ := mw.CreateFormFile("file", "Pausing.1.0.0.zip")
		for range 3 {
			time.Sleep(2 * idle)
			fw.Write([]byte("a client that pauses "))
		}
		mw.Close()
		pw.Close()
	}()
	r, body = a.do(t, http.MethodPost, "/api/Spaces-1/packages/raw", pr, map[string]string{"Content-Type": mw.FormDataContentType()})
	if r.StatusCode != http.StatusCreated {
		t.Fatalf("upload pausing %v at a time = %d %s, want 201 (its stall timeout is %v)", 2*idle, r.StatusCode, body, a.cfg.UploadStallTimeout)
	}
}

// List parameters are bounded and durations checked without overflow:
// 40,000 task IDs were answered 503 "could not reach its database" (the
// statement exceeded SQLite's parameter limit: a false outage), and a
// DurationMs of MaxInt64 overflowed into an accepted task. Both are 400s
// that say why.
func TestBoundedListsAndDurations(t *testing.T) {
	a := newTestNode(t, nil)
	ids := make([]string, 40_000)
	for i := range ids {
		ids[i] = fmt.Sprintf("ServerTasks-%d", i+1)
	}
	start := time.Now()
	resp, body := a.do(t, http.MethodGet, "/api/tasks?ids="+strings.Join(ids, ","), nil, nil)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "The ids parameter lists 40000 values; at most 1000") {
		t.Fatalf("40,000 ids = %d %s, want 400 saying the bound", resp.StatusCode, body)
	}
	t.Logf("40,000 ids: %d in %v", resp.StatusCode, time.Since(start).Round(time.Millisecond))
	// At the bound, answered.
	if resp, body := a.do(t, http.MethodGet, "/api/tasks?ids="+strings.Join(ids[:maxListItems], ","), nil, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("%d ids = %d %s, want 200", maxListItems, resp.StatusCode, body)
	}
	many := strings.Repeat("Queued,", maxListItems+1)
	for _, path := range []string{
		"/api/tasks?states=" + many,
		"/api/octopusservernodes?ids=" + strings.Join(ids[:maxListItems+1], ","),
		"/api/Spaces-1/feeds?ids=" + strings.Join(ids[:maxListItems+1], ","),
	} {
		if resp, body := a.do(t, http.MethodGet, path, nil, nil); resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "at most 1000") {
			t.Errorf("GET %.60s… = %d %s, want 400", path, resp.StatusCode, body)
		}
	}
	if resp, body := a.do(t, http.MethodGet, "/api/tasks?states=Queued,Sleeping", nil, nil); resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), `Unknown task state \"Sleeping\"`) {
		t.Errorf("unknown state = %d %s, want 400", resp.StatusCode, body)
	}
	if resp, body := a.do(t, http.MethodGet, "/api/tasks?states=queued,EXECUTING", nil, nil); resp.StatusCode != http.StatusOK {
		t.Errorf("states in another case = %d %s, want 200", resp.StatusCode, body)
	}

	for _, ms := range []string{"9223372036854775807", "9223372036854", "-1"} {
		resp, body := a.do(t, http.MethodPost, "/api/Spaces-1/tasks", strings.NewReader(`{"Name":"Health","Arguments":{"DurationMs":`+ms+`}}`), map[string]string{"Content-Type": "application/json"})
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "DurationMs must be between 0 and") {
			t.Errorf("DurationMs %s = %d %s, want 400", ms, resp.StatusCode, body)
		}
		resp, body = a.do(t, http.MethodPost, "/api/Spaces-1/octoha/work?ms="+ms, nil, nil)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "ms must be a duration") {
			t.Errorf("work ms=%s = %d %s, want 400", ms, resp.StatusCode, body)
		}
	}
	if resp, body := a.do(t, http.MethodPost, "/api/Spaces-1/octoha/work?ms=1", nil, nil); resp.StatusCode != http.StatusOK {
		t.Errorf("work ms=1 = %d %s", resp.StatusCode, body)
	}
}
