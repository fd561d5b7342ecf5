package traffic

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/octoha/octoha/harness/history"
	"github.com/octoha/octoha/harness/payload"
	"github.com/octoha/octoha/internal/syncbuf"
	"github.com/octoha/octoha/octopusapi"
)

// run uploads with a recorder and results buffer and returns all three.
func run(t *testing.T, ctx context.Context, opts UploadOptions) (*UploadSummary, *history.History, []vegeta.Result) {
	t.Helper()
	var hbuf, rbuf bytes.Buffer
	opts.Recorder = history.NewRecorder(&hbuf)
	opts.Results = &rbuf
	if opts.APIKey == "" {
		opts.APIKey = testKey
	}
	s, err := Upload(ctx, opts)
	if err != nil {
		t.Fatalf("Upload: %v", err)
	}
	if err := opts.Recorder.Close(); err != nil {
		t.Fatal(err)
	}
	h, err := history.Decode(&hbuf)
	if err != nil {
		t.Fatal(err)
	}
	var rs []vegeta.Result
	dec := vegeta.NewDecoder(&rbuf)
	for {
		var r vegeta.Result
		if err := dec.Decode(&r); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("decode results with vegeta's decoder: %v", err)
		}
		rs = append(rs, r)
	}
	if s.Attempts != len(h.OpsOfKind(history.KindUpload)) || s.Attempts != len(rs) {
		t.Fatalf("attempts = %d, upload ops = %d, results = %d; want all equal", s.Attempts, len(h.OpsOfKind(history.KindUpload)), len(rs))
	}
	return s, h, rs
}

func TestUploadSuccess(t *testing.T) {
	node := newTestNode(t, "Node1")
	const size = 1<<20 + 7
	s, h, rs := run(t, t.Context(), UploadOptions{URL: node.URL(), Size: size, Count: 3, Concurrency: 2, Seed: 77, Via: "Node1"})
	if s.OK != 3 || s.Failed != 0 || s.Unknown != 0 || s.Err() != nil {
		t.Fatalf("summary: %+v, err %v", s, s.Err())
	}
	ops := h.OpsOfKind(history.KindUpload)
	opIDs := map[string]bool{}
	for i, p := range s.Packages {
		want := PackageSpec(DefaultPackageIDPrefix, 77, i, size)
		if p.Spec != want {
			t.Errorf("package %d spec = %+v, want %+v", i, p.Spec, want)
		}
		if p.Hash != payload.Hash(want.Seed, size) {
			t.Errorf("package %d hash %s is not the payload's", i, p.Hash)
		}
		if p.Node != "Node1" || p.Attempts != 1 || p.Status != http.StatusCreated {
			t.Errorf("package %d: %+v", i, p)
		}
		if stored := node.get(want); stored.hash != p.Hash || stored.size != size {
			t.Errorf("node holds %+v for package %d, want %s/%d", stored, i, p.Hash, size)
		}
	}
	for _, o := range ops {
		if o.Outcome != history.OK || o.Status != 201 || o.Node != "Node1" || o.Via != "Node1" || o.Attempt != 1 ||
			o.Size != size || o.Hash == "" || o.Bytes <= size || o.ID == "" || !strings.HasPrefix(o.Client, "upload-") {
			t.Errorf("op: %+v", o)
		}
		opIDs[o.ID] = true
	}
	// What went over the wire is what the Octopus CLI sends.
	if len(node.seen) != 3 {
		t.Fatalf("node saw %d uploads", len(node.seen))
	}
	for _, sr := range node.seen {
		if sr.contentLength != -1 || len(sr.transferEncoding) != 1 || sr.transferEncoding[0] != "chunked" {
			t.Errorf("body framing: content-length %d, transfer-encoding %v; want chunked and no length", sr.contentLength, sr.transferEncoding)
		}
		if sr.field != "file" || sr.partType != "application/octet-stream" || !strings.HasSuffix(sr.fileName, ".zip") {
			t.Errorf("part: %+v", sr)
		}
		if sr.apiKey != testKey || sr.overwriteMode != octopusapi.FailIfExists || !opIDs[sr.opID] {
			t.Errorf("headers: %+v (op IDs recorded: %v)", sr, opIDs)
		}
	}
	for _, r := range rs {
		if r.Attack != UploadAttackName || r.Code != 201 || r.Method != http.MethodPost || r.Error != "" ||
			r.BytesOut <= size || r.BytesIn == 0 || r.Headers.Get(octopusapi.HeaderNode) != "Node1" ||
			!strings.HasSuffix(r.URL, "/api/Spaces-1/packages/raw?overwriteMode=FailIfExists") {
			t.Errorf("result: %+v", r)
		}
	}
	// The results file works with vegeta's own metrics.
	var m vegeta.Metrics
	for i := range rs {
		m.Add(&rs[i])
	}
	m.Close()
	if m.Requests != 3 || m.Success != 1 {
		t.Errorf("vegeta metrics: %d requests, success %.2f", m.Requests, m.Success)
	}
}

