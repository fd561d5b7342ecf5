package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// version and commit are set by the Makefile (make build, make release):
//
//	-ldflags "-X main.version=$(git describe --tags --always --dirty) -X main.commit=$(git rev-parse HEAD)"
//
// A plain `go build` leaves them empty; the build information Go embeds
// then supplies what is known (see buildVersion).
var (
	version string
	commit  string
)

// buildVersion is what `octoha version` prints.
type buildVersion struct {
	Version  string // release tag or git describe; "devel" when unknown
	Commit   string // full revision; "unknown" when not recorded
	Modified bool   // built from a tree with uncommitted changes (Go's vcs.modified)
	Go       string
	OS, Arch string
}

// currentVersion describes this binary.
func currentVersion() buildVersion {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		bi = nil
	}
	return resolveVersion(version, commit, bi)
}

// resolveVersion prefers the link-time values and falls back to the build
// information: `go install …@vX.Y.Z` records the module version, a `go
// build` inside a git checkout records vcs.revision and vcs.modified. Test
// binaries and `go run` record neither.
func resolveVersion(ldVersion, ldCommit string, bi *debug.BuildInfo) buildVersion {
	v := buildVersion{Version: ldVersion, Commit: ldCommit, Go: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
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

func (v buildVersion) write(w io.Writer) {
	fmt.Fprintf(w, "octoha %s\n", v.Version)
	mod := ""
	if v.Modified {
		mod = " (modified)"
	}
	fmt.Fprintf(w, "commit:   %s%s\n", v.Commit, mod)
	fmt.Fprintf(w, "go:       %s\n", v.Go)
	fmt.Fprintf(w, "platform: %s/%s\n", v.OS, v.Arch)
}

func runVersion(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("version", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	currentVersion().write(stdout)
	return nil
}
