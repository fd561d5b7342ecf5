package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/octoha/octoha/harness/byhand"
	"github.com/octoha/octoha/harness/tasks"
	"github.com/octoha/octoha/harness/traffic"
	"github.com/octoha/octoha/internal/redact"
	"github.com/octoha/octoha/octopusapi"
)

// runTasks creates, watches and cancels server tasks on a running
// cluster by hand, recording every request into the run directory's
// shared history (as upload, attack and fault do), so that `tasks watch`
// and `octoha check`-style verdicts see them together with the faults.
func runTasks(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return fmt.Errorf("%w: tasks needs a subcommand: create, watch or cancel", errUsage)
	}
	switch args[0] {
	case "create":
		return runTasksCreate(ctx, args[1:], stdout, stderr)
	case "watch":
		return runTasksWatch(ctx, args[1:], stdout, stderr)
	case "cancel":
		return runTasksCancel(ctx, args[1:], stdout, stderr)
	}
	return fmt.Errorf("%w: unknown tasks subcommand %q (create, watch or cancel)", errUsage, args[0])
}

// tasksFlags are the flags every tasks subcommand takes.
type tasksFlags struct {
	url, apiKey, space, out *string
	cf                      clusterFlags
}

func addTasksFlags(fs *flag.FlagSet) tasksFlags {
	return tasksFlags{
		url:    fs.String("url", "", "base URL of the load balancer (default: the load balancer of the cluster --name)"),
		apiKey: fs.String("api-key", "", "Octopus API key (default: the cluster's own key, else $"+trafficAPIKeyEnv+"; prefer those: flags show in process lists)"),
		space:  fs.String("space", octopusapi.DefaultSpaceID, "space ID"),
		out:    fs.String("out", "", "run directory shared with upload, attack, fault and check (default "+byHandRoot()+"/<cluster>-<owner pid>)"),
		cf:     addClusterFlags(fs),
	}
}

// open resolves the cluster, joins the shared history as command and
// builds the driver (byhand.OpenTasks).
func (f tasksFlags) open(fs *flag.FlagSet, labels map[string]string) (*byhand.Tasks, error) {
	st, url, err := trafficTarget(fs, f.cf, *f.url)
	if err != nil {
		return nil, err
	}
	return byhand.OpenTasks(byhand.TasksOptions{URL: url, State: st, APIKey: *f.apiKey, SpaceID: *f.space,
		Out: *f.out, Name: *f.cf.name, Labels: labels})
}

func runTasksCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("tasks create", stderr)
	var (
		count    = fs.Int("count", 1, "number of tasks")
		duration = fs.Duration("duration", 2*time.Second, "how long each task runs (the fake node's DurationMs argument)")
		rateS    = fs.String("rate", "0", `tasks per period, e.g. 5/s; "0" = one after the other as fast as they are answered`)
		kind     = fs.String("kind", octopusapi.TaskKindHealth, "the task's Name: "+strings.Join(octopusapi.TaskKinds, ", "))
		watch    = fs.Bool("watch", false, "then follow them as tasks watch does")
		every    = fs.Duration("every", 500*time.Millisecond, "with --watch: how often to read the tasks and the node list")
		within   = fs.Duration("for", 5*time.Minute, "with --watch: stop following after this long")
	)
	tf := addTasksFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *count < 1 {
		return fmt.Errorf("%w: --count must be at least 1", errUsage)
	}
	if *duration < 0 || *duration > octopusapi.MaxTaskDuration {
		return fmt.Errorf("%w: --duration must be between 0 and %s", errUsage, octopusapi.MaxTaskDuration)
	}
	rate, err := parseTaskRate(*rateS)
	if err != nil {
		return err
	}
	s, err := tf.open(fs, map[string]string{"action": "create", "count": strconv.Itoa(*count), "duration": duration.String(), "kind": *kind})
	if err != nil {
		return err
	}
	defer s.Arts.Close()
	tmpl := tasks.FakeTemplate(*duration)
	tmpl.Name = *kind
	fmt.Fprintf(stderr, "creating %d %s tasks of %s through %s (recorded as %s in %s)\n", *count, *kind, duration, tf.url0(s), s.Arts.Name, s.Arts.HistoryPath())
	ids, cerr := s.Driver.CreateMany(ctx, *count, rate, tmpl)
	fmt.Fprintf(stdout, "created %d of %d: %s\n", len(ids), *count, strings.Join(ids, " "))
	if cerr != nil {
		return cerr
	}
	if !*watch {
		return nil
	}
	return watchTasks(ctx, s, *every, *within, stdout, stderr)
}

