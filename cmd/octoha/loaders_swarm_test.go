package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/cluster/docker"
	"github.com/octoha/octoha/harness/history"
	"github.com/octoha/octoha/harness/loaders/swarm"
	"github.com/octoha/octoha/harness/loaders/swarm/swarmtest"
	"github.com/octoha/octoha/internal/testbin"
)

// TestLoadersOnSwarm runs docs/loaders.md's swarm block as written on a
// one-node swarm against a docker-provider cluster, then an upload with a
// loader killed mid-run: one merged history that check passes, results
// vegeta reads, per-loader counts that add up, the dead loader reported
// and its packages unknown, no service left.
func TestLoadersOnSwarm(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: starts a docker cluster and a swarm")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := docker.Available(ctx); err != nil {
		t.Skipf("docker provider not available here: %v", err)
	}
	swarmtest.OneNode(t)
	needLoaderImage(t, ctx)
	bin, err := testbin.Octoha()
	if err != nil {
		t.Fatal(err)
	}
	c := swarmTestCluster(t, ctx)

	work := binWorkDir(t, bin)
	env := append(envWithout(trafficAPIKeyEnv), "OCTOHA_URL="+c.URL(), trafficAPIKeyEnv+"="+c.APIKey())
	lines := docBlock(t, "docs/loaders.md", "Loaders on a one-node swarm")
	if len(lines) != 3 {
		t.Fatalf("the swarm block has %d lines, want attack, upload, check: %q", len(lines), lines)
	}
	outputs := make([]string, len(lines))
	for i, line := range lines {
		start := time.Now()
		code, out := shLine(t, work, env, line)
		if code != 0 {
			t.Fatalf("docs line %q: exit %d\n%s", line, code, out)
		}
		t.Logf("%s: ok in %s\n%s", line, time.Since(start).Round(100*time.Millisecond), out)
		outputs[i] = out
		noServiceLeft(t, ctx)
	}
	run := filepath.Join(work, "run")
	h, err := history.Load(filepath.Join(run, historyFileName))
	if err != nil {
		t.Fatal(err)
	}
	checkMerged(t, h, run, "attack-1", history.KindPing, outputs[0], 2800)
	checkMerged(t, h, run, "upload-2", history.KindUpload, outputs[1], 9)
	if !strings.Contains(outputs[2], "durability") {
		t.Errorf("check said nothing about durability:\n%s", outputs[2])
	}

	// A loader killed mid-upload: 2 MB/s per upload makes each 8 MiB
	// package take about 4s, so the kill at 2s lands in its first one.
	code, out := shLine(t, work, env, `bin/octoha upload --url "$OCTOHA_URL" --size 8MiB --count 6 --concurrency 3 --rate 2MB/s --loaders 3 --engine swarm --kill-loader 1@2s --out killed`)
	t.Logf("upload with a loader killed: exit %d\n%s", code, out)
	if code != 0 || !strings.Contains(out, "loader 1 died: killed on request") || !strings.Contains(out, "2 unfinished packages recorded as unknown") {
		t.Fatalf("upload with loader 1 killed: exit %d\n%s", code, out)
	}
	noServiceLeft(t, ctx)
	kh, err := history.Load(filepath.Join(work, "killed", historyFileName))
	if err != nil {
		t.Fatal(err)
	}
	best := map[string]history.Outcome{}
	for _, o := range kh.OpsOfKind(history.KindUpload) {
		if best[o.Version] != history.OK {
			best[o.Version] = o.Outcome
		}
	}
	unknown := 0
	for v, oc := range best {
		switch oc {
		case history.Unknown:
			unknown++
		case history.Failed:
			t.Errorf("package %s failed", v)
		}
	}
	if len(best) != 6 || unknown != 2 {
		t.Fatalf("%d packages in the history, %d unknown; want 6 and 2", len(best), unknown)
	}
	code, out = shLine(t, work, env, `bin/octoha check --url "$OCTOHA_URL" --out killed`)
	t.Logf("check after the kill: exit %d\n%s", code, out)
	if code != 0 {
		t.Fatalf("check after a loader was killed: exit %d\n%s", code, out)
	}
}

// needLoaderImage fails when the node image's octoha has no loader
// command (an image older than this binary).
func needLoaderImage(t *testing.T, ctx context.Context) {
	t.Helper()
	out, _ := exec.CommandContext(ctx, "docker", "run", "--rm", "--network", "none", "--entrypoint", "/octoha",
		swarm.DefaultImage, "loader").CombinedOutput()
	if !strings.Contains(string(out), "started by --loaders") {
		t.Fatalf("%s has no octoha loader: rebuild it from this tree (make build && scripts/images.sh build node): %s", swarm.DefaultImage, out)
	}
}

