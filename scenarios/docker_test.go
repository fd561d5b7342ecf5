package scenarios_test

import (
	"context"
	"log/slog"
	"path/filepath"

	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/cluster/docker"
)

// upDocker brings a cluster up as containers (testcontainers-go); each
// container's log lands in the scenario's logs directory when it goes down.
func upDocker(ctx context.Context, spec cluster.Spec, log *slog.Logger, dir string) (cluster.Cluster, error) {
	if err := docker.Available(ctx); err != nil {
		return nil, err
	}
	c, err := docker.Up(ctx, spec, docker.Options{Logger: log, LogDir: filepath.Join(dir, "logs")})
	if err != nil {
		return nil, err
	}
	return c, nil
}
