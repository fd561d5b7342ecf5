package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"strconv"

	"github.com/octoha/octoha/services/toxiproxy"
)

// Registered here rather than in main.go's table: the clusters started with
// --toxiproxy run it as a child.
func init() {
	commands[toxiproxy.Subcommand] = command{"run the embedded Toxiproxy server (network faults; started by clusters with --toxiproxy)", runToxiproxy}
}

// runToxiproxy runs the embedded Toxiproxy server in the foreground; the
// local provider starts it for clusters brought up with --toxiproxy.
func runToxiproxy(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet(toxiproxy.Subcommand, stderr)
	listen := fs.String("listen", net.JoinHostPort("127.0.0.1", strconv.Itoa(toxiproxy.DefaultPort)), "host:port of the Toxiproxy API")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if _, _, err := net.SplitHostPort(*listen); err != nil {
		return fmt.Errorf("%w: --listen %q: %v", errUsage, *listen, err)
	}
	return toxiproxy.Serve(ctx, *listen, stdout)
}
