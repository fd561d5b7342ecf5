// Package byhand is working by hand against a cluster that `octoha up`
// started: its by-hand commands (upload, attack, fault, tasks, tentacles,
// check) learn its load balancer, nodes, API key and storage from its run
// directory, and share one output directory: one history (history.jsonl)
// that each command joins (history.Join: one header, sequence numbers
// unique across commands, each record tagged with its command) and one
// vegeta results file per command (upload-1.results.gob, …), never
// truncated. cmd/octoha holds their flags and printing; this package does
// the work, so a by-hand fault or check is the runner's, recorded alike.
package byhand

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/octoha/octoha/fakes/node/launch"
	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/cluster/local"
	"github.com/octoha/octoha/harness/history"
	"github.com/octoha/octoha/harness/rundir"
)

// ErrUsage marks errors caused by what the person asked for (a bad
// argument, a node the cluster does not have): the command prints its
// usage and exits 2.
var ErrUsage = errors.New("usage")

// ResultsSuffix ends each command's vegeta results file, named after the
// command (upload-1.results.gob, …).
const ResultsSuffix = ".results.gob"

// RunsDirEnv moves the default output directories elsewhere.
const RunsDirEnv = "OCTOHA_RUNS_DIR"

// Root is where by-hand output directories go by default: outside any
// source tree, beside (not inside) the clusters' run directories, so that
// octoha down keeps them; $OCTOHA_RUNS_DIR moves them.
func Root() string {
	if d := os.Getenv(RunsDirEnv); d != "" {
		if abs, err := filepath.Abs(d); err == nil {
			return abs
		}
		return d
	}
	return filepath.Join(os.TempDir(), "octoha-"+strconv.Itoa(os.Getuid())+"-runs")
}

// DefaultOutDir is the output directory of by-hand commands without --out:
// one per cluster lifetime (its name and its owner's PID), so every command
// against the same running cluster shares it and a new cluster starts a
// fresh history. name is the cluster's name as the command was given it.
func DefaultOutDir(st *local.State, name string) string {
	if st == nil {
		return filepath.Join(Root(), "by-hand")
	}
	n := st.Name
	if n == "" {
		n = name
	}
	return filepath.Join(Root(), n+"-"+strconv.Itoa(st.SupervisorPID))
}

// ReadCluster reads the state of the cluster whose run directory is dir.
func ReadCluster(dir string) (*local.State, error) {
	st, err := local.ReadState(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("no cluster in %s (start one with octoha up, or give --url)", dir)
		}
		return nil, err
	}
	return st, nil
}

// APIKey is the API key: flagKey, else the key of the cluster the command
// targets (its run directory keeps it), else $OCTOHA_API_KEY.
func APIKey(flagKey string, st *local.State) string {
	if flagKey != "" {
		return flagKey
	}
	if st != nil {
		if k, err := local.ReadAPIKey(st.RunDir); err == nil && k != "" {
			return k
		}
	}
	return os.Getenv(launch.EnvAPIKey)
}

// Artefacts are the files a by-hand command writes into its output
// directory: its part of the shared history and, for commands that send
// requests, its own vegeta results file.
type Artefacts struct {
	Dir     string
	Name    string // the command's name in the history, e.g. "attack-2"
	Rec     *history.Recorder
	Results *os.File // nil unless asked for
}

// Open joins the history in dir as command and, when withResults, creates
// the command's own results file (never an existing one). st, the cluster's
// state when there is one, labels the history.
func Open(dir, command string, st *local.State, cmd history.Command, withResults bool) (*Artefacts, error) {
	if filepath.Dir(dir) == Root() {
		if err := privateDir(Root()); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create output directory: %w", err)
	}
	meta := history.Meta{Scenario: "by hand", Labels: map[string]string{}}
	if st != nil {
		meta.Labels["cluster"] = st.Name
		meta.Labels["lbURL"] = st.LBURL
		meta.Labels["runDir"] = st.RunDir
	}
	rec, name, err := history.Join(filepath.Join(dir, rundir.HistoryFile), command, meta, cmd)
	if err != nil {
		return nil, err
	}
	a := &Artefacts{Dir: dir, Name: name, Rec: rec}
	if withResults {
		f, err := os.OpenFile(a.ResultsPath(), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err != nil {
			rec.Close()
			return nil, fmt.Errorf("create results file: %w", err)
		}
		a.Results = f
	}
	return a, nil
}

// HistoryPath is the shared history's file.
func (a *Artefacts) HistoryPath() string { return filepath.Join(a.Dir, rundir.HistoryFile) }

// ResultsPath is this command's results file.
func (a *Artefacts) ResultsPath() string { return filepath.Join(a.Dir, a.Name+ResultsSuffix) }

// Close closes the results file and leaves the history.
func (a *Artefacts) Close() error {
	var errs []error
	if a.Results != nil {
		if err := a.Results.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close results file: %w", err))
		}
	}
	errs = append(errs, a.Rec.Close())
	return errors.Join(errs...)
}

// PackagesDir is where a local cluster's Packages store lives on this
// machine: the local directory, or the directory the Samba share serves.
func PackagesDir(st *local.State) string {
	if st.Spec.Storage.Kind == cluster.StorageSMB {
		// services/samba serves <run dir>/samba/share.
		return filepath.Join(st.RunDir, "samba", "share", "Packages")
	}
	for _, c := range st.Components {
		if c.Part == "share" && c.Location != "" && !strings.Contains(c.Location, "://") {
			return filepath.Join(c.Location, "Packages")
		}
	}
	return filepath.Join(st.RunDir, "share", "Packages")
}
