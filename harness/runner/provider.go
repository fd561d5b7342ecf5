package runner

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/octoha/octoha/harness/apiclient"
	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/cluster/docker"
	"github.com/octoha/octoha/harness/cluster/external"
	"github.com/octoha/octoha/harness/cluster/local"
	"github.com/octoha/octoha/harness/history"
	"github.com/octoha/octoha/harness/lb"
	"github.com/octoha/octoha/harness/rundir"
	"github.com/octoha/octoha/harness/scenario"
	"github.com/octoha/octoha/octopusapi"
	"github.com/octoha/octoha/services/postgres"
	"github.com/octoha/octoha/services/samba"
)

// Providers users may name.
var Providers = []string{cluster.ProviderLocal, cluster.ProviderDocker, "auto", cluster.ProviderExternal}

// ResolveProvider turns "auto" into docker (when an engine and the images
// are there) or local, and says why.
func ResolveProvider(ctx context.Context, provider string) (string, string, error) {
	switch provider {
	case cluster.ProviderLocal, cluster.ProviderDocker, cluster.ProviderExternal:
		return provider, "", nil
	case "auto", "":
		actx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		if err := docker.Available(actx); err != nil {
			return cluster.ProviderLocal, fmt.Sprintf("provider auto → local (%v)", err), nil
		}
		return cluster.ProviderDocker, "provider auto → docker (engine and images found)", nil
	}
	return "", "", fmt.Errorf("provider %q: want %s", provider, strings.Join(Providers, ", "))
}

