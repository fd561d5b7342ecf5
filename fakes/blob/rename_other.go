//go:build !linux

package blob

import "errors"

// renameNoReplace has no portable atomic form outside Linux.
func renameNoReplace(src, dst string) error {
	return errors.New("rename without replace is not supported on this OS")
}
