//go:build unix

package toxiproxy

import (
	"os"
	"syscall"
)

// ownedBySelf reports whether fi belongs to the effective user.
func ownedBySelf(fi os.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) == os.Geteuid()
}
