package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"

	"github.com/octoha/octoha/services/toxiproxy"
)

// Registered here rather than in main.go's table: the clusters started with
// --toxiproxy run it as a child.
func init() {
	commands[toxiproxy.Subcommand] = command{"run the embedded Toxiproxy server (network faults; started by clusters with --toxiproxy)", runToxiproxy}
}

// runToxiproxy runs the embedded Toxiproxy server in the foreground; the
// local provider starts it for clusters brought up with --toxiproxy. Its
// API is reachable only by the cluster's owner: a unix socket in a private
// directory, or (a container's private network) TCP with the secret in
// $OCTOHA_TOXIPROXY_SECRET.
func runToxiproxy(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	privateUmask()
	fs := newFlagSet(toxiproxy.Subcommand, stderr)
	socket := fs.String("socket", "", "unix socket of the Toxiproxy API, in a directory of yours with mode 0700")
	listen := fs.String("listen", "", "host:port of the Toxiproxy API instead of --socket; every request must carry $"+toxiproxy.SecretEnv+" as a bearer token")
	allow := fs.String("allow", "", "comma-separated networks (CIDR) proxies may listen on, e.g. 127.0.91.0/24 (required)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if (*socket == "") == (*listen == "") {
		return fmt.Errorf("%w: give exactly one of --socket and --listen", errUsage)
	}
	if *listen != "" {
		if _, _, err := net.SplitHostPort(*listen); err != nil {
			return fmt.Errorf("%w: --listen %q: %v", errUsage, *listen, err)
		}
	}
	nets, err := toxiproxy.ParseAllow(*allow)
	if err != nil {
		return fmt.Errorf("%w: --allow: %v", errUsage, err)
	}
	return toxiproxy.Serve(ctx, toxiproxy.ServeOptions{Socket: *socket, Listen: *listen, Secret: os.Getenv(toxiproxy.SecretEnv), Allow: nets, Log: stdout})
}
