//go:build !unix

package byhand

import (
	"fmt"
	"os"
)

// privateDir creates dir if needed (per-user temporary directories are
// private on Windows).
func privateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	return nil
}
