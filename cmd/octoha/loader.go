package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/octoha/octoha/harness/history"
	"github.com/octoha/octoha/harness/loaders"
	"github.com/octoha/octoha/harness/loaders/swarm"
)

// runLoader is one loader worker: the engine starts it with the
// coordinator's URL, the run's token and (usually) its index in the
// environment; it joins, sends its part of the load and streams its
// records back.
func runLoader(ctx context.Context, args []string, _, stderr io.Writer) error {
	fs := newFlagSet("loader", stderr)
	quiet := fs.Bool("quiet", false, "log only warnings and errors")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	o, err := loaders.WorkerOptionsFromEnv()
	if err != nil {
		return fmt.Errorf("%w: %v (octoha loader is started by --loaders N --engine …, not by hand)", errUsage, err)
	}
	level := slog.LevelInfo
	if *quiet {
		level = slog.LevelWarn
	}
	o.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	return loaders.Work(ctx, o)
}

// loaderFlags are the flags of a command that can send its load from
// loader workers (--loaders N --engine swarm).
type loaderFlags struct {
	count                    *int
	engine                   *string
	listen, advertise        *string
	image, network           *string
	kill                     *string
	joinTimeout, loadTimeout *time.Duration
}

func addLoaderFlags(fs *flag.FlagSet) loaderFlags {
	return loaderFlags{
		count:       fs.Int("loaders", 0, "send the load from this many loader workers (octoha loader) placed by --engine, merged into this run's one history (0: from this process)"),
		engine:      fs.String("engine", "", "where the loader workers run: swarm"),
		listen:      fs.String("loader-listen", "127.0.0.1:0", "address the coordinator listens on for its workers (bind no wider than they need; only holders of the run's token are served)"),
		advertise:   fs.String("loader-advertise", "", "the coordinator's URL as workers reach it (default http://<--loader-listen's address>)"),
		image:       fs.String("loader-image", swarm.DefaultImage, "image holding the octoha binary at /octoha"),
		network:     fs.String("loader-network", "host", `engine network of the workers (swarm: "host" on a one-node swarm)`),
		kill:        fs.String("kill-loader", "", "INDEX@AFTER: kill that worker AFTER into the load (a test of the loaders: its unfinished operations stay unknown)"),
		joinTimeout: fs.Duration("loader-join-timeout", loaders.DefaultJoinTimeout, "how long the workers may take to start and join"),
		loadTimeout: fs.Duration("loader-timeout", 0, "bound on the load once started (default: an attack's duration plus a minute; an upload's 1h)"),
	}
}

func (lf loaderFlags) enabled() bool { return *lf.count > 0 }

// check refuses loader flags that are wrong whatever the load, before
// anything is opened: flags without --loaders, an unknown engine, a bad
// --kill-loader.
func (lf loaderFlags) check(fs *flag.FlagSet) error {
	if *lf.count < 0 {
		return fmt.Errorf("%w: --loaders must not be negative", errUsage)
	}
	if !lf.enabled() {
		return unusedLoaderFlags(fs)
	}
	if _, _, err := newEngine(*lf.engine); err != nil {
		return err
	}
	if *lf.kill != "" {
		if _, err := parseKill(*lf.kill); err != nil {
			return fmt.Errorf("%w: --kill-loader: %v", errUsage, err)
		}
	}
	return nil
}

// engines are the engines --engine names, each with the workers' argv
// in its image.
var engines = map[string]func() (loaders.Engine, []string){
	"swarm": func() (loaders.Engine, []string) { return &swarm.Engine{}, []string{"/octoha", "loader"} },
}

// newEngine picks the engine by name.
func newEngine(name string) (loaders.Engine, []string, error) {
	names := make([]string, 0, len(engines))
	for n := range engines {
		names = append(names, n)
	}
	slices.Sort(names)
	known := strings.Join(names, ", ")
	if name == "" {
		return nil, nil, fmt.Errorf("%w: --loaders needs --engine (%s)", errUsage, known)
	}
	mk, ok := engines[name]
	if !ok {
		return nil, nil, fmt.Errorf("%w: --engine %q is not an engine this octoha knows: use %s", errUsage, name, known)
	}
	e, argv := mk()
	return e, argv, nil
}

// options turns the flags into the coordinator's options; it refuses
// flags that make no sense without --loaders.
func (lf loaderFlags) options(fs *flag.FlagSet, job loaders.Job, rec *history.Recorder, results io.Writer, observe func(*vegeta.Result), log *slog.Logger) (loaders.Options, error) {
	eng, cmd, err := newEngine(*lf.engine)
	if err != nil {
		return loaders.Options{}, err
	}
	o := loaders.Options{
		Engine: eng, Count: *lf.count, Job: job, Recorder: rec, Results: results, Observe: observe,
		Listen: *lf.listen, Advertise: *lf.advertise, Image: *lf.image, Network: *lf.network,
		Command: cmd, JoinTimeout: *lf.joinTimeout, RunTimeout: *lf.loadTimeout, Logger: log,
	}
	if o.RunTimeout == 0 && job.Kind == loaders.KindUpload {
		o.RunTimeout = time.Hour
	}
	if *lf.kill != "" {
		k, err := parseKill(*lf.kill)
		if err != nil {
			return o, fmt.Errorf("%w: --kill-loader: %v", errUsage, err)
		}
		o.Kill = k
	}
	if err := job.Validate(o.Count); err != nil {
		return o, fmt.Errorf("%w: %v", errUsage, err)
	}
	return o, nil
}

// checkUpload is check, and refuses --delta with --loaders.
func (lf loaderFlags) checkUpload(fs *flag.FlagSet, delta bool) error {
	if err := lf.check(fs); err != nil {
		return err
	}
	if lf.enabled() && delta {
		return fmt.Errorf("%w: --delta uploads are one lineage, version after version: they cannot be split over --loaders", errUsage)
	}
	return nil
}

// unusedLoaderFlags refuses loader flags given without --loaders.
func unusedLoaderFlags(fs *flag.FlagSet) error {
	for _, n := range []string{"engine", "kill-loader", "loader-listen", "loader-advertise", "loader-image", "loader-network", "loader-timeout", "loader-join-timeout"} {
		if flagWasSet(fs, n) {
			return fmt.Errorf("%w: --%s needs --loaders N", errUsage, n)
		}
	}
	return nil
}

// parseKill reads "INDEX@AFTER", e.g. "2@3s".
func parseKill(s string) (*loaders.KillPlan, error) {
	is, ds, ok := strings.Cut(s, "@")
	i, err := strconv.Atoi(is)
	if !ok || err != nil || i < 0 {
		return nil, fmt.Errorf("%q: want INDEX@AFTER, e.g. 2@3s", s)
	}
	d, err := time.ParseDuration(ds)
	if err != nil || d < 0 {
		return nil, fmt.Errorf("%q: AFTER must be a duration such as 3s", s)
	}
	return &loaders.KillPlan{Index: i, After: d}, nil
}

// unexpectedDeaths is an error for every worker that died other than the
// one --kill-loader killed.
func unexpectedDeaths(res *loaders.Result, kill *loaders.KillPlan) error {
	var dead []string
	for _, w := range res.Dead() {
		if kill == nil || w.Index != kill.Index {
			dead = append(dead, strconv.Itoa(w.Index))
		}
	}
	if len(dead) == 0 {
		return nil
	}
	return fmt.Errorf("loaders %s of %d died (see above)", strings.Join(dead, ", "), len(res.Workers))
}
