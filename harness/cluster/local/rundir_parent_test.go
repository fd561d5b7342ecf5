//go:build linux

package local

import (
	"os"
	"path/filepath"
	"testing"
)

// TestRunDirParentModeUnchanged (item 2): --run-dir in a directory of the
// user's leaves that directory's mode alone (it was chmodded 0755).
func TestRunDirParentModeUnchanged(t *testing.T) {
	parent := t.TempDir()
	if err := os.Chmod(parent, 0o750); err != nil {
		t.Fatal(err)
	}
	err := upFailing(t, "parent", filepath.Join(parent, "run"), "127.0.71")
	t.Logf("Up (nodes that exit at once): %v", err)
	assertMode(t, parent, 0o750, "Up")
	// Nor a parent Up had to create on the way: it is made private.
	deep := filepath.Join(parent, "a", "b", "run")
	_ = upFailing(t, "parent", deep, "127.0.71")
	assertMode(t, parent, 0o750, "Up")
	if m := modeOf(t, filepath.Join(parent, "a")); m&0o022 != 0 {
		t.Errorf("Up created %s writable by others (%#o)", filepath.Join(parent, "a"), m)
	}
}
