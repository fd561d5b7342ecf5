// Package otheruser lets a test try something as another local user
// (nobody): the harness's control surfaces and run directory must be the
// cluster's owner's alone, and the only convincing check is to try them
// as someone else. The current test binary is copied where that user can
// run it and started with that user's credentials, running one helper
// test of the caller's.
package otheruser

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Env is set (to the probes, JSON) in the helper's environment.
const Env = "OCTOHA_OTHERUSER_PROBES"

// Probe is one thing to try as the other user.
type Probe struct {
	Name string `json:"name"`
	// Kind: "read" a file, "dial-unix" a socket, "dial-tcp" an address,
	// "http" a request (Method, URL, Body; Socket: over a unix socket).
	Kind   string `json:"kind"`
	Target string `json:"target"`
	Method string `json:"method,omitempty"`
	Body   string `json:"body,omitempty"`
	Socket string `json:"socket,omitempty"`
}

// Result is what the other user got: Err is empty when it worked.
type Result struct {
	Name   string `json:"name"`
	Err    string `json:"err,omitempty"`
	Detail string `json:"detail,omitempty"` // e.g. an HTTP status
}

// User is the account probes run as.
const User = "nobody"

// Skip skips tb unless it can run commands as User: only root can.
func Skip(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("trying the cluster as another local user needs root (to run a process as " + User + ")")
	}
	if _, err := user.Lookup(User); err != nil {
		tb.Skipf("no %s user to try the cluster as: %v", User, err)
	}
}

// Run runs probes as User: it re-runs the current test binary as that
// user, running only the test helper (which must call Serve first), and
// returns each probe's result by name.
func Run(tb testing.TB, helper string, probes []Probe) map[string]Result {
	tb.Helper()
	Skip(tb)
	u, err := user.Lookup(User)
	if err != nil {
		tb.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	self, err := os.Executable()
	if err != nil {
		tb.Fatal(err)
	}
	// The go tool's build directory is root's alone: copy the binary
	// where the other user may run it (and nothing else).
	dir, err := os.MkdirTemp("", "octoha-otheruser-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o711); err != nil {
		tb.Fatal(err)
	}
	bin := filepath.Join(dir, "helper.test")
	if err := copyFile(self, bin, 0o755); err != nil {
		tb.Fatalf("copy the test binary for %s: %v", User, err)
	}
	spec, _ := json.Marshal(probes)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-test.run=^"+helper+"$", "-test.count=1", "-test.v")
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=/", Env + "=" + string(spec)}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		tb.Fatalf("helper %s as %s: %v\n%s", helper, User, err, out.String())
	}
	res := map[string]Result{}
	for _, line := range strings.Split(out.String(), "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, resultPrefix) {
			continue
		}
		var r Result
		if err := json.Unmarshal([]byte(strings.TrimPrefix(line, resultPrefix)), &r); err != nil {
			tb.Fatalf("helper output %q: %v", line, err)
		}
		res[r.Name] = r
	}
	for _, p := range probes {
		r, ok := res[p.Name]
		if !ok {
			tb.Fatalf("helper %s as %s did not report probe %s:\n%s", helper, User, p.Name, out.String())
		}
		got := r.Detail
		if r.Err != "" {
			got = "refused: " + r.Err
		}
		tb.Logf("as %s: %s (%s %s) → %s", User, p.Name, p.Kind, p.Target, got)
	}
	return res
}

const resultPrefix = "OTHERUSER-RESULT "

// Serve is the helper test's body: outside Run it skips; under Run it
// tries each probe and prints its result for Run to read.
func Serve(t *testing.T) {
	raw := os.Getenv(Env)
	if raw == "" {
		t.Skip("helper: run as " + User + " by otheruser.Run, not on its own")
	}
	var probes []Probe
	if err := json.Unmarshal([]byte(raw), &probes); err != nil {
		t.Fatal(err)
	}
	for _, p := range probes {
		r := try(p)
		r.Name = p.Name
		b, _ := json.Marshal(r)
		fmt.Println(resultPrefix + string(b))
	}
}

func copyFile(from, to string, mode os.FileMode) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Chmod(to, mode)
}