func TestUploadReplaysSameBytes(t *testing.T) {
	a, b := newTestNode(t, "A"), newTestNode(t, "B")
	sa, _, _ := run(t, t.Context(), UploadOptions{URL: a.URL(), Size: 4096, Count: 2, Seed: 5})
	sb, _, _ := run(t, t.Context(), UploadOptions{URL: b.URL(), Size: 4096, Count: 2, Seed: 5})
	sc, _, _ := run(t, t.Context(), UploadOptions{URL: b.URL(), Size: 4096, Count: 2, Seed: 6})
	for i := range 2 {
		if sa.Packages[i].Hash != sb.Packages[i].Hash || sa.Packages[i].Spec != sb.Packages[i].Spec {
			t.Fatalf("same seed, package %d differs", i)
		}
		if sa.Packages[i].Hash == sc.Packages[i].Hash || sa.Packages[i].Spec.Version == sc.Packages[i].Spec.Version {
			t.Fatalf("different seeds, package %d is the same", i)
		}
	}
	if sa.Packages[0].Hash == sa.Packages[1].Hash {
		t.Fatal("two packages of one run have the same content")
	}
}

func TestUploadRetriesOn503(t *testing.T) {
	node := newTestNode(t, "Node1")
	node.afterBody = func(w http.ResponseWriter, r *http.Request, n int, _ *bodyInfo) bool {
		if n <= 2 {
			node.writeJSON(w, http.StatusServiceUnavailable, octopusapi.Error{ErrorMessage: "database unavailable"})
			return true
		}
		return false
	}
	s, h, rs := run(t, t.Context(), UploadOptions{URL: node.URL(), Size: 10_000, Count: 1, Retries: 3, Backoff: time.Millisecond})
	p := s.Packages[0]
	if p.Outcome != history.OK || p.Attempts != 3 || s.OK != 1 {
		t.Fatalf("package: %+v", p)
	}
	ops := h.OpsOfKind(history.KindUpload)
	want := []struct {
		o    history.Outcome
		code int
	}{{history.Failed, 503}, {history.Failed, 503}, {history.OK, 201}}
	for i, w := range want {
		o := ops[i]
		if o.Outcome != w.o || o.Status != w.code || o.Attempt != i+1 || o.Hash != p.Hash {
			t.Errorf("attempt %d: %+v, want %s %d", i+1, o, w.o, w.code)
		}
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i].Seq < rs[j].Seq })
	for i, r := range rs {
		if int(r.Code) != want[i].code || r.Seq != uint64(i) {
			t.Errorf("result %d: seq %d code %d, want %d", i, r.Seq, r.Code, want[i].code)
		}
	}
	if !strings.Contains(ops[0].Error, "database unavailable") {
		t.Errorf("503 error text lost: %q", ops[0].Error)
	}
	if ops[0].ID == ops[1].ID {
		t.Error("attempts share an op ID")
	}
}

func TestUploadDoesNotRetry4xx(t *testing.T) {
	node := newTestNode(t, "Node1")
	s, h, _ := run(t, t.Context(), UploadOptions{URL: node.URL(), APIKey: "API-WRONG", Size: 1000, Count: 1, Retries: 3, Backoff: time.Millisecond})
	p := s.Packages[0]
	if p.Outcome != history.Failed || p.Attempts != 1 || p.Status != 401 || !strings.Contains(p.Error, "You must be logged in") {
		t.Fatalf("package: %+v", p)
	}
	if n, _ := node.counts(); n != 0 { // refused before the upload handler
		t.Fatalf("upload handler ran %d times", n)
	}
	if len(h.Ops) != 1 || h.Ops[0].Outcome != history.Failed {
		t.Fatalf("ops: %+v", h.Ops)
	}
	if strings.Contains(p.Error, "API-WRONG") || strings.Contains(h.Ops[0].Error, "API-WRONG") {
		t.Fatal("the API key leaked into an error")
	}
	if s.Err() == nil {
		t.Fatal("summary error is nil with a failed package")
	}
}

