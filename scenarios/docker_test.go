package scenarios_test

import (
	"context"
	"errors"
	"log/slog"

	"github.com/octoha/octoha/harness/cluster"
)

// upDocker brings a cluster up with the docker provider.
func upDocker(ctx context.Context, spec cluster.Spec, log *slog.Logger) (cluster.Cluster, error) {
	return nil, errors.New("the docker provider is not wired into the scenarios yet")
}
