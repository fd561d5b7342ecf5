package traffic

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/OctopusDeploy/go-octodiff/pkg/octodiff"

	"github.com/octoha/octoha/harness/history"
	"github.com/octoha/octoha/internal/redact"
	"github.com/octoha/octoha/octopusapi"
)

// maxSignature bounds a signature answer: Octodiff signatures take 26
// bytes per 2 KiB chunk, so 64 MiB of base64 covers a 3.5 GiB package.
const maxSignature = 64 << 20

// deltaBody is a package's delta, built into a temporary file on this
// machine (as go-octopusdeploy does: a worst-case delta is as big as the
// package), and where to post it.
type deltaBody struct {
	path      string // the delta file
	size      int64
	base      string // the version it was built against
	url       string
	shownURL  string
	buildTime time.Duration
}

func (d *deltaBody) remove() {
	if d != nil {
		_ = os.Remove(d.path)
	}
}

// prepareDelta decides how j is sent: it asks for the signature of the
// nearest earlier version and builds the delta, streaming the package from
// its generator, or leaves j.delta nil for a full upload (no earlier
// version, or a delta not meaningfully smaller). The signature request is
// recorded as an op. retry says whether a failure may pass on another try.
func (u *uploader) prepareDelta(ctx context.Context, j *job, attempt int) (retry bool, err error) {
	spec := j.spec
	path := octopusapi.DeltaSignaturePath(u.opts.SpaceID, spec.PackageID, spec.Version)
	op := history.Op{
		ID: u.opts.ClientName + "-" + u.nonce + "-" + fmt.Sprint(j.index) + "-" + fmt.Sprint(attempt) + "-sig", Client: j.client,
		Kind: history.KindSignature, Via: u.opts.Via, URL: redact.URL(u.base + path),
		PackageID: spec.PackageID, Version: spec.Version, Attempt: attempt, Start: time.Now(), Outcome: history.Failed,
	}
	defer func() {
		op.End = time.Now()
		if err != nil {
			op.Error = redact.Text(err.Error())
		}
		u.opts.Recorder.Op(op)
	}()
	timeout := u.opts.StallTimeout
	if timeout <= 0 {
		timeout = DefaultStallTimeout
	}
	gctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(gctx, http.MethodGet, u.base+path, nil)
	if err != nil {
		return false, fmt.Errorf("build the signature request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set(octopusapi.HeaderOp, op.ID)
	resp, err := u.client.Do(req)
	if err != nil {
		return true, fmt.Errorf("delta signature: %w", err)
	}
	defer resp.Body.Close()
	op.Status, op.Node = resp.StatusCode, resp.Header.Get(octopusapi.HeaderNode)
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxSignature+1))
	if err != nil {
		return true, fmt.Errorf("delta signature: read: %w", err)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		// No earlier version: the clients' cue for a full upload.
		op.Outcome, op.Note = history.OK, "no earlier version: full upload"
		j.deltaReady = true
		return false, nil
	case resp.StatusCode != http.StatusOK:
		return resp.StatusCode >= 500, fmt.Errorf("delta signature: %d %s: %s", resp.StatusCode, http.StatusText(resp.StatusCode), octopusapi.ErrorText(body))
	case len(body) > maxSignature:
		return false, fmt.Errorf("delta signature: answer larger than %d bytes", maxSignature)
	}
	var ds octopusapi.DeltaSignature
	if err := json.Unmarshal(body, &ds); err != nil {
		return false, fmt.Errorf("delta signature: not a signature resource: %w", err)
	}
	sig, err := base64.StdEncoding.DecodeString(ds.Signature)
	if err != nil || ds.BaseVersion == "" {
		return false, fmt.Errorf("delta signature: bad signature or base version %q: %v", ds.BaseVersion, err)
	}
	op.Outcome, op.BaseVersion = history.OK, ds.BaseVersion

	start := time.Now()
	d, err := buildDelta(spec.Reader(), spec.Size, sig)
	if err != nil {
		return false, fmt.Errorf("build the delta against %s: %w", ds.BaseVersion, err)
	}
	d.buildTime = time.Since(start)
	// As go-octopusdeploy: a delta over 95% of the file goes in full.
	if float64(d.size) > 0.95*float64(spec.Size) {
		op.Note = fmt.Sprintf("delta of %d bytes is not meaningfully smaller than the package: full upload", d.size)
		d.remove()
		j.deltaReady = true
		return false, nil
	}
	d.base = ds.BaseVersion
	d.url = u.base + octopusapi.DeltaUploadPath(u.opts.SpaceID, spec.PackageID, ds.BaseVersion, u.opts.OverwriteMode)
	d.shownURL = redact.URL(d.url)
	op.DeltaBytes = d.size
	op.Note = fmt.Sprintf("delta of %d bytes built in %s", d.size, d.buildTime.Round(time.Millisecond))
	j.delta, j.deltaReady = d, true
	return false, nil
}

// buildDelta writes the Octodiff delta turning the signature's file into
// the package read from pkg into a temporary file.
func buildDelta(pkg io.ReadSeeker, size int64, sig []byte) (*deltaBody, error) {
	f, err := os.CreateTemp("", "octoha-delta-*")
	if err != nil {
		return nil, err
	}
	d := &deltaBody{path: f.Name()}
	bw := bufio.NewWriterSize(f, 1<<20)
	err = octodiff.NewDeltaBuilder().Build(pkg, size, bytes.NewReader(sig), int64(len(sig)), octodiff.NewBinaryDeltaWriter(bw))
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		var st os.FileInfo
		if st, err = f.Stat(); err == nil {
			d.size = st.Size()
		}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		d.remove()
		return nil, err
	}
	return d, nil
}
