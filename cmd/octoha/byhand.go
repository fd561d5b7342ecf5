package main

import (
	"flag"
	"os"
	"path/filepath"

	"github.com/octoha/octoha/harness/byhand"
	"github.com/octoha/octoha/harness/cluster/local"
	"github.com/octoha/octoha/harness/history"
)

// Working by hand (harness/byhand): upload, attack, fault, tasks,
// tentacles and check against a cluster that `octoha up` started learn it
// from its run directory (--name or --run-dir) and share one output
// directory (--out).

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
	st, err = byhand.ReadCluster(dir)
	return st, explicit, err
}

// clusterAPIKey is byhand.APIKey: --api-key, the cluster's own key, or
// $OCTOHA_API_KEY.
func clusterAPIKey(flagKey string, st *local.State) string { return byhand.APIKey(flagKey, st) }

// byHandRoot is where by-hand output directories go by default.
func byHandRoot() string { return byhand.Root() }

// defaultOutDir is the output directory of by-hand commands without --out.
func defaultOutDir(st *local.State, name string) string { return byhand.DefaultOutDir(st, name) }

// artefacts are byhand.Artefacts under the names the traffic commands use.
type artefacts struct {
	*byhand.Artefacts
	name    string
	rec     *history.Recorder
	results *os.File
}

func openArtefacts(dir, command string, st *local.State, cmd history.Command, withResults bool) (*artefacts, error) {
	a, err := byhand.Open(dir, command, st, cmd, withResults)
	if err != nil {
		return nil, err
	}
	return &artefacts{Artefacts: a, name: a.Name, rec: a.Rec, results: a.Results}, nil
}

func (a *artefacts) historyPath() string { return a.HistoryPath() }
func (a *artefacts) resultsPath() string { return a.ResultsPath() }
func (a *artefacts) close() error        { return a.Close() }
