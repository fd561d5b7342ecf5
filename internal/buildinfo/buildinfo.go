// Package buildinfo describes the running octoha binary: the release tag
// and commit the linker set, else what Go's build information records.
package buildinfo

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// Build is what `octoha version` prints.
type Build struct {
	Version  string // release tag or git describe; "devel" when unknown
	Commit   string // full revision; "unknown" when not recorded
	Modified bool   // built from a tree with uncommitted changes (Go's vcs.modified)
	Go       string
	OS, Arch string
}

// Current describes this binary, given the values the linker set (see
// cmd/octoha's version and commit; empty when a plain go build left them).
func Current(ldVersion, ldCommit string) Build {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		bi = nil
	}
	return Resolve(ldVersion, ldCommit, bi)
}

// Resolve prefers the link-time values and falls back to the build
// information: `go install …@vX.Y.Z` records the module version, a `go
// build` inside a git checkout records vcs.revision and vcs.modified. Test
// binaries and `go run` record neither.
func Resolve(ldVersion, ldCommit string, bi *debug.BuildInfo) Build {
	v := Build{Version: ldVersion, Commit: ldCommit, Go: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
	if bi != nil {
		if bi.GoVersion != "" {
			v.Go = bi.GoVersion
		}
		if v.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if v.Commit == "" {
					v.Commit = s.Value
				}
			case "vcs.modified":
				v.Modified = s.Value == "true"
			}
		}
	}
	if v.Version == "" {
		v.Version = "devel"
	}
	if v.Commit == "" {
		v.Commit = "unknown"
	}
	return v
}

// Write writes the version, commit, Go version and platform, a line each.
func (v Build) Write(w io.Writer) {
	fmt.Fprintf(w, "octoha %s\n", v.Version)
	mod := ""
	if v.Modified {
		mod = " (modified)"
	}
	fmt.Fprintf(w, "commit:   %s%s\n", v.Commit, mod)
	fmt.Fprintf(w, "go:       %s\n", v.Go)
	fmt.Fprintf(w, "platform: %s/%s\n", v.OS, v.Arch)
}
