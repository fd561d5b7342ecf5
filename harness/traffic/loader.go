package traffic

import (
	"fmt"
	"runtime"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// behindSlack is how far short of its schedule a loader may fall before
// it counts as behind: 5% of the asked rate.
const behindSlack = 0.95

// LoaderStats is what an Upload or Attack cost the machine it ran on, so
// a report can tell a saturated loader from a slow system: on a small
// machine every CPU-second the loader spends is one the load balancer and
// the nodes do not get.
type LoaderStats struct {
	// CPU is the user + system time of this whole process while the load
	// ran (the harness process: during load, the loader is nearly all of
	// it, but concurrent loads and checks count too).
	CPU  time.Duration `json:"cpu"`
	Wall time.Duration `json:"wall"`
	// CPUShare is CPU over Wall × the machine's CPUs: the part of the
	// machine the harness took (1 = every core, all the time).
	CPUShare float64 `json:"cpuShare"`
	CPUs     int     `json:"cpus"`
	// Scheduled is true when the load had a schedule: an attack at a
	// fixed rate, an upload with a rate limit.
	Scheduled bool `json:"scheduled,omitempty"`
	// Behind is true when it kept under 95% of its schedule: the loader
	// (or the system under test, for a closed-loop one) could not keep up.
	// Achieved and Asked say by how much (requests/s or bytes/s).
	Behind   bool    `json:"behind,omitempty"`
	Asked    float64 `json:"asked,omitempty"`
	Achieved float64 `json:"achieved,omitempty"`
}

// String is a one-line account, e.g. "loader CPU 12% of 2 cores (0.24 s
// over 1.0 s); on schedule (2000/s asked, 1998/s sent)".
func (s LoaderStats) String() string {
	out := fmt.Sprintf("loader CPU %.0f%% of %d cores (%.2f s over %.1f s)", 100*s.CPUShare, s.CPUs, s.CPU.Seconds(), s.Wall.Seconds())
	if !s.Scheduled {
		return out + "; no schedule (as fast as it goes)"
	}
	state := "on schedule"
	if s.Behind {
		state = "BEHIND schedule"
	}
	return out + fmt.Sprintf("; %s (%.0f/s asked, %.0f/s achieved)", state, s.Asked, s.Achieved)
}

// loaderClock measures a load from its start.
type loaderClock struct {
	cpu   time.Duration
	start time.Time
}

func startLoaderClock() loaderClock { return loaderClock{cpu: processCPU(), start: time.Now()} }

// stats returns the cost since the start; asked > 0 is the schedule
// (per second) that achieved is compared with.
func (c loaderClock) stats(asked, achieved float64) LoaderStats {
	s := LoaderStats{CPU: processCPU() - c.cpu, Wall: time.Since(c.start), CPUs: runtime.NumCPU()}
	if s.Wall > 0 && s.CPUs > 0 {
		s.CPUShare = s.CPU.Seconds() / s.Wall.Seconds() / float64(s.CPUs)
	}
	if asked > 0 {
		s.Scheduled, s.Asked, s.Achieved = true, asked, achieved
		s.Behind = achieved < behindSlack*asked
	}
	return s
}

// perSecond is a vegeta rate in requests per second (0: unlimited).
func perSecond(r vegeta.Rate) float64 {
	if r.Freq <= 0 || r.Per <= 0 {
		return 0
	}
	return float64(r.Freq) / r.Per.Seconds()
}
