package blob

import "golang.org/x/sys/unix"

// renameNoReplace renames src to dst unless dst exists (renameat2 with
// RENAME_NOREPLACE), atomically.
func renameNoReplace(src, dst string) error {
	return unix.Renameat2(unix.AT_FDCWD, src, unix.AT_FDCWD, dst, unix.RENAME_NOREPLACE)
}