// swarmTestCluster brings up a two-node docker cluster, removed after.
func swarmTestCluster(t *testing.T, ctx context.Context) *docker.Cluster {
	t.Helper()
	spec := cluster.Defaults()
	spec.Name = "loaderstest"
	spec.Nodes = 2
	runID := "tl" + strconv.FormatInt(time.Now().UnixNano()%1_000_000, 10)
	t.Cleanup(func() {
		dctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := docker.Cleanup(dctx, runID); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	c, err := docker.Up(ctx, spec, docker.Options{RunID: runID, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatalf("docker cluster up: %v", err)
	}
	return c
}

// noServiceLeft fails when a loader service outlived its command.
func noServiceLeft(t *testing.T, ctx context.Context) {
	t.Helper()
	out, err := exec.CommandContext(ctx, "docker", "service", "ls", "--quiet", "--filter", "label="+swarm.LabelRun).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "" {
		t.Fatalf("docker service ls after the command: %v %q", err, out)
	}
}

// rowRE is a row of the loaders table: index, host, then the count.
var rowRE = regexp.MustCompile(`(?m)^(\d+|all)\s+(?:\S+\s+)?(\d+)\s`)

// checkMerged compares one command's records in the history, its results
// file and its printed per-loader counts.
func checkMerged(t *testing.T, h *history.History, run, cmd, kind, out string, atLeast int) {
	t.Helper()
	ops, perLoader := 0, map[string]int{}
	for _, o := range h.Ops {
		if o.Command == cmd && o.Kind == kind {
			ops++
			perLoader[strings.SplitN(o.Client, "-", 2)[0]]++
		}
	}
	f, err := os.Open(filepath.Join(run, cmd+resultsSuffix))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec, results := vegeta.NewDecoder(f), 0
	for {
		var r vegeta.Result
		if err := dec.Decode(&r); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("%s: vegeta cannot read the merged results: %v", cmd, err)
		}
		results++
	}
	if ops < atLeast || results != ops || len(perLoader) != 3 {
		t.Fatalf("%s: %d ops, %d results, loaders %v (want at least %d ops, as many results, 3 loaders)", cmd, ops, results, perLoader, atLeast)
	}
	if strings.HasPrefix(cmd, "attack") {
		sum, all := 0, -1
		for _, m := range rowRE.FindAllStringSubmatch(out[strings.Index(out, "Loaders:"):], -1) {
			n, _ := strconv.Atoi(m[2])
			if m[1] == "all" {
				all = n
			} else {
				sum += n
			}
		}
		if all != ops || sum != ops {
			t.Fatalf("%s: the table's loaders add up to %d, its all row says %d, the history holds %d\n%s", cmd, sum, all, ops, out)
		}
	}
}

// TestLoadersSwarmRates measures, on one docker cluster in one run, the
// rate an unlimited ping attack reaches from this process and from 1, 2
// and 3 loaders on a one-node swarm, with the merge's cost and the clock
// offsets (docs/loaders.md, Measured). It only runs when
// OCTOHA_LOADER_RATES=1: it is a measurement, not a check.
func TestLoadersSwarmRates(t *testing.T) {
	if os.Getenv("OCTOHA_LOADER_RATES") != "1" {
		t.Skip("a measurement: set OCTOHA_LOADER_RATES=1 to run it")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	if err := docker.Available(ctx); err != nil {
		t.Skipf("docker provider not available here: %v", err)
	}
	swarmtest.OneNode(t)
	needLoaderImage(t, ctx)
	bin, err := testbin.Octoha()
	if err != nil {
		t.Fatal(err)
	}
	c := swarmTestCluster(t, ctx)
	work := binWorkDir(t, bin)
	env := append(envWithout(trafficAPIKeyEnv), "OCTOHA_URL="+c.URL())
	base := `bin/octoha attack --url "$OCTOHA_URL" --rate 0 --max-workers 48 --duration 10s --quiet`
	for i, extra := range []string{"", "--loaders 1 --engine swarm", "--loaders 2 --engine swarm", "--loaders 3 --engine swarm", ""} {
		line := fmt.Sprintf("%s %s --out rates%d", base, extra, i)
		code, out := shLine(t, work, env, line)
		if code != 0 {
			t.Fatalf("%s: exit %d\n%s", line, code, out)
		}
		t.Logf("%s\n%s", line, out)
		noServiceLeft(t, ctx)
	}
}
