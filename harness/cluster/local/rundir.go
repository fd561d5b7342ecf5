package local

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
)

// ErrUnsafeRunDir means a run directory (or its base directory, or a file
// in it) is not safe to act on: a symbolic link, someone else's, or
// writable by others. Everything octoha does there (read the state file,
// signal the PIDs it names, write logs, remove the directory) trusts it.
var ErrUnsafeRunDir = errors.New("unsafe run directory")

// defaultBase is the directory that holds the default run directories,
// /tmp/octoha-<uid> ($TMPDIR is honoured).
func defaultBase() string {
	return filepath.Join(os.TempDir(), "octoha-"+strconv.Itoa(os.Getuid()))
}

// isDefaultBase reports whether dir is the default base directory.
func isDefaultBase(dir string) bool {
	base, err := filepath.Abs(defaultBase())
	if err != nil {
		return false
	}
	return filepath.Clean(dir) == base
}

// DirMode is the mode of the directories octoha creates for a run (the
// default base directory, the run directory, missing parents of --run-dir):
// 0700, or 0711 as root. As root, PostgreSQL runs as the postgres user and
// needs search (x) permission on every directory above its data directory;
// it gets no listing and no writing.
func DirMode() os.FileMode {
	if os.Geteuid() == 0 {
		return 0o711
	}
	return 0o700
}

// CheckRunDir returns nil if the run directory dir is safe to act on: not a
// symbolic link, a directory owned by the user running octoha, writable by
// no one else; a default run directory's base (/tmp/octoha-<uid>) must be
// the same. An error wraps ErrUnsafeRunDir and says what to do, or wraps
// fs.ErrNotExist if dir (or its base) does not exist.
func CheckRunDir(dir string) error {
	if parent := filepath.Dir(dir); isDefaultBase(parent) {
		if err := checkDir(parent, "run base directory"); err != nil {
			return err
		}
	}
	return checkDir(dir, "run directory")
}

// PrepareParent makes the parent of the run directory dir ready, before the
// run directory is claimed: the default base directory is created (DirMode)
// if missing and checked (CheckRunDir's rules); a missing parent of another
// directory is created (DirMode). The mode of a directory octoha did not
// create is never changed. It also refuses a run directory that exists and
// is unsafe (CheckRunDir).
func PrepareParent(dir string) error {
	parent := filepath.Dir(dir)
	if isDefaultBase(parent) {
		if err := mkdirPrivate(parent); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("create run base directory: %w", err)
		}
	} else if _, err := os.Stat(parent); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(parent, DirMode()); err != nil {
			return fmt.Errorf("create the run directory's parent: %w", err)
		}
	}
	if err := CheckRunDir(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// mkdirPrivate creates the directory path with exactly DirMode (past the
// umask). It fails with fs.ErrExist if path exists; then its mode is left
// alone.
func mkdirPrivate(path string) error {
	if err := os.Mkdir(path, DirMode()); err != nil {
		return err
	}
	return chmodNoFollow(path, DirMode())
}

// CreateFile creates path afresh, open for reading and writing with mode,
// without following a symbolic link (O_CREATE|O_EXCL|O_NOFOLLOW). A regular
// file of the user's already there is replaced; a symbolic link or
// anything else is refused (ErrUnsafeRunDir), and the file it may point to
// is left alone.
func CreateFile(path string, mode os.FileMode) (*os.File, error) {
	const flags = os.O_RDWR | os.O_CREATE | os.O_EXCL
	f, err := openNoFollow(path, flags, mode)
	if !errors.Is(err, fs.ErrExist) {
		return f, err
	}
	fi, lerr := os.Lstat(path)
	if lerr != nil {
		return nil, lerr
	}
	if err := checkOwnFile(path, fi); err != nil {
		return nil, err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	return openNoFollow(path, flags, mode)
}

// writeFile writes a new file in a run directory (CreateFile's rules).
func writeFile(path string, b []byte, mode os.FileMode) error {
	f, err := CreateFile(path, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// readFile reads a file in a run directory: not through a symbolic link,
// and only a regular file of the user's that no one else may write.
func readFile(path string) ([]byte, error) {
	f, err := openNoFollow(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if err := checkOwnFile(path, fi); err != nil {
		return nil, err
	}
	return io.ReadAll(io.LimitReader(f, 64<<20))
}

// symlinkErr is the refusal of a symbolic link where a run directory, its
// base or one of its files should be.
func symlinkErr(what, path string) error {
	to, _ := os.Readlink(path)
	return fmt.Errorf("%w: %s %s is a symbolic link (to %s), which octoha does not follow: "+
		"someone may be redirecting it; remove it, or choose another --run-dir", ErrUnsafeRunDir, what, path, to)
}

// privateDir makes path, a directory in a run directory, one that only
// the user may enter: created 0700 if missing, else checked (a real
// directory of the user's, CheckRunDir's rules) and set to 0700. As root
// the run directory itself is 0711 (PostgreSQL's user must traverse it),
// so it is the mode of each directory in it that keeps the database,
// the packages and the logs from other local users.
func privateDir(path string) error {
	return dirWithMode(path, 0o700)
}

// searchableDir is privateDir for a directory a service running as
// another user must traverse (PostgreSQL's, as root): 0711 as root,
// listing and writing still the user's alone.
func searchableDir(path string) error {
	return dirWithMode(path, DirMode())
}

func dirWithMode(path string, mode os.FileMode) error {
	if err := os.Mkdir(path, mode); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create %s: %w", path, err)
	}
	if err := checkDir(path, "run directory's subdirectory"); err != nil {
		return err
	}
	if err := chmodNoFollow(path, mode); err != nil {
		return fmt.Errorf("make %s private: %w", path, err)
	}
	return nil
}
