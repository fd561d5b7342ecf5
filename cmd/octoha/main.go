// Command octoha is the one binary of the octoha chaos and load-test harness
// for Octopus Deploy High Availability clusters: it runs fake nodes, brings
// simulated clusters up and down, drives uploads and API load, checks
// histories and writes reports.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"

	"github.com/octoha/octoha/harness/byhand"
)

// command is one subcommand: a flag set and what to run with it.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

var commands = map[string]command{
	"node":    {"run one fake Octopus Server node in the foreground", runNode},
	"up":      {"bring a simulated HA cluster up (local provider)", runUp},
	"status":  {"show the state of a running cluster", runStatus},
	"down":    {"stop a cluster and remove its run directory", runDown},
	"upload":  {"stream deterministic packages through the cluster", runUpload},
	"attack":  {"rate-based API load with vegeta", runAttack},
	"check":   {"run the checkers on a finished run's history", runCheck},
	"report":  {"write HTML, JSON and Markdown reports for a run", runReport},
	"version": {"print the version, commit, Go version and platform", runVersion},
	"chaos":   {"run the chaos catalogue (no Go toolchain needed) and write reports", runChaos},
	"fault":   {"kill, pause, stop, start, drain… a node of a running cluster; stop or start its database or share", runFault},
	"certify": {"certify a real cluster (YAML) against the seed's HA requirements", runCertify},
	"loader":  {"a loader worker of --loaders N (started by the engine, not by hand)", runLoader},
	"tasks":   {"create, watch and cancel server tasks on a running cluster, recorded", runTasks},

	"tentacles": {"run polling Tentacles against a cluster in one layout and judge their pickups", runTentacles},
}

// errUsage marks errors caused by bad command-line input; main prints usage.
var errUsage = errors.New("usage")

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "octoha: unknown command %q\n\n", args[0])
		usage(stderr)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := cmd.run(ctx, args[1:], stdout, stderr)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage), errors.Is(err, byhand.ErrUsage):
		fmt.Fprintf(stderr, "octoha %s: %v\n", args[0], err)
		return 2
	default:
		fmt.Fprintf(stderr, "octoha %s: %v\n", args[0], err)
		var ec interface{ ExitCode() int }
		if errors.As(err, &ec) {
			return ec.ExitCode()
		}
		return 1
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "octoha: chaos and load tests for Octopus Deploy High Availability clusters")
	fmt.Fprintln(w, "\nUsage: octoha <command> [flags]   (octoha <command> -h for its flags)")
	fmt.Fprintln(w, "\nCommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-9s %s\n", n, commands[n].summary)
	}
}

// newFlagSet returns a flag set that reports errors instead of exiting.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("octoha "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parseFlags parses args and refuses stray positional arguments.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	return nil
}

// stringsFlag is a repeatable string flag.
type stringsFlag []string

func (s *stringsFlag) String() string     { return fmt.Sprint([]string(*s)) }
func (s *stringsFlag) Set(v string) error { *s = append(*s, v); return nil }