// url0 is the URL the session talks to, for messages.
func (f tasksFlags) url0(s *byhand.Tasks) string {
	if *f.url != "" {
		return redact.URL(*f.url)
	}
	if s.State != nil {
		return s.State.LBURL
	}
	return "the load balancer"
}

// parseTaskRate reads --rate as tasks per second.
func parseTaskRate(s string) (float64, error) {
	if s == "0" {
		return 0, nil
	}
	r, err := traffic.ParseRate(s)
	if err != nil || r.Per <= 0 || r.Freq <= 0 {
		return 0, fmt.Errorf("%w: --rate %q: want e.g. 5/s", errUsage, s)
	}
	return float64(r.Freq) / r.Per.Seconds(), nil
}

func runTasksWatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("tasks watch", stderr)
	var (
		every  = fs.Duration("every", 500*time.Millisecond, "how often to read the tasks and the node list")
		within = fs.Duration("for", 5*time.Minute, "stop following after this long (the checks then name what is still open)")
		ids    stringsFlag
	)
	fs.Var(&ids, "id", "a task to follow besides those this run directory's history created (repeatable)")
	tf := addTasksFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *every <= 0 || *within <= 0 {
		return fmt.Errorf("%w: --every and --for must be positive", errUsage)
	}
	s, err := tf.open(fs, map[string]string{"action": "watch"})
	if err != nil {
		return err
	}
	defer s.Arts.Close()
	if err := s.FollowCreated(ids...); err != nil {
		return err
	}
	return watchTasks(ctx, s, *every, *within, stdout, stderr)
}

// watchTasks follows the session's tasks (byhand.Tasks.Watch), printing
// progress, then prints their final states and the task checks' verdicts
// over the whole shared history. It fails when a check fails.
func watchTasks(ctx context.Context, s *byhand.Tasks, every, within time.Duration, stdout, stderr io.Writer) error {
	w, err := s.Watch(ctx, every, within, func(el time.Duration, line string) {
		fmt.Fprintf(stderr, "%6.1fs  %s\n", el.Seconds(), line)
	})
	if w == nil {
		return err
	}
	if w.FinishErr != nil {
		fmt.Fprintf(stderr, "note: %v\n", w.FinishErr)
	}
	byhand.WriteTasks(stdout, w.Tasks, w.Start)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout)
	w.Report.WriteText(stdout)
	fmt.Fprintf(stdout, "history: %s (as %s)\n", s.Arts.HistoryPath(), s.Arts.Name)
	if !w.Report.Passed() {
		return errors.New("a task check failed")
	}
	return nil
}

func runTasksCancel(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("tasks cancel", stderr)
	lastN := fs.Int("last", 0, "cancel the last N tasks this run directory's history created")
	tf := addTasksFlags(fs)
	// IDs come after the flags: `tasks cancel [flags] ID...`.
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	ids := fs.Args()
	if len(ids) == 0 && *lastN <= 0 {
		return fmt.Errorf("%w: name the tasks to cancel (IDs, or --last N)", errUsage)
	}
	s, err := tf.open(fs, map[string]string{"action": "cancel"})
	if err != nil {
		return err
	}
	defer s.Arts.Close()
	if ids, err = s.ToCancel(ids, *lastN); err != nil {
		return err
	}
	var errs []error
	for _, id := range slices.Compact(ids) {
		if err := s.Driver.Cancel(ctx, id); err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Fprintf(stdout, "cancel requested: %s\n", id)
	}
	fmt.Fprintf(stderr, "recorded as %s in %s\n", s.Arts.Name, s.Arts.HistoryPath())
	if len(errs) > 0 {
		fmt.Fprintln(stderr, errors.Join(errs...))
		return fmt.Errorf("%d of %d cancels failed", len(errs), len(ids))
	}
	return nil
}