func TestUploadConnectionDroppedMidBody(t *testing.T) {
	node := newTestNode(t, "Node1")
	node.beforeBody = func(w http.ResponseWriter, r *http.Request, n int) bool {
		if n != 1 {
			return false
		}
		// Take part of the body, then drop the connection.
		if _, err := io.CopyN(io.Discard, r.Body, 300_000); err != nil {
			t.Errorf("read part of the body: %v", err)
		}
		dropConn(t, w)
		return true
	}
	// Bigger than what loopback socket buffers can hold, so the client
	// cannot have handed the whole body to the kernel when the server
	// drops the connection.
	const size = 48 << 20
	s, h, rs := run(t, t.Context(), UploadOptions{URL: node.URL(), Size: size, Count: 1, Retries: 2, Backoff: time.Millisecond})
	p := s.Packages[0]
	if p.Outcome != history.OK || p.Attempts != 2 {
		t.Fatalf("package: %+v", p)
	}
	ops := h.OpsOfKind(history.KindUpload)
	if ops[0].Outcome != history.Unknown || ops[0].Status != 0 || ops[0].Bytes <= 0 || ops[0].Bytes >= size {
		t.Errorf("first attempt: %+v", ops[0])
	}
	if ops[0].Hash != p.Hash || ops[0].Hash != payload.Hash(p.Spec.Seed, size) {
		t.Errorf("cut-short attempt has hash %q, want the full file's %s", ops[0].Hash, p.Hash)
	}
	if ops[1].Outcome != history.OK {
		t.Errorf("second attempt: %+v", ops[1])
	}
	if rs[0].Error == "" && rs[1].Error == "" {
		t.Error("no result carries the transport error")
	}
}

func TestUpload409AfterUnknownIsOurs(t *testing.T) {
	node := newTestNode(t, "Node1")
	node.afterBody = func(w http.ResponseWriter, r *http.Request, n int, info *bodyInfo) bool {
		if n != 1 {
			return false
		}
		// Stored, then the connection broke before the answer.
		if err := node.storeOnly(*info); err != nil {
			t.Error(err)
		}
		dropConn(t, w)
		return true
	}
	s, h, _ := run(t, t.Context(), UploadOptions{URL: node.URL(), Size: 50_000, Count: 1, Retries: 2, Backoff: time.Millisecond})
	p := s.Packages[0]
	if p.Outcome != history.OK || p.Attempts != 2 || p.Status != 409 || !strings.Contains(p.Note, "409") {
		t.Fatalf("package: %+v", p)
	}
	ups := h.OpsOfKind(history.KindUpload)
	gets := h.OpsOfKind(history.KindPackages)
	if ups[0].Outcome != history.Unknown || ups[1].Outcome != history.OK || ups[1].Status != 409 || ups[1].Note == "" || ups[1].Error != "" {
		t.Fatalf("upload ops: %+v", ups)
	}
	if len(gets) != 1 || gets[0].Outcome != history.OK || gets[0].Status != 200 || gets[0].Node != "Node1" {
		t.Fatalf("verification op: %+v", gets)
	}
}

func TestUpload409AfterUnknownIsNotOurs(t *testing.T) {
	node := newTestNode(t, "Node1")
	node.afterBody = func(w http.ResponseWriter, r *http.Request, n int, info *bodyInfo) bool {
		if n != 1 {
			return false
		}
		other := *info
		other.hash = strings.Repeat("0", 40) // someone else's bytes under our name
		if err := node.storeOnly(other); err != nil {
			t.Error(err)
		}
		dropConn(t, w)
		return true
	}
	s, h, _ := run(t, t.Context(), UploadOptions{URL: node.URL(), Size: 50_000, Count: 1, Retries: 2, Backoff: time.Millisecond})
	p := s.Packages[0]
	if p.Outcome != history.Failed || p.Attempts != 2 || !strings.Contains(p.Error, "conflict") {
		t.Fatalf("package: %+v", p)
	}
	if ups := h.OpsOfKind(history.KindUpload); ups[1].Outcome != history.Failed {
		t.Fatalf("409 op: %+v", ups[1])
	}
}

