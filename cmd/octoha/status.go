package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mattn/go-isatty"

	"github.com/octoha/octoha/harness/cluster/local"
)

// statusDegradedCode is status's exit code when the cluster is degraded
// (a node not serving, the load balancer not answering 200, the owner
// gone), so scripts can wait on it: 0 all serving, 1 error, 2 usage.
const statusDegradedCode = 3

type statusDegraded struct{ reasons []string }

func (e statusDegraded) Error() string {
	return "cluster degraded: " + strings.Join(e.reasons, "; ")
}
func (e statusDegraded) ExitCode() int { return statusDegradedCode }

func runStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("status", stderr)
	name := fs.String("name", "default", "cluster name (names the default run directory)")
	runDir := fs.String("run-dir", "", "run directory (default /tmp/octoha-<uid>/<name>)")
	asJSON := fs.Bool("json", false, "print JSON")
	watch := fs.Bool("watch", false, "refresh until Ctrl-C (or --watch-for)")
	every := fs.Duration("interval", 2*time.Second, "refresh interval with --watch")
	watchFor := fs.Duration("watch-for", 0, "with --watch, stop after this long (0: until Ctrl-C)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: octoha status [--name CLUSTER | --run-dir DIR] [--json] [--watch [--interval D] [--watch-for D]]\n\nExit code: 0 every node serving, %d degraded (a node not serving, the load balancer\nnot answering 200, the owner gone), 1 no cluster or another error, 2 usage.\n\nFlags:\n", statusDegradedCode)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *every <= 0 || *watchFor < 0 {
		return fmt.Errorf("%w: --interval must be positive, --watch-for not negative", errUsage)
	}
	if err := local.Supported(); err != nil {
		return err
	}
	dir := *runDir
	if dir == "" {
		dir = local.DefaultRunDir(*name)
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	show := func(rep local.StatusReport) error {
		if *asJSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(rep)
		}
		rep.WriteText(stdout)
		return nil
	}
	if !*watch {
		rep, err := local.StatusOf(ctx, dir)
		if err != nil {
			return err
		}
		if err := show(rep); err != nil {
			return err
		}
		if len(rep.Degraded) > 0 {
			return statusDegraded{rep.Degraded}
		}
		return nil
	}
	if *watchFor > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *watchFor)
		defer cancel()
	}
	term := false
	if f, ok := stdout.(*os.File); ok && isatty.IsTerminal(f.Fd()) && !*asJSON {
		term = true
	}
	rep, err := local.WatchStatus(ctx, dir, *every, func(rep local.StatusReport) error {
		if term {
			fmt.Fprint(stdout, "\033[H\033[2J")
		}
		if err := show(rep); err != nil {
			return err
		}
		if !*asJSON {
			fmt.Fprintf(stdout, "(%s; every %s, Ctrl-C stops)\n", time.Now().Format("15:04:05"), *every)
			if !term {
				fmt.Fprintln(stdout)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(rep.Degraded) > 0 {
		return statusDegraded{rep.Degraded}
	}
	return nil
}
