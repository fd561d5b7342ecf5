// Package swarm places octoha's loader workers on Docker Swarm: one
// replicated job per run (`docker service create --mode replicated-job`),
// each task a worker whose index is its task slot. It drives the docker
// CLI, so it works against whatever engine the CLI reaches (DOCKER_HOST,
// contexts), a one-node swarm or a swarm of many machines alike.
package swarm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/octoha/octoha/harness/loaders"
)

// DefaultImage holds the octoha binary at /octoha (the node image).
const DefaultImage = "octoha-local/node:dev"

// LabelRun labels the service with the loaders' run ID.
const LabelRun = "octoha.loader.run"

// Engine is the Swarm engine. The zero value uses the docker CLI on $PATH.
type Engine struct {
	// Docker is the docker CLI (default "docker").
	Docker string
}

// Name is "swarm".
func (e *Engine) Name() string { return "swarm" }

// ServiceName is the service a run's workers belong to.
func ServiceName(runID string) string { return "octoha-loader-" + runID }

// Start creates the run's replicated job: spec.Count tasks at once, none
// restarted (a dead worker's part stays unknown rather than being sent
// twice), the index from the task slot (0-based for replicated jobs), the
// environment from a private file removed right after (secrets never on
// a command line, not even docker's).
func (e *Engine) Start(ctx context.Context, spec loaders.WorkerSpec) (loaders.Workers, error) {
	if spec.Count < 1 || len(spec.Command) == 0 || spec.RunID == "" {
		return nil, fmt.Errorf("swarm: a run ID, a command and at least one worker are needed")
	}
	if spec.Image == "" {
		spec.Image = DefaultImage
	}
	envFile, err := writeEnvFile(spec)
	if err != nil {
		return nil, err
	}
	defer os.Remove(envFile)
	name := ServiceName(spec.RunID)
	args := []string{"service", "create", "--detach", "--quiet", "--no-resolve-image",
		"--name", name, "--label", LabelRun + "=" + spec.RunID,
		"--mode", "replicated-job", "--replicas", fmt.Sprint(spec.Count), "--max-concurrent", fmt.Sprint(spec.Count),
		"--restart-condition", "none", "--stop-grace-period", "30s",
		"--env-file", envFile, "--env", loaders.SlotEnv + "={{.Task.Slot}}",
		"--hostname", "{{.Node.Hostname}}-loader{{.Task.Slot}}",
		"--entrypoint", spec.Command[0]}
	if spec.Network != "" {
		args = append(args, "--network", spec.Network)
	}
	args = append(args, spec.Image)
	args = append(args, spec.Command[1:]...)
	w := &workers{e: e, name: name}
	if _, err := e.docker(ctx, args...); err != nil {
		// It may exist half-made; Remove is idempotent.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		return nil, errors.Join(fmt.Errorf("swarm: create service %s: %w", name, err), w.Remove(rctx))
	}
	return w, nil
}

// writeEnvFile writes the workers' environment, and their life's bound,
// to a file only this user can read.
func writeEnvFile(spec loaders.WorkerSpec) (string, error) {
	f, err := os.CreateTemp("", "octoha-loader-env-*")
	if err != nil {
		return "", fmt.Errorf("swarm: environment file: %w", err)
	}
	defer f.Close()
	env := map[string]string{}
	for k, v := range spec.Env {
		env[k] = v
	}
	if spec.Timeout > 0 {
		env[loaders.TimeoutEnv] = spec.Timeout.String()
	}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		if strings.ContainsAny(k+env[k], "\n\r") || k == "" || strings.Contains(k, "=") {
			os.Remove(f.Name())
			return "", fmt.Errorf("swarm: environment variable %q cannot be passed through an env file", k)
		}
		b.WriteString(k + "=" + env[k] + "\n")
	}
	if _, err := f.WriteString(b.String()); err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("swarm: write environment file: %w", err)
	}
	return f.Name(), nil
}

// workers are one run's service.
type workers struct {
	e    *Engine
	name string
}

// task is what `docker inspect --type task` says of one task.
type task struct {
	ID           string `json:"ID"`
	Slot         int    `json:"Slot"`
	DesiredState string `json:"DesiredState"`
	Status       struct {
		State           string `json:"State"`
		Message         string `json:"Message"`
		Err             string `json:"Err"`
		ContainerStatus struct {
			ContainerID string `json:"ContainerID"`
			ExitCode    int    `json:"ExitCode"`
		} `json:"ContainerStatus"`
	} `json:"Status"`
}

