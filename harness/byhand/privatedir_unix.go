//go:build unix

package byhand

import (
	"fmt"
	"os"
	"syscall"
)

// privateDir creates dir (0700) if needed and refuses one that is a
// symbolic link, not a directory, someone else's, or writable by others:
// under a shared /tmp anyone could have created it first.
func privateDir(dir string) error {
	if err := os.Mkdir(dir, 0o700); err != nil && !os.IsExist(err) {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	switch {
	case !fi.IsDir():
		return fmt.Errorf("%s is not a directory (a symbolic link?): refusing to write runs there; give --out", dir)
	case ok && int(st.Uid) != os.Getuid():
		return fmt.Errorf("%s belongs to uid %d, not you: refusing to write runs there; give --out", dir, st.Uid)
	case fi.Mode().Perm()&0o022 != 0:
		return fmt.Errorf("%s is writable by others (mode %v): refusing to write runs there; give --out", dir, fi.Mode().Perm())
	}
	return nil
}
