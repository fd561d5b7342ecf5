//go:build linux

package postgres

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
)

// chownTree gives dir and everything in it to uid:gid. A reused data
// directory is normally already theirs; this is cheap then.
func chownTree(dir string, uid, gid int) error {
	return filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if ok && int(st.Uid) == uid && int(st.Gid) == gid {
			return nil
		}
		if err := os.Lchown(p, uid, gid); err != nil {
			return fmt.Errorf("postgres: chown %s to the %s user: %w", p, osUser, err)
		}
		return nil
	})
}

// ensureSearchable lets uid:gid traverse dir and each of its parents by
// adding only the search (x) bit where it lacks one: temp directories
// (t.TempDir, os.MkdirTemp) are 0700 root, and the server must reach its
// data directory below them. Nothing becomes listable or writable.
func ensureSearchable(dir string, uid, gid int) error {
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("postgres: stat %s: %w", d, err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		mode := fi.Mode().Perm()
		var bit os.FileMode = 0o001
		switch {
		case int(st.Uid) == uid:
			bit = 0o100
		case int(st.Gid) == gid:
			bit = 0o010
		}
		if mode&bit == 0 {
			if err := os.Chmod(d, fi.Mode()&os.ModePerm|fi.Mode()&(os.ModeSticky|os.ModeSetgid)|bit); err != nil {
				return fmt.Errorf("postgres: let the %s user traverse %s: %w", osUser, d, err)
			}
			slog.Info("postgres: added search permission so the server's OS user can reach its data directory",
				"dir", d, "user", osUser)
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}
