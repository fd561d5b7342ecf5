package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/octoha/octoha/harness/cluster/local"
)

func runDown(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("down", stderr)
	name := fs.String("name", "default", "cluster name (names the default run directory)")
	runDir := fs.String("run-dir", "", "run directory (default /tmp/octoha-<uid>/<name>)")
	timeout := fs.Duration("timeout", 60*time.Second, "how long to wait for the cluster to stop")
	if err := parseFlags(fs, args); err != nil {
		return err
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
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	if err := local.DownDir(ctx, dir); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "cluster in %s stopped and removed\n", dir)
	return nil
}
