package node

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/OctopusDeploy/go-octodiff/pkg/octodiff"
	octoclient "github.com/OctopusDeploy/go-octopusdeploy/v2/pkg/client"
	"github.com/OctopusDeploy/go-octopusdeploy/v2/pkg/packages"

	"github.com/octoha/octoha/internal/syncbuf"
	"github.com/octoha/octoha/octopusapi"
)

// randomBytes returns n reproducible pseudo-random bytes.
func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// mutated returns a copy of b with every k-th 64 KiB block rewritten.
func mutated(b []byte, every int, seed uint64) []byte {
	out := bytes.Clone(b)
	const block = 64 << 10
	for i := 0; i*block < len(out); i += every {
		end := min((i+1)*block, len(out))
		copy(out[i*block:end], randomBytes(seed+uint64(i), end-i*block))
	}
	return out
}

func signatureOf(t *testing.T, b []byte) []byte {
	t.Helper()
	var sig bytes.Buffer
	if err := octodiff.NewSignatureBuilder().Build(bytes.NewReader(b), int64(len(b)), &sig); err != nil {
		t.Fatal(err)
	}
	return sig.Bytes()
}

// deltaOf builds the Octodiff delta turning base into next, as the
// official clients do.
func deltaOf(t *testing.T, base, next []byte) []byte {
	t.Helper()
	sig := signatureOf(t, base)
	var d bytes.Buffer
	if err := octodiff.NewDeltaBuilder().Build(bytes.NewReader(next), int64(len(next)), bytes.NewReader(sig), int64(len(sig)), octodiff.NewBinaryDeltaWriter(&d)); err != nil {
		t.Fatal(err)
	}
	return d.Bytes()
}

func (tn *testNode) postDelta(t *testing.T, packageID, baseVersion, query, filename string, delta []byte) (*http.Response, []byte) {
	t.Helper()
	body, ct := multipartBody(t, "file", filename, delta)
	return tn.do(t, http.MethodPost, octopusapi.DeltaUploadPath("Spaces-1", packageID, baseVersion, "")+query, body, map[string]string{"Content-Type": ct})
}

func (tn *testNode) signature(t *testing.T, packageID, version string) (*http.Response, octopusapi.DeltaSignature, []byte) {
	t.Helper()
	resp, body := tn.do(t, http.MethodGet, octopusapi.DeltaSignaturePath("Spaces-1", packageID, version), nil, nil)
	var ds octopusapi.DeltaSignature
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, &ds); err != nil {
			t.Fatalf("signature body: %v", err)
		}
	}
	return resp, ds, body
}

func noTempFiles(t *testing.T, tn *testNode) {
	t.Helper()
	files, err := tn.pkgs.Walk(context.Background(), TempDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) > 0 {
		t.Fatalf("temporary files left: %v", files)
	}
}