func (w *workers) tasks(ctx context.Context) ([]task, error) {
	out, err := w.e.docker(ctx, "service", "ps", "--quiet", "--no-trunc", w.name)
	if err != nil {
		return nil, fmt.Errorf("swarm: list the tasks of %s: %w", w.name, err)
	}
	ids := strings.Fields(out)
	if len(ids) == 0 {
		return nil, nil
	}
	out, err = w.e.docker(ctx, append([]string{"inspect", "--type", "task"}, ids...)...)
	if err != nil {
		return nil, fmt.Errorf("swarm: inspect the tasks of %s: %w", w.name, err)
	}
	var ts []task
	if err := json.Unmarshal([]byte(out), &ts); err != nil {
		return nil, fmt.Errorf("swarm: read the tasks of %s: %w", w.name, err)
	}
	return ts, nil
}

// Status maps each task's state onto the loaders' four.
func (w *workers) Status(ctx context.Context) ([]loaders.WorkerState, error) {
	ts, err := w.tasks(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]loaders.WorkerState, 0, len(ts))
	for _, t := range ts {
		s := loaders.WorkerState{Index: t.Slot, ID: t.ID, State: stateOf(t.Status.State)}
		if s.State == loaders.StateFailed || s.State == loaders.StatePending {
			s.Message = strings.TrimSpace(joinMsg(t.Status.Err, t.Status.Message))
			if c := t.Status.ContainerStatus; s.State == loaders.StateFailed && c.ExitCode != 0 {
				s.Message = joinMsg(s.Message, fmt.Sprintf("exit code %d", c.ExitCode))
			}
		}
		out = append(out, s)
	}
	return out, nil
}

// stateOf maps a Swarm task state.
func stateOf(s string) string {
	switch s {
	case "running":
		return loaders.StateRunning
	case "complete":
		return loaders.StateComplete
	case "failed", "rejected", "shutdown", "orphaned", "remove":
		return loaders.StateFailed
	}
	return loaders.StatePending // new, pending, assigned, accepted, preparing, ready, starting
}

func joinMsg(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "; " + b
}

// Kill sends SIGKILL to the container of the task in slot index. The
// container must run on the engine the CLI talks to (on a swarm of many
// machines, point DOCKER_HOST at the task's node).
func (w *workers) Kill(ctx context.Context, index int) error {
	ts, err := w.tasks(ctx)
	if err != nil {
		return err
	}
	for _, t := range ts {
		if t.Slot != index || t.Status.State != "running" {
			continue
		}
		c := t.Status.ContainerStatus.ContainerID
		if c == "" {
			return fmt.Errorf("swarm: task %s (loader %d) has no container yet", t.ID, index)
		}
		if _, err := w.e.docker(ctx, "kill", "--signal", "KILL", c); err != nil {
			return fmt.Errorf("swarm: kill loader %d (container %.12s): %w", index, c, err)
		}
		return nil
	}
	return fmt.Errorf("swarm: no running task in slot %d of %s", index, w.name)
}

// Remove deletes the service and waits (bounded by ctx) until its
// containers are gone, so nothing of the run is left behind.
func (w *workers) Remove(ctx context.Context) error {
	if _, err := w.e.docker(ctx, "service", "rm", w.name); err != nil && !strings.Contains(err.Error(), "not found") && !strings.Contains(err.Error(), "No such service") {
		return fmt.Errorf("swarm: remove service %s: %w", w.name, err)
	}
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		out, err := w.e.docker(ctx, "ps", "--all", "--quiet", "--filter", "label=com.docker.swarm.service.name="+w.name)
		ids := strings.Fields(out)
		if err == nil && len(ids) == 0 {
			return nil
		}
		// A finished job's exited containers outlive `service rm` (measured
		// here: still there 30 s later); they are ours, so remove them.
		if err == nil {
			_, _ = w.e.docker(ctx, append([]string{"rm", "--force"}, ids...)...)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("swarm: containers of %s still there: %w", w.name, context.Cause(ctx))
		case <-tick.C:
		}
	}
}

// docker runs the CLI and returns its standard output; an error carries
// its standard error.
func (e *Engine) docker(ctx context.Context, args ...string) (string, error) {
	bin := e.Docker
	if bin == "" {
		bin = "docker"
	}
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("docker %s: %w: %s", args[0], err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// Logs returns the end of the output of the latest task in slot index
// (docker service logs of that task).
func (w *workers) Logs(ctx context.Context, index, lines int) (string, error) {
	ts, err := w.tasks(ctx)
	if err != nil {
		return "", err
	}
	id := ""
	for _, t := range ts {
		if t.Slot == index {
			id = t.ID
		}
	}
	if id == "" {
		return "", fmt.Errorf("swarm: no task in slot %d of %s", index, w.name)
	}
	out, err := w.e.docker(ctx, "service", "logs", "--raw", "--no-task-ids", "--tail", fmt.Sprint(lines), id)
	if err != nil {
		return "", fmt.Errorf("swarm: logs of loader %d: %w", index, err)
	}
	return out, nil
}

var _ loaders.LogReader = (*workers)(nil)
