package loaders

import (
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/octoha/octoha/harness/history"
	"github.com/octoha/octoha/harness/traffic"
)

// The worker's environment: where the coordinator is and the run's join
// token. The token is a secret (it unlocks the job, API key included), so
// it travels in the environment, never on a command line.
const (
	CoordinatorEnv = "OCTOHA_LOADER_COORDINATOR"
	TokenEnv       = "OCTOHA_LOADER_TOKEN"
)

// The coordinator's endpoints. Every one needs "Authorization: Bearer
// <token>".
const (
	pathTime   = "/v1/time"
	pathJoin   = "/v1/join"
	pathStart  = "/v1/start"
	pathReport = "/v1/report"
)

// joinRequest is a worker asking for its share. Index is -1 when the
// engine gave the worker none; the coordinator then assigns one.
type joinRequest struct {
	Index  int    `json:"index"`
	Host   string `json:"host,omitempty"`
	Offset Offset `json:"offset"`
}

// Assignment is what a worker is told to do.
type Assignment struct {
	RunID   string  `json:"runId"`
	Segment Segment `json:"segment"`
	Job     Job     `json:"job"`
	// ReportEvery is how often the worker sends what it recorded (and
	// so how often it shows it is alive).
	ReportEvery time.Duration `json:"reportEvery"`
}

// startReply releases (or aborts) a worker waiting at the barrier. At is
// on the coordinator's clock.
type startReply struct {
	Start bool      `json:"start"`
	At    time.Time `json:"at,omitzero"`
	Abort string    `json:"abort,omitempty"`
}

// report is one batch of a worker's records, in order (Seq from 1). The
// last one has Done set.
type report struct {
	Index   int             `json:"index"`
	Seq     int             `json:"seq"`
	Ops     []history.Op    `json:"ops,omitempty"`
	Results []vegeta.Result `json:"results,omitempty"`
	Done    *Done           `json:"done,omitempty"`
}

// Done is a worker's account of itself when its load is over.
type Done struct {
	Loader traffic.LoaderStats    `json:"loader"`
	Upload *traffic.UploadSummary `json:"upload,omitempty"`
	// EndOffset is the clock offset measured after the load.
	EndOffset Offset `json:"endOffset"`
	Error     string `json:"error,omitempty"`
}

// reportReply tells a worker whether to stop early (the run was
// cancelled) and whether the batch was a duplicate of one already taken.
type reportReply struct {
	Stop bool `json:"stop,omitempty"`
}

// timeReply is the coordinator's clock.
type timeReply struct {
	T time.Time `json:"t"`
}
