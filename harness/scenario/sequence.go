package scenario

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/octoha/octoha/harness/history"
	"github.com/octoha/octoha/harness/nemesis"
	"github.com/octoha/octoha/harness/traffic"
)

// A scenario without Steps is run by the runner's standard sequence, from
// its data alone (as etcd's robustness tests run a traffic profile and a
// failpoint): start the declared Load, wait for it to warm up, start the
// Uploads, then for each FaultPlan pick the victim, inject (its recovery
// registered first), wait for the load balancer to act, hold, recover,
// wait for the cluster to settle; then stop the load, verify each fault's
// Expect and run the Checks.

// Victim rules (FaultPlan.Victim) besides a node's name.
const (
	// VictimUploading: a node receiving an upload; where nodes do not
	// report uploads (real Octopus), the last node.
	VictimUploading = "uploading"
	// VictimUploadingOnly: a node receiving an upload; the scenario skips
	// where nodes do not report uploads.
	VictimUploadingOnly = "uploading-only"
)

// Gates (FaultPlan.After) of a fault without a victim.
const (
	// AfterUploadAcked: once the first upload is acknowledged.
	AfterUploadAcked = "upload-acked"
	// AfterUploadActive: once a node receives an upload.
	AfterUploadActive = "upload-active"
)

// Expectation is one thing that must hold after a fault, judged from its
// Outcome (and what the Run can see); it returns why it does not.
type Expectation func(ctx context.Context, r Run, o Outcome) error

// Outcome is what a fault step did, for its Expectations.
type Outcome struct {
	// Victim is the node faulted ("" for the whole cluster); KnowsUploads
	// is set when it was picked knowing it received an upload.
	Victim       string
	KnowsUploads bool
	// Fault is the fault's window (End set: it was recovered).
	Fault history.Fault
	// Uploads is the summary of the background uploads (nil: none).
	Uploads *traffic.UploadSummary
	// History is the history with the load stopped.
	History *history.History
}

// Sequenced reports whether the runner's standard sequence runs the
// scenario (it has no Steps).
func (s Scenario) Sequenced() bool { return s.Steps == nil }

// Validate says why the standard sequence cannot run the scenario's data
// (an unknown fault, a victim rule for a fault without a target, ...).
func (s Scenario) Validate() error {
	if !s.Sequenced() {
		return nil
	}
	if len(s.Faults) == 0 {
		return fmt.Errorf("%s: no Steps and no Faults: nothing to run", s.Title)
	}
	var errs []error
	for i, fp := range s.Faults {
		f, err := nemesis.ByName(fp.Fault)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: fault %d: %w", s.Title, i+1, err))
			continue
		}
		switch {
		case f.Targeted() && fp.Victim == "":
			errs = append(errs, fmt.Errorf("%s: fault %d (%s) hits a node but names no victim rule", s.Title, i+1, fp.Fault))
		case !f.Targeted() && fp.Victim != "":
			errs = append(errs, fmt.Errorf("%s: fault %d (%s) hits the whole cluster but names victim %q", s.Title, i+1, fp.Fault, fp.Victim))
		case fp.After != "" && fp.After != AfterUploadAcked && fp.After != AfterUploadActive:
			errs = append(errs, fmt.Errorf("%s: fault %d: unknown gate %q", s.Title, i+1, fp.After))
		case (fp.HoldUploads || fp.After != "" || isUploadRule(fp.Victim)) && s.Uploads == nil:
			errs = append(errs, fmt.Errorf("%s: fault %d waits for uploads but the scenario declares none", s.Title, i+1))
		}
	}
	for _, l := range s.Load {
		if l.Rate <= 0 || l.Target == "" {
			errs = append(errs, fmt.Errorf("%s: load %+v needs a target and a rate", s.Title, l))
		}
	}
	return errors.Join(errs...)
}

func isUploadRule(v string) bool { return v == VictimUploading || v == VictimUploadingOnly }

// UploadWithin is the wait for the sequence's uploads.
func (u Uploads) UploadWithin() time.Duration {
	if u.Within > 0 {
		return u.Within
	}
	return 5 * time.Minute
}

// UploadMust is what must hold when one of them fails.
func (u Uploads) UploadMust() string {
	if u.Must != "" {
		return u.Must
	}
	return "every upload must succeed"
}

// VictimWithin is how long the victim rule waits for an upload to show.
func (fp FaultPlan) VictimWithin() time.Duration {
	if fp.Within > 0 {
		return fp.Within
	}
	return 30 * time.Second
}
