package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/octoha/octoha/harness/azure"
	"github.com/octoha/octoha/harness/payload"

	"github.com/octoha/octoha/harness/certificate"
	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/runner"
	"github.com/octoha/octoha/harness/scenario"
)

// certificateFor builds the certificate of a run against the cluster
// described by ext.
func certificateFor(_ context.Context, opts runner.Options, ext *cluster.Spec, all []scenario.Scenario, results []*runner.Result, config []certificate.Row) certificate.Certificate {
	in := certificate.Input{
		Version: currentVersion().Version, Seed: opts.Seed, UploadSize: opts.UploadSize,
		Catalogue: all, Results: results, Replay: opts.Replay, Configuration: config,
	}
	if ext != nil && ext.External != nil {
		in.Cluster = ext.External.LBURL
		for _, n := range ext.External.Nodes {
			in.Nodes = append(in.Nodes, n.Name)
		}
	}
	return certificate.Build(in)
}

// azureSettings reads --max-package (default: the upload size) and
// --upload-rate (e.g. 10MiB/s) for the Azure configuration rows.
func azureSettings(f catalogueFlags, uploadSize int64) (azure.Settings, error) {
	set := azure.Settings{MaxPackage: uploadSize}
	if f.maxPackage != "" {
		n, err := payload.ParseSize(f.maxPackage)
		if err != nil || n <= 0 {
			return set, fmt.Errorf("%w: --max-package %q: want a size such as 2GiB", errUsage, f.maxPackage)
		}
		set.MaxPackage = n
	}
	if f.uploadRate != "" {
		n, err := payload.ParseSize(strings.TrimSuffix(f.uploadRate, "/s"))
		if err != nil || n <= 0 {
			return set, fmt.Errorf("%w: --upload-rate %q: want a rate such as 10MiB/s", errUsage, f.uploadRate)
		}
		set.UploadRate = float64(n)
	}
	return set, nil
}