// The signature is the Octodiff signature of the nearest earlier version,
// computed once and then served from its cache next to the package; a
// deleted or replaced base takes its cache with it.
func TestDeltaSignature(t *testing.T) {
	a := newTestNode(t, nil)
	resp, _, body := a.signature(t, "Sig.Pkg", "1.0.0")
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), "No previous versions available") {
		t.Fatalf("signature with no version at all = %d %s, want 404", resp.StatusCode, body)
	}
	content := map[string][]byte{}
	for i, v := range []string{"1.0.0", "1.5.0", "3.0.0"} {
		content[v] = randomBytes(uint64(i+1), 300<<10)
		if resp, body := a.upload(t, "", "Sig.Pkg."+v+".zip", content[v]); resp.StatusCode != http.StatusCreated {
			t.Fatalf("upload %s = %d %s", v, resp.StatusCode, body)
		}
	}
	resp, ds, body := a.signature(t, "Sig.Pkg", "2.0.0")
	if resp.StatusCode != http.StatusOK || ds.BaseVersion != "1.5.0" || resp.Header.Get(HeaderSignature) != "computed" {
		t.Fatalf("signature for 2.0.0 = %d %s (%s), want 1.5.0 computed", resp.StatusCode, body[:min(len(body), 200)], resp.Header.Get(HeaderSignature))
	}
	sig, err := base64.StdEncoding.DecodeString(ds.Signature)
	if err != nil || !bytes.Equal(sig, signatureOf(t, content["1.5.0"])) {
		t.Fatalf("signature is not Octodiff's of 1.5.0 (%d bytes, err %v)", len(sig), err)
	}
	resp, ds, _ = a.signature(t, "sig.pkg", "2.0.0")
	if resp.StatusCode != http.StatusOK || ds.BaseVersion != "1.5.0" || resp.Header.Get(HeaderSignature) != "cached" || a.sigComputed.Load() != 1 {
		t.Fatalf("second signature = %d %s, computed %d times; want it served from the cache", resp.StatusCode, resp.Header.Get(HeaderSignature), a.sigComputed.Load())
	}
	row := assertConsistent(t, "Sig.Pkg", "1.5.0", a)
	if !dirExists(t, a, octopusapi.SignatureCachePath(row.Path, row.Hash)) {
		t.Fatalf("no signature cache at %s", octopusapi.SignatureCachePath(row.Path, row.Hash))
	}
	if resp, _, _ := a.signature(t, "Sig.Pkg", "1.0.0"); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("signature for the lowest version = %d, want 404", resp.StatusCode)
	}
	if resp, _, _ := a.signature(t, "Sig.Pkg", "9.0.0"); resp.StatusCode != http.StatusOK {
		t.Fatalf("signature for 9.0.0 = %d", resp.StatusCode)
	}

	// Deleting the base removes its cache; the next request uses 1.0.0.
	if resp, body := a.do(t, http.MethodDelete, octopusapi.PackagePath("Spaces-1", "packages-Sig.Pkg.1.5.0"), nil, nil); resp.StatusCode != 200 {
		t.Fatalf("delete = %d %s", resp.StatusCode, body)
	}
	if dirExists(t, a, octopusapi.SignatureCachePath(row.Path, row.Hash)) {
		t.Fatal("the deleted version's signature cache survived")
	}
	if resp, ds, _ := a.signature(t, "Sig.Pkg", "2.0.0"); resp.StatusCode != http.StatusOK || ds.BaseVersion != "1.0.0" {
		t.Fatalf("after delete: base %q (%d), want 1.0.0", ds.BaseVersion, resp.StatusCode)
	}
	// Replacing 1.0.0 makes its cache stale: removed, and recomputed.
	old := assertConsistent(t, "Sig.Pkg", "1.0.0", a)
	if resp, body := a.upload(t, "?overwriteMode=OverwriteExisting", "Sig.Pkg.1.0.0.zip", randomBytes(99, 1000)); resp.StatusCode != http.StatusCreated {
		t.Fatalf("overwrite = %d %s", resp.StatusCode, body)
	}
	if dirExists(t, a, octopusapi.SignatureCachePath(old.Path, old.Hash)) {
		t.Fatal("the replaced file's signature cache survived")
	}
	before := a.sigComputed.Load()
	if resp, _, _ := a.signature(t, "Sig.Pkg", "2.0.0"); resp.StatusCode != http.StatusOK || resp.Header.Get(HeaderSignature) != "computed" || a.sigComputed.Load() != before+1 {
		t.Fatalf("signature after overwrite = %d %s", resp.StatusCode, resp.Header.Get(HeaderSignature))
	}
	noTempFiles(t, a)
}

// recorder wraps a node's handler and counts request body bytes per path.
type recorder struct {
	h     http.Handler
	mu    sync.Mutex
	bytes map[string]int64
}

func (rc *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	cr := &countingReader{r: r.Body}
	r.Body = io.NopCloser(cr)
	rc.h.ServeHTTP(w, r)
	rc.mu.Lock()
	rc.bytes[r.Method+" "+r.URL.Path] += cr.n
	rc.mu.Unlock()
}

