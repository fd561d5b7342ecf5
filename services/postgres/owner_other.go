//go:build !linux

package postgres

import (
	"fmt"
	"runtime"
)

// Giving the data directory to the server's OS user (needed only when the
// harness runs as root) is implemented for Linux alone, like the rest of
// process control (internal/proc); elsewhere Start fails with a clear error.

func chownTree(dir string, uid, gid int) error {
	return fmt.Errorf("postgres: running the server as the %s user is implemented for Linux only (this is %s)", osUser, runtime.GOOS)
}

func ensureSearchable(dir string, uid, gid int) error {
	return chownTree(dir, uid, gid)
}
