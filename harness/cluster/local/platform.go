package local

import (
	"errors"
	"fmt"
	"runtime"
)

// ErrUnsupported is what Up (and the octoha commands that manage local
// clusters) return on any platform but Linux.
var ErrUnsupported = errors.New("the local provider needs Linux (it runs nodes as processes with SIGSTOP/SIGKILL " +
	"and binds 127.0.0.x addresses); use --provider external (certify) or run on Linux")

// Supported reports whether this platform can run local clusters: nil on
// Linux, an error wrapping ErrUnsupported elsewhere. The process control
// underneath (internal/proc) is built for Linux alone.
func Supported() error {
	if runtime.GOOS == "linux" {
		return nil
	}
	return fmt.Errorf("%w (this is %s/%s)", ErrUnsupported, runtime.GOOS, runtime.GOARCH)
}
