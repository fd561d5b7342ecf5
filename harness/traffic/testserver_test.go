package traffic

import (
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/octoha/octoha/harness/payload"
	"github.com/octoha/octoha/octopusapi"
)

const testKey = "API-TESTKEY123"

// stored is one package the test node holds.
type stored struct {
	hash string
	size int64
}

// seenRequest is what the test node observed about one upload request.
type seenRequest struct {
	opID, apiKey, field, fileName, partType string
	contentLength                           int64
	transferEncoding                        []string
	overwriteMode                           string
}

// fault lets a test change how the n-th upload request (1-based) is
// answered. It runs after the body was read (when fully read) and returns
// true if it wrote or dropped the response itself.
type fault func(w http.ResponseWriter, r *http.Request, n int, body *bodyInfo) bool

// bodyInfo is the file part the node read.
type bodyInfo struct {
	name     string
	hash     string
	size     int64
	complete bool // the whole multipart body was read
}

// testNode is a minimal upload endpoint: it parses multipart, hashes the
// file part as it streams, stores (hash, size) by file name and answers
// like an Octopus node, with X-Octoha-Node.
type testNode struct {
	t    *testing.T
	name string
	srv  *httptest.Server

	mu       sync.Mutex
	packages map[string]stored // by "<ID>.<Version>"
	uploads  int
	gets     int
	seen     []seenRequest
	// beforeBody, if set, runs before the body is read; returning true
	// means it handled the request.
	beforeBody func(w http.ResponseWriter, r *http.Request, n int) bool
	afterBody  fault
	// storeOverride replaces the stored hash (to fake a corrupt store).
	storeOverride string
}

func newTestNode(t *testing.T, name string) *testNode {
	n := &testNode{t: t, name: name, packages: map[string]stored{}}
	n.srv = httptest.NewServer(http.HandlerFunc(n.serve))
	t.Cleanup(n.srv.Close)
	return n
}

func (n *testNode) URL() string { return n.srv.URL }

func (n *testNode) writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set(octopusapi.HeaderNode, n.name)
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func (n *testNode) serve(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get(octopusapi.HeaderAPIKey) != testKey {
		n.writeJSON(w, http.StatusUnauthorized, octopusapi.Error{ErrorMessage: "You must be logged in"})
		return
	}
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/api/Spaces-1/packages/raw":
		n.upload(w, r)
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/api/Spaces-1/packages/"):
		n.mu.Lock()
		n.gets++
		id := strings.TrimPrefix(r.URL.Path, "/api/Spaces-1/packages/")
		pid, ver, ok := octopusapi.SplitPackageResourceID(id)
		p, found := n.packages[pid+"."+ver]
		n.mu.Unlock()
		if !ok || !found {
			n.writeJSON(w, http.StatusNotFound, octopusapi.Error{ErrorMessage: "not found"})
			return
		}
		n.writeJSON(w, http.StatusOK, octopusapi.Package{Id: id, PackageId: pid, Version: ver, Hash: p.hash, PackageSizeBytes: p.size})
	default:
		n.writeJSON(w, http.StatusNotFound, octopusapi.Error{ErrorMessage: "no route"})
	}
}

func (n *testNode) upload(w http.ResponseWriter, r *http.Request) {
	n.mu.Lock()
	n.uploads++
	num := n.uploads
	before, after := n.beforeBody, n.afterBody
	n.mu.Unlock()
	if before != nil && before(w, r, num) {
		return
	}
	seen := seenRequest{
		opID: r.Header.Get(octopusapi.HeaderOp), apiKey: r.Header.Get(octopusapi.HeaderAPIKey),
		contentLength: r.ContentLength, transferEncoding: r.TransferEncoding,
		overwriteMode: r.URL.Query().Get("overwriteMode"),
	}
	mr, err := r.MultipartReader()
	if err != nil {
		n.writeJSON(w, http.StatusBadRequest, octopusapi.Error{ErrorMessage: "not multipart: " + err.Error()})
		return
	}
	var info bodyInfo
	buf := make([]byte, 256<<10)
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			info.complete = true
			break
		}
		if err != nil {
			break // the client went away mid-body
		}
		if part.FileName() == "" {
			continue
		}
		seen.field, seen.fileName = part.FormName(), part.FileName()
		seen.partType, _, _ = mime.ParseMediaType(part.Header.Get("Content-Type"))
		h := sha1.New()
		size, err := io.CopyBuffer(h, part, buf)
		info.name, info.size, info.hash = part.FileName(), size, hex.EncodeToString(h.Sum(nil))
		if err != nil {
			break
		}
	}
	n.mu.Lock()
	n.seen = append(n.seen, seen)
	n.mu.Unlock()
	if after != nil && after(w, r, num, &info) {
		return
	}
	if !info.complete || info.name == "" {
		n.writeJSON(w, http.StatusBadRequest, octopusapi.Error{ErrorMessage: "incomplete body"})
		return
	}
	n.store(w, r, info)
}

// store publishes the package and answers as Octopus does.
func (n *testNode) store(w http.ResponseWriter, r *http.Request, info bodyInfo) {
	pf, err := octopusapi.ParseFileName(info.name)
	if err != nil {
		n.writeJSON(w, http.StatusBadRequest, octopusapi.Error{ErrorMessage: err.Error()})
		return
	}
	key := pf.ID + "." + pf.Version
	n.mu.Lock()
	_, exists := n.packages[key]
	mode := r.URL.Query().Get("overwriteMode")
	if exists && mode == octopusapi.FailIfExists {
		n.mu.Unlock()
		n.writeJSON(w, http.StatusConflict, octopusapi.Error{ErrorMessage: "A package with the same ID and version already exists", Errors: []string{"PackageAlreadyExists"}})
		return
	}
	h := info.hash
	if n.storeOverride != "" {
		h = n.storeOverride
	}
	n.packages[key] = stored{hash: h, size: info.size}
	n.mu.Unlock()
	n.writeJSON(w, http.StatusCreated, octopusapi.Package{
		Id: octopusapi.PackageResourceID(pf.ID, pf.Version), PackageId: pf.ID, Version: pf.Version,
		Hash: h, PackageSizeBytes: info.size, FeedId: octopusapi.BuiltInFeedID, FileExtension: pf.Extension,
		Published: time.Now(),
	})
}

// storeOnly records the package without answering (used to fake "stored,
// then the connection broke").
func (n *testNode) storeOnly(info bodyInfo) error {
	pf, err := octopusapi.ParseFileName(info.name)
	if err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.packages[pf.ID+"."+pf.Version] = stored{hash: info.hash, size: info.size}
	return nil
}

// dropConn closes the client's connection without an answer.
func dropConn(t *testing.T, w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		t.Error("response writer cannot hijack")
		return
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		t.Errorf("hijack: %v", err)
		return
	}
	conn.Close()
}

func (n *testNode) get(s payload.Spec) stored {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.packages[s.PackageID+"."+s.Version]
}

func (n *testNode) counts() (uploads, gets int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.uploads, n.gets
}

func (n *testNode) String() string { return fmt.Sprintf("node %s at %s", n.name, n.srv.URL) }