// go-octopusdeploy's UploadV2 with delta compression on, as the CLI runs
// it by default: the first version goes in full (no earlier version), the
// second as a small delta that the node patches into a file with the full
// package's SHA-1; overwrite modes apply to delta uploads as to full ones.
func TestDeltaUploadOfficialClient(t *testing.T) {
	a := newTestNode(t, nil)
	rec := &recorder{h: a.Node, bytes: map[string]int64{}}
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	c, err := octoclient.NewClient(nil, u, testKey, "Spaces-1")
	if err != nil {
		t.Fatal(err)
	}
	v1 := randomBytes(7, 4<<20)
	r1, err := packages.UploadV2(c, "Spaces-1", "Delta.Pkg.1.0.0.zip", bytes.NewReader(v1), packages.OverwriteModeFailIfExists, true)
	if err != nil || r1.UploadInfo == nil || r1.UploadInfo.DeltaBehaviour != packages.DeltaBehaviourNoPreviousFile || !r1.CreatedNewFile {
		t.Fatalf("first upload: %+v, %v", r1, err)
	}
	v2 := mutated(v1, 20, 1000) // 5% of the 64 KiB blocks changed
	r2, err := packages.UploadV2(c, "Spaces-1", "Delta.Pkg.1.1.0.zip", bytes.NewReader(v2), packages.OverwriteModeFailIfExists, true)
	if err != nil {
		t.Fatalf("delta upload: %v", err)
	}
	if r2.UploadMethod != packages.UploadMethodDelta || r2.UploadInfo.DeltaBehaviour != packages.DeltaBehaviourUploadedDeltaFile || !r2.CreatedNewFile {
		t.Fatalf("second upload went as %s / %s, want an uploaded delta", r2.UploadMethod, r2.UploadInfo.DeltaBehaviour)
	}
	sent := rec.bytes["POST "+octopusapi.DeltaUploadPath("Spaces-1", "Delta.Pkg", "1.0.0", "")]
	if sent == 0 || sent > int64(len(v2))/5 || rec.bytes["POST /api/Spaces-1/packages/raw"] > int64(len(v1))+4096 {
		t.Fatalf("bytes sent: %v; want the delta endpoint used with a small body (full file %d bytes)", rec.bytes, len(v2))
	}
	if r2.Hash != sha1hex(v2) || r2.PackageSizeBytes != len(v2) {
		t.Fatalf("response hash %s size %d, want %s %d", r2.Hash, r2.PackageSizeBytes, sha1hex(v2), len(v2))
	}
	row := assertConsistent(t, "Delta.Pkg", "1.1.0", a)
	stored, err := os.ReadFile(filepath.Join(a.dir, "Packages", filepath.FromSlash(row.Path)))
	if err != nil || sha1hex(stored) != sha1hex(v2) {
		t.Fatalf("stored file SHA-1 %s, want the full file's %s (%v)", sha1hex(stored), sha1hex(v2), err)
	}
	t.Logf("full %d bytes, delta %d bytes sent (%.1f%%)", len(v2), sent, 100*float64(sent)/float64(len(v2)))

	// Overwrite modes, through the delta path.
	if _, err := packages.UploadV2(c, "Spaces-1", "Delta.Pkg.1.1.0.zip", bytes.NewReader(v2), packages.OverwriteModeFailIfExists, true); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("duplicate delta under FailIfExists: %v, want a 409", err)
	}
	r, err := packages.UploadV2(c, "Spaces-1", "Delta.Pkg.1.1.0.zip", bytes.NewReader(v2), packages.OverwriteModeIgnoreIfExists, true)
	if err != nil || r.CreatedNewFile {
		t.Fatalf("duplicate delta under IgnoreIfExists: %+v, %v", r, err)
	}
	v2b := mutated(v1, 10, 2000)
	r, err = packages.UploadV2(c, "Spaces-1", "Delta.Pkg.1.1.0.zip", bytes.NewReader(v2b), packages.OverwriteModeOverwriteExisting, true)
	if err != nil || !r.CreatedNewFile || r.UploadInfo.DeltaBehaviour != packages.DeltaBehaviourUploadedDeltaFile || r.Hash != sha1hex(v2b) {
		t.Fatalf("delta under OverwriteExisting: %+v, %v", r, err)
	}
	assertConsistent(t, "Delta.Pkg", "1.1.0", a)
	noTempFiles(t, a)
}

