package checker

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// TempDir is the directory, directly under the Packages root, where the fake
// node stages uploads before publishing them with a rename.
const TempDir = ".octoha-tmp"

// FileInfo is one file of the Packages store.
type FileInfo struct {
	// Name is relative to the Packages root, slash-separated, e.g.
	// "Spaces-1/feeds-builtin/Acme/Acme.1.0.0.zip".
	Name string `json:"name"`
	Size int64  `json:"size"`
}

// FileListing is a listing of the Packages store, obtained by the harness
// from the share itself (e.g. fakes/blob Store.Walk on the Packages root), so
// that the checker needs no store access. A nil *FileListing means no
// listing is available (e.g. an external cluster), and NoLeftovers skips.
type FileListing struct {
	// Source says where the listing came from, for evidence; no secrets.
	Source string     `json:"source,omitempty"`
	Files  []FileInfo `json:"files"`
}

// IsTempFile reports whether name (relative to the Packages root) is a
// temporary or partial file, which must not survive a run: anything under
// the TempDir directory at the root, or any file whose name ends in ".tmp"
// or ".partial" (case-insensitive), wherever it is.
func IsTempFile(name string) bool {
	name = strings.TrimPrefix(strings.ReplaceAll(name, `\`, "/"), "/")
	if name == TempDir || strings.HasPrefix(name, TempDir+"/") {
		return true
	}
	lower := strings.ToLower(name)
	return strings.HasSuffix(lower, ".tmp") || strings.HasSuffix(lower, ".partial")
}

// ListDir lists every regular file under a local Packages directory, with
// names relative to root, sorted. Symbolic links are listed, not followed.
func ListDir(root string) (*FileListing, error) {
	st, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("list packages directory: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("list packages directory: %s is not a directory", root)
	}
	l := &FileListing{Source: "dir " + root, Files: []FileInfo{}}
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		l.Files = append(l.Files, FileInfo{Name: filepath.ToSlash(rel), Size: info.Size()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list packages directory %s: %w", root, err)
	}
	sort.Slice(l.Files, func(i, j int) bool { return l.Files[i].Name < l.Files[j].Name })
	return l, nil
}