// Preflight says, without starting anything, why a scenario cannot run
// with these options (nil: it can, as far as can be known before the
// cluster is up). `octoha chaos --list` shows it.
func Preflight(ctx context.Context, opts Options, sc scenario.Scenario) error {
	if err := sc.RunsOn(opts.Provider); err != nil {
		return err
	}
	if opts.Provide != nil {
		return nil // the caller's provider answers after Up (cluster.Can)
	}
	switch opts.Provider {
	case cluster.ProviderExternal:
		if opts.External == nil || opts.External.External == nil {
			return errors.New("no external cluster spec (--cluster FILE.yaml)")
		}
		var errs []error
		for _, n := range sc.Needs {
			if err := external.CanSpec(*opts.External, n); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	case cluster.ProviderDocker:
		if err := docker.Available(ctx); err != nil {
			return fmt.Errorf("the docker provider is not available: %w", err)
		}
		return nil
	case cluster.ProviderLocal:
		if err := local.Supported(); err != nil {
			return err
		}
		var errs []error
		if sc.Shape.LB != "" {
			if kind, err := lb.ParseKind(sc.Shape.LB); err != nil {
				errs = append(errs, err)
			} else if err := lb.Available(kind); err != nil {
				errs = append(errs, fmt.Errorf("%s is not installed here: %w", kind, err))
			}
		}
		for _, n := range sc.Needs {
			switch n {
			case cluster.CapDBOutage:
				if _, err := postgres.Available(); err != nil {
					errs = append(errs, fmt.Errorf("database outages need PostgreSQL: %w", err))
				}
			case cluster.CapShareOutage:
				if _, err := samba.Available(); err != nil {
					errs = append(errs, fmt.Errorf("share outages need Samba: %w", err))
				}
			case cluster.CapPartition, cluster.CapNetwork:
				if !sc.Shape.Toxiproxy {
					errs = append(errs, fmt.Errorf("%s faults on the local provider need the scenario's links through Toxiproxy (Shape.Toxiproxy)", n))
				}
			}
		}
		return errors.Join(errs...)
	}
	return fmt.Errorf("provider %q: want local, docker or external", opts.Provider)
}

// up brings the scenario's cluster up through the provider and registers
// its teardown first of all, so it is undone last.
func (r *run) up(ctx context.Context) (cluster.Cluster, error) {
	uctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	if r.opts.Provider == cluster.ProviderExternal {
		r.Step("connecting to the external cluster at %s", r.opts.External.External.LBURL)
		c, err := external.Connect(uctx, *r.opts.External, external.Options{Logger: r.log})
		if err != nil {
			return nil, err
		}
		r.stack.Push("disconnect from the external cluster", c.Down)
		return c, nil
	}
	base, err := networkBase()
	if err != nil {
		return nil, err
	}
	n := base + int(networks.Add(1))
	if n > 254 {
		return nil, fmt.Errorf("too many clusters in one process (loopback networks 127.0.%d-254 exhausted; see %s)", base+1, networkBaseEnv)
	}
	spec := r.sc.Shape.Spec()
	spec.Network = fmt.Sprintf("127.0.%d", n)
	spec.Name = fmt.Sprintf("scn-%d-%d", os.Getpid(), n)
	r.Step("bringing up %d nodes behind %s, %s database, %s share (provider %s)", spec.Nodes, spec.LB.Kind, spec.DB.Kind, spec.Storage.Kind, r.opts.Provider)
	var c cluster.Cluster
	switch {
	case r.opts.Provide != nil:
		pc, err := r.opts.Provide(uctx, spec)
		if err != nil {
			return nil, err
		}
		c = pc
	case r.opts.Provider == cluster.ProviderDocker:
		if err := docker.Available(uctx); err != nil {
			return nil, err
		}
		dc, err := docker.Up(uctx, spec, docker.Options{Logger: r.log, LogDir: filepath.Join(r.res.Dir, "logs")})
		if err != nil {
			return nil, err
		}
		c = dc
	default:
		lc, err := local.Up(uctx, spec, local.Options{Binary: r.opts.Binary, Logger: r.log})
		if err != nil {
			return nil, err
		}
		c = lc
	}
	r.stack.Push("tear the cluster down", func(ctx context.Context) error {
		if r.res.State == Failed {
			r.keepLogs(c)
		}
		return c.Down(ctx)
	})
	return c, nil
}

// keepLogs copies a local cluster's logs into the scenario directory.
func (r *run) keepLogs(c cluster.Cluster) {
	type runDirer interface{ RunDir() string }
	rd, ok := c.(runDirer)
	if !ok {
		return
	}
	dst := filepath.Join(r.res.Dir, "logs")
	_ = os.MkdirAll(dst, 0o755)
	// Logs stay private (0600) in their copies too: request lines and
	// errors may quote keys the harness does not control.
	if entries, err := os.ReadDir(filepath.Join(rd.RunDir(), "logs")); err == nil {
		for _, e := range entries {
			if b, err := os.ReadFile(filepath.Join(rd.RunDir(), "logs", e.Name())); err == nil {
				_ = os.WriteFile(filepath.Join(dst, e.Name()), b, 0o600)
			}
		}
	}
	for _, f := range []string{"lb/haproxy.cfg", "lb/haproxy.log", "lb/nginx.conf", "lb/error.log"} {
		if b, err := os.ReadFile(filepath.Join(rd.RunDir(), f)); err == nil {
			_ = os.WriteFile(filepath.Join(dst, strings.ReplaceAll(f, "/", "-")), b, 0o600)
		}
	}
}

// deleteUploadedPackages removes, through the API, the packages this
// scenario stored in a real cluster's built-in feed.
func (r *run) deleteUploadedPackages(ctx context.Context) error {
	h, err := r.History()
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	var errs []error
	client, err := apiClient(r.c, 30*time.Second)
	if err != nil {
		return fmt.Errorf("delete test packages: %w", err)
	}
	for _, op := range h.OpsOfKind(history.KindUpload) {
		if op.Outcome == history.Failed || op.PackageID == "" {
			continue
		}
		id := octopusapi.PackageResourceID(op.PackageID, op.Version)
		if seen[id] {
			continue
		}
		seen[id] = true
		req, err := http.NewRequestWithContext(ctx, http.MethodDelete, r.c.URL()+octopusapi.PackagePath(octopusapi.DefaultSpaceID, id), nil)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		resp, err := client.Do(req)
		if err != nil {
			errs = append(errs, fmt.Errorf("delete test package %s: %w", id, err))
			continue
		}
		resp.Body.Close()
		if resp.StatusCode >= 300 && resp.StatusCode != http.StatusNotFound {
			errs = append(errs, fmt.Errorf("delete test package %s: %s", id, resp.Status))
			continue
		}
		r.log.Info("deleted test package", "package", id, "status", resp.Status)
	}
	return errors.Join(errs...)
}

// apiClient returns a client of c's Octopus API: the key goes to c's load
// balancer and nodes only, and a redirect elsewhere is refused.
func apiClient(c cluster.Cluster, timeout time.Duration) (*http.Client, error) {
	origins := []string{c.URL()}
	for _, n := range c.Nodes() {
		origins = append(origins, n.URL)
	}
	return apiclient.New(apiclient.Options{APIKey: c.APIKey(), Origins: origins, Timeout: timeout})
}

// finish writes scenario.json, whatever happened.
func (r *run) finish() {
	r.StopLoad()
	res := r.res
	res.End = time.Now()
	if res.State == "" {
		res.State = Passed
	}
	r.mu.Lock()
	res.Checks = r.checks
	results := append([]string(nil), r.results...)
	r.mu.Unlock()
	if r.rec != nil {
		_ = r.rec.Close()
	}
	sc := rundir.Scenario{
		Name: r.sc.Title, Title: r.sc.Title, Claim: r.sc.Claim, Slug: res.Slug, Labels: r.sc.Labels(),
		Seed: r.opts.Seed, Provider: r.opts.Provider, UploadSize: r.opts.UploadSize, Start: res.Start, End: res.End,
		Figures: res.Figures, Checks: res.Checks, Results: results, Notes: res.Notes, State: res.State,
	}
	for _, u := range res.Undone {
		if u.Error != "" {
			sc.Notes = append(sc.Notes, "RECOVERY FAILED: "+u.What+": "+u.Error)
		}
	}
	if res.Aborted != "" {
		sc.Notes = append(sc.Notes, "ABORTED: "+res.Aborted)
	}
	if r.opts.Replay != nil {
		sc.Replay = r.opts.Replay(r.sc)
	}
	switch res.State {
	case Skipped:
		sc.SkipReason = res.Reason
	case Failed:
		sc.Failure = res.Reason
	}
	if r.c != nil {
		spec := r.c.Spec().Redacted()
		sc.Spec = &spec
		sc.Components = r.c.Components()
	}
	if err := rundir.WriteScenario(res.Dir, sc); err != nil {
		r.log.Error("write scenario file", "err", err)
	}
}

// networkBaseEnv moves the loopback networks a process's clusters use
// (127.0.BASE+1, +2, …), so two catalogue runs on one machine do not
// collide. Default 40.
const networkBaseEnv = "OCTOHA_NETWORK_BASE"

func networkBase() (int, error) {
	v := os.Getenv(networkBaseEnv)
	if v == "" {
		return 40, nil
	}
	b, err := strconv.Atoi(v)
	if err != nil || b < 1 || b > 250 {
		return 0, fmt.Errorf("%s=%q: want a number from 1 to 250 (clusters use 127.0.BASE+1 upwards)", networkBaseEnv, v)
	}
	return b, nil
}
