package main

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestVersionCommand(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"version"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
	for _, want := range []string{"octoha ", "commit:", "go:       " + runtime.Version(), "platform: " + runtime.GOOS + "/" + runtime.GOARCH} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	errb.Reset()
	if code := run([]string{"version", "extra"}, &out, &errb); code != 2 {
		t.Errorf("stray argument: exit %d, want 2 (stderr %q)", code, errb.String())
	}
}

func TestResolveVersion(t *testing.T) {
	vcs := func(rev, modified string) []debug.BuildSetting {
		return []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: modified}}
	}
	for _, tc := range []struct {
		name             string
		ldVersion, ldRev string
		bi               *debug.BuildInfo
		want             buildVersion
	}{
		{"no build info at all", "", "", nil,
			buildVersion{Version: "devel", Commit: "unknown"}},
		{"go run or go test: (devel), no vcs", "", "",
			&debug.BuildInfo{GoVersion: "go1.99", Main: debug.Module{Version: "(devel)"}},
			buildVersion{Version: "devel", Commit: "unknown", Go: "go1.99"}},
		{"plain go build in a dirty checkout", "", "",
			&debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs("abc123", "true")},
			buildVersion{Version: "devel", Commit: "abc123", Modified: true}},
		{"go build stamps a pseudo-version from git (Go 1.24+)", "", "",
			&debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261125192338-350f94e54b94+dirty"}, Settings: vcs("350f94e54b94", "true")},
			buildVersion{Version: "v0.0.0-20261125192338-350f94e54b94+dirty", Commit: "350f94e54b94", Modified: true}},
		{"go install @version", "", "",
			&debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}},
			buildVersion{Version: "v1.2.3", Commit: "unknown"}},
		{"make build: link-time values win", "v1.2.3-4-gabc1234-dirty", "abc1234full",
			&debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-2026-abc1234+dirty"}, Settings: vcs("other", "false")},
			buildVersion{Version: "v1.2.3-4-gabc1234-dirty", Commit: "abc1234full"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := resolveVersion(tc.ldVersion, tc.ldRev, tc.bi)
			tc.want.OS, tc.want.Arch = runtime.GOOS, runtime.GOARCH
			if tc.want.Go == "" {
				tc.want.Go = runtime.Version()
			}
			if got != tc.want {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// TestVersionLdflags builds octoha with the Makefile's -X flags (not its
// -trimpath, which would miss the build cache), so a renamed variable
// cannot silently turn every release into "devel".
func TestVersionLdflags(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	bin := filepath.Join(t.TempDir(), "octoha")
	build := exec.Command("go", "build", "-o", bin,
		"-ldflags", "-X main.version=v9.8.7-test -X main.commit=0123456789abcdef", ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("octoha version: %v\n%s", err, out)
	}
	for _, want := range []string{"octoha v9.8.7-test\n", "commit:   0123456789abcdef", "platform: " + runtime.GOOS + "/" + runtime.GOARCH} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
