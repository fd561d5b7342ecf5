package main

import (
	"context"
	"fmt"
	"io"

	"github.com/octoha/octoha/harness/certificate"
	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/runner"
	"github.com/octoha/octoha/harness/scenario"
)

// certificateFor builds the certificate of a run against the cluster
// described by ext.
func certificateFor(_ context.Context, opts runner.Options, ext *cluster.Spec, all []scenario.Scenario, results []*runner.Result) certificate.Certificate {
	in := certificate.Input{
		Version: currentVersion().Version, Seed: opts.Seed, UploadSize: opts.UploadSize,
		Catalogue: all, Results: results, Replay: opts.Replay,
	}
	if ext != nil && ext.External != nil {
		in.Cluster = ext.External.LBURL
		for _, n := range ext.External.Nodes {
			in.Nodes = append(in.Nodes, n.Name)
		}
	}
	return certificate.Build(in)
}

// printCertificate shows the certificate's rows on the console.
func printCertificate(w io.Writer, c certificate.Certificate) {
	fmt.Fprintf(w, "\nCertificate for %s: %s\n", c.Cluster, c.Verdict)
	for _, r := range c.Rows {
		line := fmt.Sprintf("  %-8s %s", r.Status, r.Requirement)
		if r.Why != "" {
			line += "\n           why: " + r.Why
		}
		fmt.Fprintln(w, line)
	}
	fmt.Fprintf(w, "  (certificate.md and certificate.json are in the output directory)\n")
}
