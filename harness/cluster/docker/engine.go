package docker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
)

// Labels on everything a run creates, so Down, Cleanup and Leftovers find
// it by label, also after a crash or Ctrl-C.
const (
	// LabelRun holds the run ID.
	LabelRun = "octoha.run"
	// LabelCluster holds the spec's name.
	LabelCluster = "octoha.cluster"
	// LabelPart says which part a container is: database, share, lb or
	// node:<name>.
	LabelPart = "octoha.part"
)

// EnvRyukDisabled is testcontainers' switch for its reaper container.
const EnvRyukDisabled = "TESTCONTAINERS_RYUK_DISABLED"

// engine is a connection to the Docker engine.
type engine struct {
	cli *client.Client
}

// ryukOnce makes the Ryuk decision once per process: testcontainers reads
// its configuration once, on first use.
var ryukOnce struct {
	sync.Once
	err error
}

// setupRyuk disables testcontainers' reaper (Ryuk) unless the environment
// already decides: its image cannot be pulled on engines without a
// registry, and this provider removes what it starts by label anyway.
// Where Ryuk can be pulled, TESTCONTAINERS_RYUK_DISABLED=false keeps it.
func setupRyuk(log *slog.Logger) error {
	ryukOnce.Do(func() {
		if _, set := os.LookupEnv(EnvRyukDisabled); !set {
			if err := os.Setenv(EnvRyukDisabled, "true"); err != nil {
				ryukOnce.err = fmt.Errorf("disable Ryuk: %w", err)
				return
			}
			log.Info("testcontainers' Ryuk reaper disabled (" + EnvRyukDisabled + "=true set for this process): its image cannot be pulled on engines without a registry; the docker provider removes its containers, network and volumes itself (Down, or Cleanup by the " + LabelRun + " label)")
			if !testcontainers.ReadConfig().RyukDisabled {
				ryukOnce.err = fmt.Errorf("testcontainers read its configuration before Ryuk could be disabled; set %s=true in the environment", EnvRyukDisabled)
			}
		}
	})
	return ryukOnce.err
}

// connect reaches the Docker engine through testcontainers' client (which
// honours DOCKER_HOST and ~/.testcontainers.properties).
func connect(ctx context.Context, log *slog.Logger) (*engine, error) {
	if log == nil {
		log = slog.Default()
	}
	if err := setupRyuk(log); err != nil {
		return nil, err
	}
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return nil, fmt.Errorf("docker engine not reachable (is the daemon running? DOCKER_HOST=%q): %w", os.Getenv("DOCKER_HOST"), err)
	}
	if _, err := cli.Ping(ctx, client.PingOptions{}); err != nil {
		_ = cli.Close()
		return nil, fmt.Errorf("docker engine not reachable (is the daemon running? DOCKER_HOST=%q): %w", os.Getenv("DOCKER_HOST"), err)
	}
	return &engine{cli: cli.Client}, nil
}

func (e *engine) close() { _ = e.cli.Close() }

// runFilter selects one run's resources, or every octoha run's when runID
// is empty.
func runFilter(runID string) client.Filters {
	if runID == "" {
		return client.Filters{}.Add("label", LabelRun)
	}
	return client.Filters{}.Add("label", LabelRun+"="+runID)
}

// Resources lists a run's containers, networks and volumes by name.
type Resources struct {
	Containers []string
	Networks   []string
	Volumes    []string
}

// Empty reports whether nothing is left.
func (r Resources) Empty() bool {
	return len(r.Containers)+len(r.Networks)+len(r.Volumes) == 0
}

func (r Resources) String() string {
	return fmt.Sprintf("containers %v, networks %v, volumes %v", r.Containers, r.Networks, r.Volumes)
}

// Leftovers lists what a run (every octoha run if runID is empty) still
// has in the engine: containers in any state, networks and volumes.
func Leftovers(ctx context.Context, runID string) (Resources, error) {
	e, err := connect(ctx, nil)
	if err != nil {
		return Resources{}, err
	}
	defer e.close()
	return e.leftovers(ctx, runID)
}

