//go:build !unix

package traffic

import "time"

// processCPU is 0 where getrusage does not exist: the share reads 0.
func processCPU() time.Duration { return 0 }
