package main

import (
	"context"
	"io"

	"github.com/octoha/octoha/internal/buildinfo"
)

// version and commit are set by the Makefile (make build, make release):
//
//	-ldflags "-X main.version=$(git describe --tags --always --dirty) -X main.commit=$(git rev-parse HEAD)"
//
// A plain `go build` leaves them empty; the build information Go embeds
// then supplies what is known (see buildinfo.Resolve).
var (
	version string
	commit  string
)

// currentVersion describes this binary.
func currentVersion() buildinfo.Build { return buildinfo.Current(version, commit) }

func runVersion(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("version", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	currentVersion().Write(stdout)
	return nil
}
