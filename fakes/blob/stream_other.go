//go:build !linux

package blob

import "os"

// streamWindow is how much a localWriter writes between two streamHint
// calls.
const streamWindow = 8 << 20

// streamHint has no portable form; the page cache is left to the OS.
func streamHint(*os.File, int64, int64) {}