func TestUpload409WithoutUnknownIsAConflict(t *testing.T) {
	node := newTestNode(t, "Node1")
	opts := UploadOptions{URL: node.URL(), Size: 2000, Count: 1, Retries: 2, Backoff: time.Millisecond}
	run(t, t.Context(), opts)
	s, _, _ := run(t, t.Context(), opts)
	p := s.Packages[0]
	if p.Outcome != history.Failed || p.Attempts != 1 || p.Status != 409 || !strings.Contains(p.Error, "already exists") {
		t.Fatalf("package: %+v", p)
	}
	if _, gets := node.counts(); gets != 0 {
		t.Fatalf("GETs = %d, want none: nothing was unknown", gets)
	}
	// IgnoreIfExists answers 200 with the same package: ok.
	opts.OverwriteMode = octopusapi.IgnoreIfExists
	node.afterBody = func(w http.ResponseWriter, r *http.Request, n int, info *bodyInfo) bool {
		st := node.get(PackageSpec(DefaultPackageIDPrefix, 0, 0, 2000))
		node.writeJSON(w, http.StatusOK, octopusapi.Package{Hash: st.hash, PackageSizeBytes: st.size})
		return true
	}
	s, _, _ = run(t, t.Context(), opts)
	if p := s.Packages[0]; p.Outcome != history.OK || p.Status != 200 {
		t.Fatalf("ignore-if-exists: %+v", p)
	}
}

func TestUploadHashMismatch(t *testing.T) {
	node := newTestNode(t, "Node1")
	node.storeOverride = "deadbeef"
	s, h, _ := run(t, t.Context(), UploadOptions{URL: node.URL(), Size: 1234, Count: 1, Retries: 3, Backoff: time.Millisecond})
	p := s.Packages[0]
	if p.Outcome != history.Failed || p.Attempts != 1 || !strings.Contains(p.Error, `server stored hash "deadbeef", sent `+p.Hash) {
		t.Fatalf("package: %+v", p)
	}
	// The server did acknowledge: the op stays ok so checkers look at it.
	if o := h.Ops[0]; o.Outcome != history.OK || !strings.Contains(o.Error, "server stored hash") {
		t.Fatalf("op: %+v", o)
	}
}

// Caddy 2.6 with read_body answers a cut upload 200 with an empty body:
// an acknowledgement (the op stays ok, so durability looks for the
// package) that the package fails, under history.EmptyAck, not retried.
func TestUploadEmpty200(t *testing.T) {
	node := newTestNode(t, "Node1")
	node.afterBody = func(w http.ResponseWriter, r *http.Request, n int, _ *bodyInfo) bool {
		w.WriteHeader(http.StatusOK)
		return true
	}
	s, h, _ := run(t, t.Context(), UploadOptions{URL: node.URL(), Size: 1000, Count: 1, Retries: 3, Backoff: time.Millisecond})
	if p := s.Packages[0]; p.Outcome != history.Failed || p.Attempts != 1 || !strings.HasPrefix(p.Error, history.EmptyAck) {
		t.Fatalf("package: %+v", p)
	}
	if o := h.Ops[0]; o.Outcome != history.OK || o.Status != 200 || !strings.HasPrefix(o.Error, history.EmptyAck) {
		t.Fatalf("op: %+v", o)
	}
}

func TestUploadProxyErrorIsUnknownAndRetried(t *testing.T) {
	node := newTestNode(t, "Node1")
	node.afterBody = func(w http.ResponseWriter, r *http.Request, n int, _ *bodyInfo) bool {
		if n == 1 {
			w.WriteHeader(http.StatusGatewayTimeout)
			return true
		}
		return false
	}
	s, h, _ := run(t, t.Context(), UploadOptions{URL: node.URL(), Size: 1000, Count: 1, Retries: 1, Backoff: time.Millisecond})
	if p := s.Packages[0]; p.Outcome != history.OK || p.Attempts != 2 {
		t.Fatalf("package: %+v", p)
	}
	if o := h.Ops[0]; o.Outcome != history.Unknown || o.Status != 504 {
		t.Fatalf("504 op: %+v", o)
	}
}

func TestUploadStallTimeout(t *testing.T) {
	node := newTestNode(t, "Node1")
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	node.beforeBody = func(w http.ResponseWriter, r *http.Request, n int) bool {
		// A frozen node: it reads a little, then nothing.
		if _, err := io.CopyN(io.Discard, r.Body, 64<<10); err != nil {
			t.Errorf("read: %v", err)
		}
		<-release
		return true
	}
	start := time.Now()
	s, h, _ := run(t, t.Context(), UploadOptions{URL: node.URL(), Size: 64 << 20, Count: 1, StallTimeout: 300 * time.Millisecond})
	if el := time.Since(start); el > 10*time.Second {
		t.Fatalf("stalled upload took %s to give up", el)
	}
	p := s.Packages[0]
	if p.Outcome != history.Unknown || !strings.Contains(p.Error, ErrStalled.Error()) {
		t.Fatalf("package: %+v", p)
	}
	if h.Ops[0].Outcome != history.Unknown {
		t.Fatalf("op: %+v", h.Ops[0])
	}
}

