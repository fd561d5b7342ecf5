package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/cluster/local"
	"github.com/octoha/octoha/harness/history"
)

// Working by hand: upload, attack, fault and check against a cluster that
// `octoha up` started learn its load balancer, nodes, API key and storage
// from its run directory (--name or --run-dir), and share one output
// directory (--out): one history (history.jsonl) that each command joins
// (history.Join: one header, sequence numbers unique across commands, each
// record tagged with its command) and one vegeta results file per command
// (upload-1.results.gob, attack-2.results.gob, …), never truncated.

// clusterFlags are --name and --run-dir, shared by the by-hand commands.
type clusterFlags struct {
	name, runDir *string
}

func addClusterFlags(fs *flag.FlagSet) clusterFlags {
	return clusterFlags{
		name:   fs.String("name", "default", "cluster started with octoha up: its load balancer, nodes, API key and storage are read from its run directory"),
		runDir: fs.String("run-dir", "", "run directory of that cluster (default /tmp/octoha-<uid>/<name>)"),
	}
}

// dir is the cluster's run directory, absolute.
func (c clusterFlags) dir() (string, error) {
	d := *c.runDir
	if d == "" {
		d = local.DefaultRunDir(*c.name)
	}
	return filepath.Abs(d)
}

// state reads the cluster's state; explicit says whether --name or
// --run-dir was given (so that its absence is an error, not a fallback).
func (c clusterFlags) state(set *flag.FlagSet) (st *local.State, explicit bool, err error) {
	explicit = flagWasSet(set, "name") || flagWasSet(set, "run-dir")
	dir, err := c.dir()
	if err != nil {
		return nil, explicit, err
	}
	st, err = local.ReadState(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, explicit, fmt.Errorf("no cluster in %s (start one with octoha up, or give --url)", dir)
		}
		return nil, explicit, err
	}
	return st, explicit, nil
}

// clusterAPIKey is the API key: --api-key, else the key of the cluster the
// command targets (its run directory keeps it), else $OCTOHA_API_KEY.
func clusterAPIKey(flagKey string, st *local.State) string {
	if flagKey != "" {
		return flagKey
	}
	if st != nil {
		if k, err := local.ReadAPIKey(st.RunDir); err == nil && k != "" {
			return k
		}
	}
	return os.Getenv(trafficAPIKeyEnv)
}

// runsDirEnv moves the default by-hand output directories elsewhere.
const runsDirEnv = "OCTOHA_RUNS_DIR"

// byHandRoot is where by-hand output directories go by default: outside
// any source tree, beside (not inside) the clusters' run directories, so
// that octoha down keeps them; $OCTOHA_RUNS_DIR moves them.
func byHandRoot() string {
	if d := os.Getenv(runsDirEnv); d != "" {
		if abs, err := filepath.Abs(d); err == nil {
			return abs
		}
		return d
	}
	return filepath.Join(os.TempDir(), "octoha-"+strconv.Itoa(os.Getuid())+"-runs")
}

// defaultOutDir is the output directory of by-hand commands without --out:
// one per cluster lifetime (its name and its owner's PID), so every command
// against the same running cluster shares it and a new cluster starts a
// fresh history.
func defaultOutDir(st *local.State, name string) string {
	if st == nil {
		return filepath.Join(byHandRoot(), "by-hand")
	}
	n := st.Name
	if n == "" {
		n = name
	}
	return filepath.Join(byHandRoot(), n+"-"+strconv.Itoa(st.SupervisorPID))
}

// artefacts are the files a by-hand command writes into its output
// directory: its part of the shared history and, for commands that send
// requests, its own vegeta results file.
type artefacts struct {
	dir     string
	name    string // e.g. "attack-2"
	rec     *history.Recorder
	results *os.File
}

// openArtefacts joins the history in dir as command and, when withResults,
// creates the command's own results file (never an existing one).
func openArtefacts(dir, command string, st *local.State, cmd history.Command, withResults bool) (*artefacts, error) {
	if filepath.Dir(dir) == byHandRoot() {
		if err := privateDir(byHandRoot()); err != nil {
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
	rec, name, err := history.Join(filepath.Join(dir, historyFileName), command, meta, cmd)
	if err != nil {
		return nil, err
	}
	a := &artefacts{dir: dir, name: name, rec: rec}
	if withResults {
		f, err := os.OpenFile(a.resultsPath(), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err != nil {
			rec.Close()
			return nil, fmt.Errorf("create results file: %w", err)
		}
		a.results = f
	}
	return a, nil
}

func (a *artefacts) historyPath() string { return filepath.Join(a.dir, historyFileName) }
func (a *artefacts) resultsPath() string { return filepath.Join(a.dir, a.name+resultsSuffix) }

func (a *artefacts) close() error {
	var errs []error
	if a.results != nil {
		if err := a.results.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close results file: %w", err))
		}
	}
	errs = append(errs, a.rec.Close())
	return errors.Join(errs...)
}

// packagesDir is where a local cluster's Packages store lives on this
// machine: the local directory, or the directory the Samba share serves.
func packagesDir(st *local.State) (string, error) {
	if st.Spec.Storage.Kind == cluster.StorageSMB {
		// services/samba serves <run dir>/samba/share.
		return filepath.Join(st.RunDir, "samba", "share", "Packages"), nil
	}
	for _, c := range st.Components {
		if c.Part == "share" && c.Location != "" && !strings.Contains(c.Location, "://") {
			return filepath.Join(c.Location, "Packages"), nil
		}
	}
	return filepath.Join(st.RunDir, "share", "Packages"), nil
}
