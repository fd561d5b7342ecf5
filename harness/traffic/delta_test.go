package traffic_test

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"

	octoclient "github.com/OctopusDeploy/go-octopusdeploy/v2/pkg/client"
	"github.com/OctopusDeploy/go-octopusdeploy/v2/pkg/packages"

	"github.com/octoha/octoha/fakes/blob"
	"github.com/octoha/octoha/fakes/node"
	"github.com/octoha/octoha/fakes/store"
	"github.com/octoha/octoha/harness/history"
	"github.com/octoha/octoha/harness/traffic"
)

const deltaKey = "API-DELTATEST00000000000000000001"

// inProcessNode serves a fake node (SQLite and a local directory) from
// this process.
func inProcessNode(t *testing.T) (string, *store.DB) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	db, err := store.Open(ctx, "sqlite:"+filepath.Join(dir, "octopus.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	pkgs, err := blob.Open(ctx, filepath.Join(dir, "Packages"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pkgs.Close() })
	n, err := node.New(node.Config{ID: "OctopusServerNodes-1", Name: "Node1", DB: db, Packages: pkgs,
		APIKeys: []string{deltaKey}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(n)
	t.Cleanup(srv.Close)
	return srv.URL, db
}

// Delta uploads: the first version goes in full (the node has no earlier
// one), each later one as a small delta against the one before; every
// stored package has the SHA-1 of the full package the client generated,
// and the history records the signature requests and, per upload, the
// delta's size against the package's.
func TestDeltaUploadsAgainstFakeNode(t *testing.T) {
	url, db := inProcessNode(t)
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // where the deltas are built
	const size = 8 << 20
	h := filepath.Join(t.TempDir(), "history.jsonl")
	rec, err := history.Create(h)
	if err != nil {
		t.Fatal(err)
	}
	opts := traffic.UploadOptions{URL: url, APIKey: deltaKey, Size: size, Count: 3, Seed: 11, Delta: true, Change: 0.05, Recorder: rec}
	sum, err := traffic.Upload(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	if sum.OK != 3 || sum.Deltas != 2 {
		t.Fatalf("summary: %d ok, %d deltas; want 3 and 2: %+v", sum.OK, sum.Deltas, sum.Packages)
	}
	for i, p := range sum.Packages {
		row, err := db.Package(context.Background(), "Spaces-1", p.Spec.PackageID, p.Spec.Version)
		if err != nil || row.Hash != p.Spec.Hash() || row.Size != size {
			t.Fatalf("package %d stored as %+v (%v), want SHA-1 %s", i, row, err, p.Spec.Hash())
		}
		if i == 0 {
			if p.DeltaBytes != 0 || p.BytesSent < size {
				t.Fatalf("first package: delta %d bytes, sent %d; want a full upload", p.DeltaBytes, p.BytesSent)
			}
			continue
		}
		if p.BaseVersion != sum.Packages[i-1].Spec.Version || p.DeltaBytes == 0 || p.DeltaBytes > size/5 || p.BytesSent > size/5 {
			t.Fatalf("package %d: base %q, delta %d bytes, sent %d; want a small delta against %s",
				i, p.BaseVersion, p.DeltaBytes, p.BytesSent, sum.Packages[i-1].Spec.Version)
		}
	}
	if left, _ := os.ReadDir(tmp); len(left) > 0 {
		t.Fatalf("delta files left behind: %v", left)
	}
	hist, err := history.Load(h)
	if err != nil {
		t.Fatal(err)
	}
	if sigs := hist.OpsOfKind(history.KindSignature); len(sigs) != 3 || sigs[0].Status != 404 || sigs[1].Status != 200 || sigs[1].BaseVersion == "" {
		t.Fatalf("signature ops: %+v", sigs)
	}
	ups := hist.OpsOfKind(history.KindUpload)
	if len(ups) != 3 || ups[2].DeltaBytes == 0 || ups[2].Size != size || ups[2].Hash != sum.Packages[2].Spec.Hash() || ups[2].Bytes >= size/5 {
		t.Fatalf("upload ops: %+v", ups)
	}
	t.Logf("full %d bytes; deltas %d and %d bytes (%.1f%%, %.1f%%)", size, ups[1].DeltaBytes, ups[2].DeltaBytes,
		100*float64(ups[1].DeltaBytes)/size, 100*float64(ups[2].DeltaBytes)/size)

	// Continuing the lineage from its fourth version (First) works, and a
	// delta lineage cannot run concurrently.
	opts.First, opts.Count, opts.Recorder = 3, 1, nil
	if sum, err := traffic.Upload(context.Background(), opts); err != nil || sum.OK != 1 || sum.Packages[0].BaseVersion != "1.11.2" {
		t.Fatalf("continue the lineage: %+v, %v", sum, err)
	}
	opts.Concurrency, opts.Count = 2, 2
	if err := opts.Validate(); err == nil {
		t.Fatal("a concurrent delta lineage was accepted")
	}
}

// countingTransport counts request body bytes per method and path.
type countingTransport struct {
	mu    sync.Mutex
	bytes map[string]int64
}

type countedBody struct {
	r   io.ReadCloser
	key string
	t   *countingTransport
}

func (c countedBody) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.t.mu.Lock()
	c.t.bytes[c.key] += int64(n)
	c.t.mu.Unlock()
	return n, err
}

func (c countedBody) Close() error { return c.r.Close() }

func (t *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		r.Body = countedBody{r: r.Body, key: r.Method + " " + r.URL.Path, t: t}
	}
	return http.DefaultTransport.RoundTrip(r)
}

// Through HAProxy to a two-node cluster of node processes:
// go-octopusdeploy's UploadV2 with delta compression sends the second
// version as a small delta whose patched file has the full package's
// SHA-1, downloadable through the load balancer; octoha's own delta
// uploads do the same.
func TestOfficialClientDeltaThroughHAProxy(t *testing.T) {
	c := upLocalCluster(t, "127.0.130", 2)
	ct := &countingTransport{bytes: map[string]int64{}}
	u, _ := url.Parse(c.URL())
	oc, err := octoclient.NewClient(&http.Client{Transport: ct}, u, c.APIKey(), "Spaces-1")
	if err != nil {
		t.Fatalf("NewClient through HAProxy: %v", err)
	}
	const size = 32 << 20
	v1 := traffic.DeltaPackageSpec("Official.Delta", 3, 0, size, 0.05)
	v2 := traffic.DeltaPackageSpec("Official.Delta", 3, 1, size, 0.05)
	r1, err := packages.UploadV2(oc, "Spaces-1", v1.FileName(), v1.Reader(), packages.OverwriteModeFailIfExists, true)
	if err != nil || r1.UploadInfo.DeltaBehaviour != packages.DeltaBehaviourNoPreviousFile {
		t.Fatalf("first version: %+v, %v", r1, err)
	}
	r2, err := packages.UploadV2(oc, "Spaces-1", v2.FileName(), v2.Reader(), packages.OverwriteModeFailIfExists, true)
	if err != nil || r2.UploadMethod != packages.UploadMethodDelta || r2.UploadInfo.DeltaBehaviour != packages.DeltaBehaviourUploadedDeltaFile {
		t.Fatalf("second version: %+v, %v", r2, err)
	}
	sent := ct.bytes["POST /api/Spaces-1/packages/Official.Delta/"+v1.Version+"/delta"]
	if sent == 0 || sent > size/10 {
		t.Fatalf("bytes sent per request: %v; want a small body on the delta endpoint", ct.bytes)
	}
	if r2.Hash != v2.Hash() {
		t.Fatalf("stored SHA-1 %s, want the full file's %s", r2.Hash, v2.Hash())
	}
	// Download it through the load balancer and hash it.
	req, _ := http.NewRequest(http.MethodGet, c.URL()+"/api/Spaces-1/packages/packages-"+v2.PackageID+"."+v2.Version+"/raw", nil)
	req.Header.Set("X-Octopus-ApiKey", c.APIKey())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	h := sha1.New()
	n, err := io.Copy(h, resp.Body)
	resp.Body.Close()
	if err != nil || n != size || hex.EncodeToString(h.Sum(nil)) != v2.Hash() {
		t.Fatalf("download through HAProxy: %d bytes, SHA-1 %x (%v); want %d bytes, %s", n, h.Sum(nil), err, size, v2.Hash())
	}
	t.Logf("through HAProxy: full %d bytes, delta body %d bytes (%.1f%%)", size, sent, 100*float64(sent)/size)

	// octoha's uploader continues the same lineage as deltas.
	sum, err := traffic.Upload(context.Background(), traffic.UploadOptions{URL: c.URL(), APIKey: c.APIKey(), Size: size,
		First: 2, Count: 2, Seed: 3, PackageIDPrefix: "Official.Delta", Delta: true, Change: 0.05})
	if err != nil || sum.OK != 2 || sum.Deltas != 2 || sum.Packages[0].BaseVersion != v2.Version {
		t.Fatalf("octoha delta uploads through HAProxy: %+v, %v", sum, err)
	}
}