func TestUploadConnectionRefusedIsFailed(t *testing.T) {
	node := newTestNode(t, "Node1")
	url := node.URL()
	node.srv.Close()
	s, h, _ := run(t, t.Context(), UploadOptions{URL: url, Size: 100, Count: 1, Retries: 1, Backoff: time.Millisecond})
	p := s.Packages[0]
	if p.Outcome != history.Failed || p.Attempts != 2 || !strings.Contains(p.Error, "request not sent") {
		t.Fatalf("package: %+v", p)
	}
	for _, o := range h.Ops {
		if o.Outcome != history.Failed {
			t.Fatalf("op: %+v", o)
		}
	}
}

func TestUploadCancel(t *testing.T) {
	node := newTestNode(t, "Node1")
	ctx, cancel := context.WithCancel(t.Context())
	var once sync.Once
	node.beforeBody = func(w http.ResponseWriter, r *http.Request, n int) bool {
		// Cancel once the first upload is under way, then keep reading.
		if _, err := io.CopyN(io.Discard, r.Body, 1<<20); err == nil {
			once.Do(cancel)
		}
		_, _ = io.Copy(io.Discard, r.Body)
		return true
	}
	s, _, _ := run(t, ctx, UploadOptions{URL: node.URL(), Size: 256 << 20, Count: 3, Retries: 3, Backoff: time.Millisecond})
	if p := s.Packages[0]; p.Outcome != history.Unknown || p.Attempts != 1 {
		t.Fatalf("cancelled package: %+v", p)
	}
	for _, p := range s.Packages[1:] {
		if p.Outcome != history.Failed || p.Attempts != 0 || !strings.Contains(p.Error, "not attempted") {
			t.Fatalf("package after cancel: %+v", p)
		}
	}
}

func TestUploadOptionsValidate(t *testing.T) {
	ok := UploadOptions{URL: "http://127.0.0.1:1", APIKey: "k", Size: 1, Count: 1}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(*UploadOptions){
		"no url":      func(o *UploadOptions) { o.URL = "" },
		"bad scheme":  func(o *UploadOptions) { o.URL = "ftp://x" },
		"query":       func(o *UploadOptions) { o.URL = "http://x/?a=b" },
		"no key":      func(o *UploadOptions) { o.APIKey = "" },
		"count":       func(o *UploadOptions) { o.Count = 0 },
		"size":        func(o *UploadOptions) { o.Size = -1 },
		"mode":        func(o *UploadOptions) { o.OverwriteMode = "replace" },
		"space":       func(o *UploadOptions) { o.SpaceID = "Default" },
		"prefix":      func(o *UploadOptions) { o.PackageIDPrefix = "bad prefix" },
		"retries":     func(o *UploadOptions) { o.Retries = -1 },
		"concurrency": func(o *UploadOptions) { o.Concurrency = -2 },
	} {
		o := ok
		mut(&o)
		if err := o.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
		if _, err := Upload(t.Context(), o); err == nil {
			t.Errorf("%s: Upload accepted", name)
		}
	}
}

func TestUploadProgressLines(t *testing.T) {
	node := newTestNode(t, "Node1")
	var out syncbuf.Buffer
	_, _, _ = run(t, t.Context(), UploadOptions{URL: node.URL(), Size: 8 << 20, Count: 2, Progress: &out, ProgressInterval: 5 * time.Millisecond})
	s := out.String()
	if !strings.Contains(s, "upload: 2/2 done (0 not ok)") || !strings.Contains(s, "MB/s") {
		t.Fatalf("progress output:\n%s", s)
	}
}

