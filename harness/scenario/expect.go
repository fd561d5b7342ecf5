package scenario

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/octoha/octoha/harness/history"
)

// The expectations fault steps name (FaultPlan.Expect). Each judges one
// claim from the history, after the fault is recovered and the load
// stopped, and says when the scenario did not test what it claims.

// inFlightUploadFinished: every upload in flight on the victim when the
// fault began (a drain) completed with 201, and (where nodes report
// uploads) there was one.
func inFlightUploadFinished(_ context.Context, r Run, o Outcome) error {
	r.Step("the upload in flight on %s completed with 201", o.Victim)
	inFlight := 0
	for _, op := range o.History.OpsOfKind(history.KindUpload) {
		if op.Node == o.Victim && op.Start.Before(o.Fault.Start) && op.End.After(o.Fault.Start) {
			if op.Status != http.StatusCreated {
				return fmt.Errorf("upload %s %s in flight on %s when the %s began ended %d, want 201", op.PackageID, op.Version, o.Victim, o.Fault.Kind, op.Status)
			}
			inFlight++
		}
	}
	if o.KnowsUploads && inFlight == 0 {
		return fmt.Errorf("no upload was in flight on %s when the %s began: the scenario did not test what it claims", o.Victim, o.Fault.Kind)
	}
	r.Figure("uploads-in-flight-at-"+o.Fault.Kind, float64(inFlight), "ops")
	return nil
}

// retriedElsewhere: only the victim failed uploads, after the fault
// began, and each retry succeeded on another node (a kill).
func retriedElsewhere(ctx context.Context, r Run, o Outcome) error {
	return uploadsRetried(r, o, true)
}

// victimFailedOnly: every failed upload attempt was on the victim (or
// answered by no node), at least one was, and each such package succeeded
// on a later attempt (a reset, a partition from the share).
func victimFailedOnly(ctx context.Context, r Run, o Outcome) error {
	return uploadsRetried(r, o, false)
}

func uploadsRetried(r Run, o Outcome, elsewhere bool) error {
	r.Step("only uploads on %s failed, and their retries succeeded", o.Victim)
	retried := map[string]bool{}
	for _, op := range o.History.OpsOfKind(history.KindUpload) {
		if op.Outcome == history.OK {
			continue
		}
		if op.Node != o.Victim && op.Node != "" {
			return fmt.Errorf("upload attempt %d failed on %s, not %s: %s", op.Seq, op.Node, o.Victim, op.Error)
		}
		if elsewhere && op.End.Before(o.Fault.Start) {
			return fmt.Errorf("upload attempt %d failed before the %s", op.Seq, o.Fault.Kind)
		}
		retried[op.PackageID+"@"+op.Version] = true
	}
	if len(retried) == 0 {
		return fmt.Errorf("the %s of %s hit no upload: the scenario did not test what it claims", o.Fault.Kind, o.Victim)
	}
	for _, p := range o.Uploads.Packages {
		if !retried[p.Spec.PackageID+"@"+p.Spec.Version] {
			continue
		}
		if elsewhere && p.Node == o.Victim {
			return fmt.Errorf("the retry of %s landed on %s, the faulted node", p.Spec.FileName(), o.Victim)
		}
		if p.Attempts < 2 {
			return fmt.Errorf("%s failed once but records %d attempt(s)", p.Spec.FileName(), p.Attempts)
		}
	}
	r.Figure("uploads-retried", float64(len(retried)), "packages")
	return nil
}

// deltaRetriedElsewhere: the fault cut a delta upload, whose retry was
// patched on another node, and every package went as a delta.
func deltaRetriedElsewhere(_ context.Context, r Run, o Outcome) error {
	r.Step("the %s cut a delta upload, whose retry was patched elsewhere", o.Fault.Kind)
	cut := map[string]bool{}
	for _, op := range o.History.OpsOfKind(history.KindUpload) {
		if op.Outcome != history.OK && op.DeltaBytes > 0 && !op.End.Before(o.Fault.Start) {
			cut[op.PackageID+"@"+op.Version] = true
		}
	}
	if len(cut) == 0 {
		return fmt.Errorf("the %s of %s cut no delta upload: the scenario did not test what it claims", o.Fault.Kind, o.Victim)
	}
	var deltaBytes, fullBytes int64
	for _, p := range o.Uploads.Packages {
		if p.DeltaBytes == 0 {
			return fmt.Errorf("%s went in full, not as a delta", p.Spec.FileName())
		}
		if cut[p.Spec.PackageID+"@"+p.Spec.Version] && p.Node == o.Victim {
			return fmt.Errorf("the retry of %s was acknowledged by %s, the faulted node", p.Spec.FileName(), o.Victim)
		}
		deltaBytes += p.DeltaBytes
		fullBytes += p.Spec.Size
	}
	r.Figure("delta-uploads-cut", float64(len(cut)), "packages")
	r.Figure("delta-bytes-per-full-byte", float64(deltaBytes)/float64(fullBytes), "ratio")
	return nil
}

// noPartialFiles: no temporary file survives (the nodes sweep what the
// fault left).
func noPartialFiles(ctx context.Context, r Run, _ Outcome) error {
	r.Step("no partial file survives: the nodes sweep their temporary files")
	return r.NoTempFiles(ctx)
}

// freshUploadSucceeds: an upload started after the fault succeeds.
func freshUploadSucceeds(ctx context.Context, r Run, o Outcome) error {
	r.Step("uploading again after the %s", o.Fault.Kind)
	more := r.UploadOptions(1, 1, 32<<20)
	more.Seed = r.Seed() + 1
	after, err := r.Upload(ctx, more)
	if err != nil {
		return err
	}
	if err := after.Err(); err != nil {
		return fmt.Errorf("a fresh upload after the %s must succeed: %w", o.Fault.Kind, err)
	}
	return nil
}

// uploadsMet5xx: uploads that met the fault failed with a 5xx (none
// started inside it got anything else from a node), and at least one did.
func uploadsMet5xx(_ context.Context, r Run, o Outcome) error {
	r.Step("uploads that met the %s failed with a 5xx", o.Fault.Kind)
	f := o.Fault
	saw5xx := 0
	var errs []error
	for _, op := range o.History.OpsOfKind(history.KindUpload) {
		if op.Start.After(f.Start.Add(200*time.Millisecond)) && op.Start.Before(f.End) && op.Node != "" && op.Status < 500 {
			errs = append(errs, fmt.Errorf("upload attempt %d started during the %s but got %d", op.Seq, f.Kind, op.Status))
		}
		if op.Status >= 500 && op.End.After(f.Start) {
			saw5xx++
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if saw5xx == 0 {
		return fmt.Errorf("no upload attempt met the %s: the scenario did not test what it claims", f.Kind)
	}
	r.Figure("upload-5xx-during-outage", float64(saw5xx), "ops")
	return nil
}
