package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/octoha/octoha/harness/byhand"
)

// runFault injects or undoes one fault on a running local cluster and
// records it in the run directory's history. It is also what certification
// hooks call when a local cluster poses as a real one.
func runFault(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("fault", stderr)
	cf := addClusterFlags(fs)
	node := fs.String("node", "", "the node, e.g. Node2 (for node faults)")
	hold := fs.Duration("for", 0, "undo the fault after this long (at once on Ctrl-C); without it the fault stays until its recovery action")
	out := fs.String("out", "", "run directory shared with upload, attack and check: the fault is recorded in its "+historyFileName+" (default "+byHandRoot()+"/<cluster>-<owner pid>)")
	waitLB := fs.Bool("wait-lb", false, "after a recovery, wait (up to 30s) until the load balancer has the node UP again, recording its view, so check can time the readmission (an injection always waits for the ejection)")
	actions := strings.Join(byhand.FaultActions, ", ")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: octoha fault ACTION [--node NAME] [--for DURATION] [--wait-lb] [--name CLUSTER | --run-dir DIR] [--out DIR]\n\nACTION is one of: %s\n\n", actions)
		fmt.Fprintln(stderr, faultUsage)
		fs.PrintDefaults()
	}
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fs.Usage()
		return fmt.Errorf("%w: an action is required (%s)", errUsage, actions)
	}
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	dir, err := cf.dir()
	if err != nil {
		return err
	}
	return byhand.Fault(ctx, byhand.FaultOptions{Action: args[0], Node: *node, Hold: *hold, WaitLB: *waitLB,
		RunDir: dir, Name: *cf.name, Out: *out, Print: stdout})
}

// faultUsage is octoha fault's help after its usage line.
const faultUsage = `kill, pause, stop (or restart), drain, db-stop and share-stop inject a fault into a cluster
started with octoha up; start, resume, undrain, db-start and share-start undo it (start waits
until the node answers its ping). Each fault is recorded with its window in the history of
--out, as the nemesis records it in scenarios (kinds kill, pause, restart, drain, db-outage,
share-outage), together with the load balancer's view of the nodes until it ejects the
node (and, after a recovery with --wait-lb, readmits it). With --for the fault undoes
itself after that long, and at once on Ctrl-C.

On a cluster started with octoha up --toxiproxy, ACTION may also be a network fault on one
link: KIND@LINK[,param=value…], KIND one of latency (latency=, jitter=), bandwidth (rate=,
e.g. 10MB/s), blackhole, reset, slow-close (after=) or partition; LINK one of client (no
--node), lb, db, share (the node's), or all (partition only). heal undoes them, e.g.
  octoha fault latency@db,latency=300ms,jitter=100ms --node Node1 --for 30s
  octoha fault partition@share --node Node2; octoha fault heal --node Node2

Flags:`
