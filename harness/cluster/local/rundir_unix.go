//go:build unix

package local

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// checkDir applies CheckRunDir's rules to one directory.
func checkDir(path, what string) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return err
	}
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		return symlinkErr(what, path)
	case !fi.IsDir():
		return fmt.Errorf("%w: %s %s is not a directory; remove it, or choose another --run-dir", ErrUnsafeRunDir, what, path)
	}
	return checkOwner(path, what, fi)
}

// checkOwnFile refuses a file in a run directory that is not a regular file
// of the user's that no one else may write.
func checkOwnFile(path string, fi fs.FileInfo) error {
	if fi.Mode()&fs.ModeSymlink != 0 {
		return symlinkErr("file", path)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%w: %s is not a regular file; remove it", ErrUnsafeRunDir, path)
	}
	return checkOwner(path, "file", fi)
}

func checkOwner(path, what string, fi fs.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if uid := os.Geteuid(); int(st.Uid) != uid {
		return fmt.Errorf("%w: %s %s is owned by uid %d, not by you (uid %d): whoever owns it controls what octoha would read, "+
			"signal and write there; remove it (it may take root), or choose another --run-dir", ErrUnsafeRunDir, what, path, st.Uid, uid)
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return fmt.Errorf("%w: %s %s is group- or world-writable (mode %#o): others could plant files in it; "+
			"chmod go-w it, or remove it, or choose another --run-dir", ErrUnsafeRunDir, what, path, perm)
	}
	return nil
}

// openNoFollow opens path without following a symbolic link in its last
// element (O_NOFOLLOW); a link there is refused with ErrUnsafeRunDir.
func openNoFollow(path string, flag int, mode os.FileMode) (*os.File, error) {
	f, err := os.OpenFile(path, flag|syscall.O_NOFOLLOW, mode)
	if errors.Is(err, syscall.ELOOP) {
		return nil, symlinkErr("file", path)
	}
	return f, err
}

// chmodNoFollow changes the mode of the directory path, refusing to follow
// a symbolic link to another one.
func chmodNoFollow(path string, mode os.FileMode) error {
	f, err := openNoFollow(path, os.O_RDONLY|syscall.O_DIRECTORY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Chmod(mode)
}
