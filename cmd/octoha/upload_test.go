package main

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/octoha/octoha/harness/history"
	"github.com/octoha/octoha/octopusapi"
)

const trafficTestKey = "API-CLITEST42"

// trafficTestServer is a minimal node for the upload and attack commands:
// it hashes uploads and answers ping, and counts every request so tests can
// prove that bad input sends nothing.
type trafficTestServer struct {
	*httptest.Server
	requests atomic.Int64
	mu       sync.Mutex
	refuse   int // status to answer uploads with instead of storing; 0: store
	keys     []string
}

func newTrafficTestServer(t *testing.T) *trafficTestServer {
	s := &trafficTestServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		s.mu.Lock()
		s.keys = append(s.keys, r.Header.Get(octopusapi.HeaderAPIKey))
		refuse := s.refuse
		s.mu.Unlock()
		w.Header().Set(octopusapi.HeaderNode, "NodeT")
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.URL.Path == octopusapi.PingPath:
			_, _ = io.WriteString(w, `{"Id":"NodeT"}`)
		case r.Method == http.MethodPost && r.URL.Path == octopusapi.UploadPath(octopusapi.DefaultSpaceID, ""):
			if refuse != 0 {
				w.WriteHeader(refuse)
				_ = json.NewEncoder(w).Encode(octopusapi.Error{ErrorMessage: "refused by test"})
				return
			}
			mr, err := r.MultipartReader()
			if err != nil {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			part, err := mr.NextPart()
			if err != nil {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			h := sha1.New()
			n, err := io.Copy(h, part)
			if err != nil {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			pf, err := octopusapi.ParseFileName(part.FileName())
			if err != nil {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			w.WriteHeader(http.StatusCreated)
			_ = json.NewEncoder(w).Encode(octopusapi.Package{PackageId: pf.ID, Version: pf.Version, Hash: hex.EncodeToString(h.Sum(nil)), PackageSizeBytes: n})
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func TestUploadCommandBadInputSendsNothing(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir()) // no cluster named default here
	srv := newTrafficTestServer(t)
	t.Setenv(trafficAPIKeyEnv, trafficTestKey)
	for name, args := range map[string][]string{
		"no url":         {"--size", "1KiB"},
		"bad url":        {"--url", "ftp://127.0.0.1/"},
		"bad size":       {"--url", srv.URL, "--size", "1XB"},
		"negative size":  {"--url", srv.URL, "--size", "-5"},
		"zero count":     {"--url", srv.URL, "--count", "0"},
		"bad mode":       {"--url", srv.URL, "--overwrite-mode", "replace"},
		"bad space":      {"--url", srv.URL, "--space", "Default"},
		"bad prefix":     {"--url", srv.URL, "--package-id-prefix", "no spaces"},
		"negative retry": {"--url", srv.URL, "--retries", "-1"},
		"zero backoff":   {"--url", srv.URL, "--backoff", "0s"},
		"stray argument": {"--url", srv.URL, "extra"},
		"unknown flag":   {"--url", srv.URL, "--bogus"},
		"bad number":     {"--url", srv.URL, "--count", "many"},
		"bad rate":       {"--url", srv.URL, "--rate", "fast"},
		"negative rate":  {"--url", srv.URL, "--rate", "-1MB/s"},
	} {
		var stdout, stderr bytes.Buffer
		err := runUpload(t.Context(), args, &stdout, &stderr)
		if !errors.Is(err, errUsage) {
			t.Errorf("%s: err = %v, want a usage error", name, err)
		}
	}
	t.Setenv(trafficAPIKeyEnv, "")
	var stdout, stderr bytes.Buffer
	if err := runUpload(t.Context(), []string{"--url", srv.URL}, &stdout, &stderr); !errors.Is(err, errUsage) || !strings.Contains(err.Error(), trafficAPIKeyEnv) {
		t.Errorf("no key: err = %v", err)
	}
	if n := srv.requests.Load(); n != 0 {
		t.Fatalf("bad input sent %d requests", n)
	}
	// Through the real entry point a usage error exits 2.
	if code := run([]string{"upload", "--size", "huge"}, &stdout, &stderr); code != 2 {
		t.Fatalf("exit code %d, want 2", code)
	}
}

func TestUploadCommand(t *testing.T) {
	srv := newTrafficTestServer(t)
	t.Setenv(trafficAPIKeyEnv, trafficTestKey)
	dir := filepath.Join(t.TempDir(), "out")
	var stdout, stderr bytes.Buffer
	err := runUpload(t.Context(), []string{"--url", srv.URL, "--size", "300KiB", "--count", "3", "--concurrency", "2", "--seed", "9", "--out", dir}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("upload: %v\nstdout:\n%s\nstderr:\n%s", err, &stdout, &stderr)
	}
	out := stdout.String()
	for _, want := range []string{"OctohaLoad.1.9.0.zip", "OctohaLoad.1.9.2.zip", "3 packages: 3 ok, 0 failed, 0 unknown", "seed 9", "NodeT"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out+stderr.String(), trafficTestKey) {
		t.Fatal("the API key was printed")
	}
	for _, k := range srv.keys {
		if k != trafficTestKey {
			t.Fatalf("server got key %q", k)
		}
	}
	h, err := history.Load(filepath.Join(dir, historyFileName))
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Meta) != 1 || len(h.Commands) != 1 || h.Commands[0].Seed != 9 || h.Commands[0].Name != "upload-1" || len(h.OpsOfKind(history.KindUpload)) != 3 {
		t.Fatalf("history: meta %+v, commands %+v, %d ops", h.Meta, h.Commands, len(h.Ops))
	}
	f, err := os.Open(filepath.Join(dir, "upload-1"+resultsSuffix))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := vegeta.NewDecoder(f)
	n := 0
	for {
		var r vegeta.Result
		if err := dec.Decode(&r); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if r.Code != 201 {
			t.Fatalf("result: %+v", r)
		}
		n++
	}
	if n != 3 {
		t.Fatalf("results = %d, want 3", n)
	}
}

func TestUploadCommandFailureExitsNonZero(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir()) // the default --out
	srv := newTrafficTestServer(t)
	srv.refuse = http.StatusForbidden
	var stdout, stderr bytes.Buffer
	code := run([]string{"upload", "--url", srv.URL, "--api-key", trafficTestKey, "--size", "1KiB", "--quiet"}, &stdout, &stderr)
	if code != 1 {
		t.Fatalf("exit code %d, want 1\nstdout:\n%s\nstderr:\n%s", code, &stdout, &stderr)
	}
	if !strings.Contains(stdout.String(), "refused by test") || !strings.Contains(stderr.String(), "did not succeed") {
		t.Fatalf("stdout:\n%s\nstderr:\n%s", &stdout, &stderr)
	}
	if strings.Contains(stdout.String()+stderr.String(), trafficTestKey) {
		t.Fatal("the API key was printed")
	}
}

func TestParseByteRate(t *testing.T) {
	for in, want := range map[string]int64{"": 0, "0": 0, "20MB/s": 20_000_000, "2MiB/s": 2 << 20, "500KB": 500_000} {
		got, err := parseByteRate(in)
		if err != nil || got != want {
			t.Errorf("parseByteRate(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
}