// A delta the node cannot apply gets a clear 4xx and stores nothing: no
// base version, a base file that is missing or corrupt, a delta that does
// not fit the base, or one that is not a delta at all.
func TestDeltaRefusals(t *testing.T) {
	a := newTestNode(t, nil)
	base := randomBytes(3, 512<<10)
	next := mutated(base, 4, 500)
	if resp, body := a.upload(t, "", "Bad.Pkg.1.0.0.zip", base); resp.StatusCode != http.StatusCreated {
		t.Fatalf("upload = %d %s", resp.StatusCode, body)
	}
	delta := deltaOf(t, base, next)
	baseRow := assertConsistent(t, "Bad.Pkg", "1.0.0", a)
	baseFile := filepath.Join(a.dir, "Packages", filepath.FromSlash(baseRow.Path))
	nothingStored := func(what string) {
		t.Helper()
		if _, err := a.db.Package(context.Background(), "Spaces-1", "Bad.Pkg", "2.0.0"); err == nil {
			t.Fatalf("%s: a row for 2.0.0 was recorded", what)
		}
		if dirExists(t, a, "Spaces-1/feeds-builtin/Bad.Pkg/Bad.Pkg.2.0.0.zip") {
			t.Fatalf("%s: a file for 2.0.0 was stored", what)
		}
		noTempFiles(t, a)
	}
	expect := func(what string, resp *http.Response, body []byte, status int, says string) {
		t.Helper()
		if resp.StatusCode != status || !strings.Contains(string(body), says) {
			t.Fatalf("%s = %d %s, want %d saying %q", what, resp.StatusCode, body, status, says)
		}
		nothingStored(what)
	}

	resp, body := a.postDelta(t, "Bad.Pkg", "0.9.0", "", "Bad.Pkg.2.0.0.zip", delta)
	expect("no base version", resp, body, http.StatusNotFound, "does not exist")
	resp, body = a.postDelta(t, "Bad.Pkg", "1.0.0", "", "Bad.Pkg.2.0.0.zip", randomBytes(5, 4096))
	expect("not a delta", resp, body, http.StatusBadRequest, "not an Octodiff delta")
	resp, body = a.postDelta(t, "Other", "1.0.0", "", "Bad.Pkg.2.0.0.zip", delta)
	expect("another package's endpoint", resp, body, http.StatusBadRequest, "was posted to")
	bigger := append(bytes.Clone(base), randomBytes(6, 256<<10)...)
	resp, body = a.postDelta(t, "Bad.Pkg", "1.0.0", "", "Bad.Pkg.2.0.0.zip", deltaOf(t, bigger, append(bytes.Clone(bigger), 'x')))
	expect("a delta against a bigger base", resp, body, http.StatusConflict, "does not fit the base")

	// Corrupt the base in place (same size): the patched file's hash
	// gives it away.
	corrupt := bytes.Clone(base)
	corrupt[64<<10+100] ^= 0xff // in block 1, which the delta copies from the base
	if err := os.WriteFile(baseFile, corrupt, 0o644); err != nil {
		t.Fatal(err)
	}
	resp, body = a.postDelta(t, "Bad.Pkg", "1.0.0", "", "Bad.Pkg.2.0.0.zip", delta)
	expect("a corrupt base", resp, body, http.StatusConflict, "not the file the delta was built against")
	resp, _, body = a.signature(t, "Bad.Pkg", "2.0.0")
	expect("signature of a corrupt base", resp, body, http.StatusConflict, "is corrupt")
	if err := os.WriteFile(baseFile, base[:1000], 0o644); err != nil {
		t.Fatal(err)
	}
	resp, body = a.postDelta(t, "Bad.Pkg", "1.0.0", "", "Bad.Pkg.2.0.0.zip", delta)
	expect("a truncated base", resp, body, http.StatusConflict, "is corrupt")
	if err := os.Remove(baseFile); err != nil {
		t.Fatal(err)
	}
	resp, body = a.postDelta(t, "Bad.Pkg", "1.0.0", "", "Bad.Pkg.2.0.0.zip", delta)
	expect("a missing base file", resp, body, http.StatusConflict, "missing")

	// Restored, the same delta applies.
	if err := os.WriteFile(baseFile, base, 0o644); err != nil {
		t.Fatal(err)
	}
	resp, body = a.postDelta(t, "Bad.Pkg", "1.0.0", "", "Bad.Pkg.2.0.0.zip", delta)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("delta onto the restored base = %d %s", resp.StatusCode, body)
	}
	if row := assertConsistent(t, "Bad.Pkg", "2.0.0", a); row.Hash != sha1hex(next) {
		t.Fatalf("patched hash %s, want %s", row.Hash, sha1hex(next))
	}
}

