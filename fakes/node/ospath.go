package node

import (
	"fmt"
	"path"
	"regexp"
	"strings"
)

// Operating systems a node can emulate. The seed: "Due to how Octopus
// stores the paths to various BLOB data (task logs, artifacts, packages,
// etc.), you cannot run both Windows, and Octopus Linux containers in the
// same Octopus Deploy instance." A node records storage paths in its own
// OS's form in the shared database, and a node of the other OS cannot
// resolve them. This file is the one place that knows both forms.
const (
	OSLinux   = "linux"
	OSWindows = "windows"
)

// WindowsPackagesRoot is where a Windows node's Packages store lives, as
// in the seed's set-up (mklink /D C:\Octopus\Packages \\share\Packages).
const WindowsPackagesRoot = `C:\Octopus\Packages`

// drivePath matches a Windows absolute path (C:\… or a UNC \\host\…).
var drivePath = regexp.MustCompile(`^(?:[A-Za-z]:\\|\\\\)`)

// ValidOS reports whether os names an operating system a node can
// emulate.
func ValidOS(os string) error {
	if os != OSLinux && os != OSWindows {
		return fmt.Errorf("operating system %q: want %s or %s", os, OSLinux, OSWindows)
	}
	return nil
}

// OSPathError is a stored path that this node's operating system cannot
// resolve: it was recorded by a node of the other one.
type OSPathError struct {
	Path   string // as stored
	PathOS string // the form it is in
	NodeOS string // the node that tried
}

func (e *OSPathError) Error() string {
	return fmt.Sprintf("the stored path %q is in the %s form and this node runs %s: Windows and Linux nodes cannot be mixed in one Octopus instance, since each records BLOB paths in its own form", e.Path, osTitle(e.PathOS), osTitle(e.NodeOS))
}

func osTitle(os string) string {
	if os == OSWindows {
		return "Windows"
	}
	return "Linux container"
}

// storedPath is what a node of os records in the database for a file at
// rel (slash-separated, relative to the store's root). Linux nodes keep
// the relative form the fake has always stored, so existing clusters and
// their databases are unchanged.
func storedPath(os, rel string) string {
	if os == OSWindows {
		return WindowsPackagesRoot + `\` + strings.ReplaceAll(rel, "/", `\`)
	}
	return rel
}

// resolvePath turns a stored path back into one relative to the store's
// root, or fails with an *OSPathError when it is in the other OS's form.
func resolvePath(os, stored string) (string, error) {
	windowsForm := drivePath.MatchString(stored)
	switch {
	case os == OSWindows && windowsForm:
		prefix := WindowsPackagesRoot + `\`
		if len(stored) <= len(prefix) || !strings.EqualFold(stored[:len(prefix)], prefix) {
			return "", fmt.Errorf("the stored path %q is outside the Packages root %s", stored, WindowsPackagesRoot)
		}
		return path.Clean(strings.ReplaceAll(stored[len(prefix):], `\`, "/")), nil
	case os == OSWindows:
		return "", &OSPathError{Path: stored, PathOS: OSLinux, NodeOS: os}
	case windowsForm || strings.Contains(stored, `\`):
		return "", &OSPathError{Path: stored, PathOS: OSWindows, NodeOS: os}
	}
	return stored, nil
}
