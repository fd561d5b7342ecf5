package main

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/octoha/octoha/harness/cluster/local"
)

// docBlock returns the command lines of every ```sh block in one section
// of a page of the docs (a path from the repository's root, e.g.
// docs/by-hand.md), comments stripped: the tests run them as written.
func docBlock(t *testing.T, page, heading string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("../..", page))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "\n## "+heading+"\n")
	if i < 0 {
		t.Fatalf("%s has no section %q", page, heading)
	}
	s = s[i+4:]
	if j := strings.Index(s, "\n## "); j >= 0 {
		s = s[:j]
	}
	var lines []string
	for {
		start := strings.Index(s, "```sh\n")
		if start < 0 {
			break
		}
		s = s[start+6:]
		end := strings.Index(s, "```")
		if end < 0 {
			t.Fatalf("%s, section %q: unterminated sh block", page, heading)
		}
		for _, l := range strings.Split(s[:end], "\n") {
			if c := strings.Index(l, "   #"); c >= 0 {
				l = l[:c]
			}
			if l = strings.TrimSpace(l); l != "" {
				lines = append(lines, l)
			}
		}
		s = s[end+3:]
	}
	if len(lines) == 0 {
		t.Fatalf("%s, section %q has no sh block", page, heading)
	}
	return lines
}

// binWorkDir is a temporary directory where bin/octoha is bin, so that
// the docs' lines run as written (bin/octoha …) from it.
func binWorkDir(t *testing.T, bin string) string {
	t.Helper()
	work := t.TempDir()
	if err := os.MkdirAll(filepath.Join(work, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(bin, filepath.Join(work, "bin", "octoha")); err != nil {
		t.Fatal(err)
	}
	return work
}

// The "Without Go" section, run as written in a directory holding a
// release-named binary and its checksum, with no Go on PATH.
func TestReadmeWithoutGo(t *testing.T) {
	bin := needUpBinary(t)
	dir := t.TempDir()
	dst := filepath.Join(dir, "octoha-linux-amd64")
	in, err := os.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY, 0o644) // not executable: the README's chmod does that
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(out, h), in); err != nil {
		t.Fatal(err)
	}
	in.Close()
	out.Close()
	sums := hex.EncodeToString(h.Sum(nil)) + "  octoha-linux-amd64\n" + strings.Repeat("0", 64) + "  octoha-windows-amd64.exe\n"
	if err := os.WriteFile(filepath.Join(dir, "SHA256SUMS"), []byte(sums), 0o644); err != nil {
		t.Fatal(err)
	}
	path := withoutGo(t)
	for _, line := range docBlock(t, "docs/certify.md", "Without Go") {
		start := time.Now()
		cmd := exec.Command("sh", "-c", line)
		cmd.Dir = dir
		cmd.Env = append(envWithout("PATH"), "PATH="+path)
		b, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("README line %q: %v\n%s", line, err, b)
		}
		t.Logf("%s: ok in %s", line, time.Since(start).Round(100*time.Millisecond))
	}
	runs, _ := filepath.Glob(filepath.Join(dir, "octoha-runs", "*", "index.html"))
	if len(runs) != 1 {
		t.Errorf("the README's chaos line left %d reports, want 1", len(runs))
	}
}

// The certify section's `octoha fault` lines, as written, against the
// default cluster the README's "A cluster on your machine" starts.
func TestReadmeFaultLines(t *testing.T) {
	bin := needUpBinary(t)
	dir := local.DefaultRunDir("default")
	if _, err := os.Stat(dir); err == nil {
		t.Skipf("a cluster named default is running in %s (yours?): not touching it", dir)
	}
	cleanupRun(t, dir)
	if code, stdout, stderr := runOctoha(t, bin, 3*time.Minute, "up", "--detach", "--db", "postgres", "--storage", "smb"); code != 0 {
		t.Fatalf("octoha up --detach: exit %d\n%s\n%s", code, stdout, stderr)
	}
	lines := docBlock(t, "docs/certify.md", "Certifying a real cluster")
	var faults []string
	for _, l := range lines {
		if strings.HasPrefix(l, "bin/octoha fault ") {
			faults = append(faults, l)
		}
	}
	if len(faults) < 5 {
		t.Fatalf("the README shows %d octoha fault lines: %q", len(faults), lines)
	}
	for _, line := range faults {
		args := strings.Fields(strings.TrimPrefix(line, "bin/octoha "))
		if code, stdout, stderr := runOctoha(t, bin, 2*time.Minute, args...); code != 0 {
			t.Fatalf("README line %q: exit %d\n%s\n%s", line, code, stdout, stderr)
		}
	}
	// db-stop was the last line: put the database back, then every node
	// serves again (status exits 0 only then).
	if code, stdout, stderr := runOctoha(t, bin, time.Minute, "fault", "db-start"); code != 0 {
		t.Fatalf("db-start: %d\n%s\n%s", code, stdout, stderr)
	}
	if code, stdout, stderr := runOctoha(t, bin, 90*time.Second, "down"); code != 0 {
		t.Fatalf("down: %d\n%s\n%s", code, stdout, stderr)
	}
}