func (e *engine) leftovers(ctx context.Context, runID string) (Resources, error) {
	var r Resources
	cs, err := e.cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: runFilter(runID)})
	if err != nil {
		return r, fmt.Errorf("list containers of run %q: %w", runID, err)
	}
	for _, c := range cs.Items {
		name := c.ID[:12]
		if len(c.Names) > 0 {
			name = strings.TrimPrefix(c.Names[0], "/")
		}
		r.Containers = append(r.Containers, name)
	}
	ns, err := e.cli.NetworkList(ctx, client.NetworkListOptions{Filters: runFilter(runID)})
	if err != nil {
		return r, fmt.Errorf("list networks of run %q: %w", runID, err)
	}
	for _, n := range ns.Items {
		r.Networks = append(r.Networks, n.Name)
	}
	vs, err := e.cli.VolumeList(ctx, client.VolumeListOptions{Filters: runFilter(runID)})
	if err != nil {
		return r, fmt.Errorf("list volumes of run %q: %w", runID, err)
	}
	for _, v := range vs.Items {
		r.Volumes = append(r.Volumes, v.Name)
	}
	return r, nil
}

// Cleanup removes every container (forcibly, with its anonymous volumes),
// network and volume labelled with runID; with an empty runID, those of
// every octoha run. It is what Down does, and what to run after a crash or
// Ctrl-C left a run behind (the run ID is in Up's log and in each
// container's octoha.run label).
func Cleanup(ctx context.Context, runID string) error {
	e, err := connect(ctx, nil)
	if err != nil {
		return err
	}
	defer e.close()
	return e.cleanup(ctx, runID)
}

func (e *engine) cleanup(ctx context.Context, runID string) error {
	var (
		errs []error
		mu   sync.Mutex
		wg   sync.WaitGroup
	)
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	cs, err := e.cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: runFilter(runID)})
	if err != nil {
		return fmt.Errorf("cleanup run %q: list containers: %w", runID, err)
	}
	for _, c := range cs.Items {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := e.cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
			if err != nil && !cerrdefs.IsNotFound(err) {
				fail(fmt.Errorf("remove container %s: %w", c.ID[:12], err))
			}
		}()
	}
	wg.Wait()
	ns, err := e.cli.NetworkList(ctx, client.NetworkListOptions{Filters: runFilter(runID)})
	if err != nil {
		fail(fmt.Errorf("cleanup run %q: list networks: %w", runID, err))
	} else {
		for _, n := range ns.Items {
			if _, err := e.cli.NetworkRemove(ctx, n.ID, client.NetworkRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
				fail(fmt.Errorf("remove network %s: %w", n.Name, err))
			}
		}
	}
	vs, err := e.cli.VolumeList(ctx, client.VolumeListOptions{Filters: runFilter(runID)})
	if err != nil {
		fail(fmt.Errorf("cleanup run %q: list volumes: %w", runID, err))
	} else {
		for _, v := range vs.Items {
			if _, err := e.cli.VolumeRemove(ctx, v.Name, client.VolumeRemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
				fail(fmt.Errorf("remove volume %s: %w", v.Name, err))
			}
		}
	}
	return errors.Join(errs...)
}

// logs returns a container's whole log (stdout and stderr interleaved as
// far as Docker keeps them apart).
func (e *engine) logs(ctx context.Context, id string) (string, error) {
	rc, err := e.cli.ContainerLogs(ctx, id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		return "", fmt.Errorf("container logs: %w", err)
	}
	defer rc.Close()
	var buf bytes.Buffer
	// Containers run without a TTY, so the stream is multiplexed.
	if _, err := stdcopy.StdCopy(&buf, &buf, io.LimitReader(rc, 64<<20)); err != nil {
		return buf.String(), fmt.Errorf("container logs: %w", err)
	}
	return buf.String(), nil
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
