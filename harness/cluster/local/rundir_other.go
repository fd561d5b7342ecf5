//go:build !unix

package local

import (
	"fmt"
	"io/fs"
	"os"
)

// checkDir applies what it can of CheckRunDir's rules (no owners here; the
// local provider runs only on Linux anyway).
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
	return nil
}

func checkOwnFile(path string, fi fs.FileInfo) error {
	if fi.Mode()&fs.ModeSymlink != 0 {
		return symlinkErr("file", path)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%w: %s is not a regular file; remove it", ErrUnsafeRunDir, path)
	}
	return nil
}

// openNoFollow refuses a symbolic link, then opens (there is no O_NOFOLLOW).
func openNoFollow(path string, flag int, mode os.FileMode) (*os.File, error) {
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		return nil, symlinkErr("file", path)
	}
	return os.OpenFile(path, flag, mode)
}

func chmodNoFollow(path string, mode os.FileMode) error {
	if err := checkDir(path, "directory"); err != nil {
		return err
	}
	return os.Chmod(path, mode)
}
