package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/octoha/octoha/fakes/node"
	"github.com/octoha/octoha/fakes/node/launch"
)

func runNode(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	privateUmask()
	fs := newFlagSet(launch.Subcommand, stderr)
	// The flags are the launch contract, shared with the providers that
	// start nodes; secrets come from flags only when a person types them.
	var (
		lc  launch.Config
		sec launch.Secrets
	)
	lc.Register(fs)
	sec.Register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	sec.FromEnv(os.Getenv)
	if err := node.CheckLaunch(lc, sec); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	return node.RunLaunched(ctx, lc, sec, stderr)
}