// TestUploadMemoryStaysFlat uploads 256 MiB and checks that the process's
// heap does not grow with the package: the body is streamed, never held.
func TestUploadMemoryStaysFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a 256 MiB upload takes about a second")
	}
	node := newTestNode(t, "Node1")
	const size = 256 << 20
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	stopSampling := sampleHeapPeak(20 * time.Millisecond)
	s, err := Upload(t.Context(), UploadOptions{URL: node.URL(), APIKey: testKey, Size: size, Count: 1})
	peak := stopSampling()
	if err != nil || s.OK != 1 {
		t.Fatalf("upload: %v, %+v", err, s)
	}
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	alloc := after.TotalAlloc - before.TotalAlloc
	growth := int64(peak) - int64(before.HeapInuse)
	t.Logf("256 MiB upload (client and test server in one process): TotalAlloc +%s, peak HeapInuse +%s, %.0f MB/s",
		payload.FormatSize(int64(alloc)), payload.FormatSize(growth), s.Throughput/1e6)
	const limit = 16 << 20
	if alloc > limit || growth > limit {
		t.Fatalf("memory grew with the payload: TotalAlloc +%d, HeapInuse +%d (limit %d)", alloc, growth, limit)
	}
}

func TestBackoff(t *testing.T) {
	for n := 1; n <= 12; n++ {
		d := backoff(100*time.Millisecond, n)
		want := min(100*time.Millisecond<<(n-1), MaxBackoff)
		if d < want/2 || d > want {
			t.Fatalf("backoff(%d) = %s, want in [%s, %s]", n, d, want/2, want)
		}
	}
}

func TestUploadEmptyPackage(t *testing.T) {
	node := newTestNode(t, "Node1")
	s, h, _ := run(t, t.Context(), UploadOptions{URL: node.URL(), Size: 0, Count: 1})
	p := s.Packages[0]
	if p.Outcome != history.OK || p.Hash != "da39a3ee5e6b4b0d3255bfef95601890afd80709" || node.get(p.Spec).size != 0 {
		t.Fatalf("package: %+v", p)
	}
	if h.Ops[0].Bytes == 0 {
		t.Fatal("an empty package still has a multipart body; Bytes is 0")
	}
}

// TestUploadRate: a rate-limited upload takes size/rate, per upload (two
// concurrent uploads at the same rate take as long as one).
func TestUploadRate(t *testing.T) {
	node := newTestNode(t, "Node1")
	const size, rate = 2 << 20, 4 << 20 // half a second each
	start := time.Now()
	s, _, _ := run(t, t.Context(), UploadOptions{URL: node.URL(), Size: size, Count: 2, Concurrency: 2, Seed: 5, Rate: rate})
	took := time.Since(start)
	if s.Err() != nil {
		t.Fatal(s.Err())
	}
	want := time.Duration(float64(size) / rate * float64(time.Second))
	if took < want*9/10 || took > want*3 {
		t.Fatalf("two concurrent %d-byte uploads at %d B/s each took %v, want about %v", size, rate, took, want)
	}
	if err := (UploadOptions{URL: node.URL(), APIKey: testKey, Size: 1, Count: 1, Rate: -1}).Validate(); err == nil {
		t.Fatal("a negative rate was accepted")
	}
}

// A load balancer that cuts an upload mid-body answers and closes at once,
// the client's unsent bytes still arriving (Caddy 2.6 with read_body on a
// chunked upload): the client's next write meets a reset while its answer
// is already in the socket. Every such attempt records the answer (200,
// empty: history.EmptyAck), never the write error that races it — the
// slow-client scenario's finding depended on which came first.
func TestUploadAnswerBeforeResetWins(t *testing.T) {
	node := newTestNode(t, "Node1")
	node.beforeBody = func(w http.ResponseWriter, r *http.Request, n int) bool {
		if _, err := io.CopyN(io.Discard, r.Body, 300_000); err != nil {
			t.Errorf("read part of the body: %v", err)
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return true
		}
		brw.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
		brw.Flush()
		conn.Close() // unread body pending: the kernel resets the connection
		return true
	}
	const count = 20
	s, h, _ := run(t, t.Context(), UploadOptions{URL: node.URL(), Size: 8 << 20, Count: count, Retries: 0})
	ops := h.OpsOfKind(history.KindUpload)
	if s.Attempts != count || len(ops) != count {
		t.Fatalf("%d attempts, %d ops; want %d", s.Attempts, len(ops), count)
	}
	for _, o := range ops {
		if o.Status != http.StatusOK || o.Outcome != history.OK || !strings.HasPrefix(o.Error, history.EmptyAck) {
			t.Errorf("op %d: status %d, outcome %s, error %q; want the 200 with an empty body", o.Seq, o.Status, o.Outcome, o.Error)
		}
	}
}