// On a Windows node (paths stored as C:\Octopus\Packages\…) the signature
// and the delta resolve the base like a download does, and the signature
// cache survives tidying up as long as its package is recorded.
func TestDeltaOnWindowsNode(t *testing.T) {
	a := newTestNode(t, nil, func(c *Config) { c.OS = OSWindows })
	u, _ := url.Parse(a.srv.URL)
	c, err := octoclient.NewClient(nil, u, testKey, "Spaces-1")
	if err != nil {
		t.Fatal(err)
	}
	v1 := randomBytes(11, 1<<20)
	if _, err := packages.UploadV2(c, "Spaces-1", "Win.Pkg.1.0.0.zip", bytes.NewReader(v1), packages.OverwriteModeFailIfExists, true); err != nil {
		t.Fatalf("first upload: %v", err)
	}
	for i, v := range [][]byte{mutated(v1, 5, 1), mutated(v1, 5, 2)} {
		r, err := packages.UploadV2(c, "Spaces-1", fmt.Sprintf("Win.Pkg.1.%d.0.zip", i+1), bytes.NewReader(v), packages.OverwriteModeFailIfExists, true)
		if err != nil || r.UploadInfo.DeltaBehaviour != packages.DeltaBehaviourUploadedDeltaFile || r.Hash != sha1hex(v) {
			t.Fatalf("delta upload %d on a Windows node: %+v, %v", i+1, r, err)
		}
	}
	row := assertConsistent(t, "Win.Pkg", "1.1.0", a)
	if !strings.HasPrefix(row.Path, WindowsPackagesRoot+`\`) {
		t.Fatalf("stored path %q, want the Windows form", row.Path)
	}
	noTempFiles(t, a)
}

// bombDelta is a "ratio bomb": a valid Octodiff delta of copies commands
// each copying the whole base, 17 bytes a command, naming a package whose
// hash no patch can give.
func bombDelta(t *testing.T, baseSize int64, copies int) []byte {
	t.Helper()
	var d bytes.Buffer
	w := octodiff.NewBinaryDeltaWriter(&d)
	if err := w.WriteMetadata(octodiff.DefaultHashAlgorithm, randomBytes(9, 20)); err != nil {
		t.Fatal(err)
	}
	for range copies {
		// Flushed one by one: the writer would merge adjacent copies.
		if err := w.WriteCopyCommand(0, baseSize); err != nil {
			t.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	return d.Bytes()
}

// A delta's output is bounded while it is written: copies beyond
// DeltaCopyFactor times the base, or a package beyond MaxPackageSize, are
// refused with 413 before their bytes are written, and nothing is stored.
// (Before the bound, the 17 KB bomb below made the node write 250 MiB and
// only then refuse it for its hash.)
func TestDeltaRatioBomb(t *testing.T) {
	logs := &syncbuf.Buffer{}
	const maxSize = 2 << 20
	a := newTestNode(t, nil, func(c *Config) {
		c.MaxPackageSize = maxSize
		c.Logger = slog.New(slog.NewTextHandler(logs, nil))
	})
	const baseSize = 256 << 10
	base := randomBytes(3, baseSize)
	if resp, body := a.upload(t, "", "Bomb.Pkg.1.0.0.zip", base); resp.StatusCode != http.StatusCreated {
		t.Fatalf("upload = %d %s", resp.StatusCode, body)
	}
	nothingStored := func(what, version string) {
		t.Helper()
		if _, err := a.db.Package(context.Background(), "Spaces-1", "Bomb.Pkg", version); err == nil {
			t.Fatalf("%s: a row for %s was recorded", what, version)
		}
		if dirExists(t, a, "Spaces-1/feeds-builtin/Bomb.Pkg/Bomb.Pkg."+version+".zip") {
			t.Fatalf("%s: a file for %s was stored", what, version)
		}
		noTempFiles(t, a)
	}

	bomb := bombDelta(t, baseSize, 1000) // 1000 × 256 KiB = 250 MiB of output
	start := time.Now()
	resp, body := a.postDelta(t, "Bomb.Pkg", "1.0.0", "", "Bomb.Pkg.2.0.0.zip", bomb)
	took := time.Since(start)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(body), "copies more than") {
		t.Fatalf("bomb = %d %s, want 413 saying it copies too much", resp.StatusCode, body)
	}
	nothingStored("bomb", "2.0.0")
	m := regexp.MustCompile(`delta upload refused.* bytesWritten=(\d+)`).FindStringSubmatch(logs.String())
	if m == nil {
		t.Fatalf("no refusal logged with bytesWritten:\n%s", logs.String())
	}
	written, _ := strconv.ParseInt(m[1], 10, 64)
	if written > DeltaCopyFactor*baseSize {
		t.Fatalf("the bomb wrote %d bytes before its refusal, more than %d", written, DeltaCopyFactor*baseSize)
	}
	t.Logf("bomb: %d-byte delta against a %d-byte base (would produce %d bytes): 413 after %d bytes written, in %v",
		len(bomb), baseSize, int64(1000)*baseSize, written, took)

	// A delta adding data past the maximum package size.
	next := append(bytes.Clone(base), randomBytes(4, maxSize)...)
	resp, body = a.postDelta(t, "Bomb.Pkg", "1.0.0", "", "Bomb.Pkg.3.0.0.zip", deltaOf(t, base, next))
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(body), "maximum package size of 2097152 bytes") {
		t.Fatalf("delta past the maximum size = %d %s, want 413", resp.StatusCode, body)
	}
	nothingStored("delta past the maximum size", "3.0.0")
	// The same package uploaded whole.
	resp, body = a.upload(t, "", "Bomb.Pkg.3.0.0.zip", next)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(body), "maximum package size") {
		t.Fatalf("full upload past the maximum size = %d %s, want 413", resp.StatusCode, body)
	}
	nothingStored("full upload past the maximum size", "3.0.0")

	// Within the bounds, a delta that copies its base twice applies.
	twice := append(bytes.Clone(base), base...)
	resp, body = a.postDelta(t, "Bomb.Pkg", "1.0.0", "", "Bomb.Pkg.4.0.0.zip", deltaOf(t, base, twice))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("delta copying its base twice = %d %s", resp.StatusCode, body)
	}
	if row := assertConsistent(t, "Bomb.Pkg", "4.0.0", a); row.Hash != sha1hex(twice) {
		t.Fatalf("patched hash %s, want %s", row.Hash, sha1hex(twice))
	}
}
