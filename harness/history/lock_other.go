//go:build !unix

package history

import "os"

// lockFile is a no-op where flock(2) does not exist (Windows): there,
// commands sharing one history must not run at the same time.
func lockFile(*os.File) error { return nil }

func unlockFile(*os.File) {}
