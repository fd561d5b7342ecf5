// Package swarmtest gives a test a one-node Docker Swarm and leaves the
// engine as it found it.
package swarmtest

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// OneNode makes sure the Docker engine is a swarm manager for the test.
// When the engine was in no swarm it runs `docker swarm init` and, in a
// cleanup registered before the init, `docker swarm leave --force`; an
// engine already in a swarm is used as it is and left in it. It skips the
// test, saying why, when there is no docker CLI or engine, or the engine
// is a swarm worker (services are created on managers).
func OneNode(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("no docker CLI on $PATH: the swarm engine drives it")
	}
	state, err := docker(t, "info", "--format", "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}")
	if err != nil {
		t.Skipf("docker engine not reachable: %v", err)
	}
	switch f := strings.Fields(state); {
	case len(f) == 2 && f[0] == "active" && f[1] == "true":
		t.Log("the engine is already a swarm manager: using its swarm, leaving it as it is")
		return
	case len(f) == 2 && f[0] == "active":
		t.Skip("the engine is a swarm worker: services are created on a manager")
	case len(f) == 0 || f[0] != "inactive":
		t.Skipf("the engine's swarm state is %q: neither in a swarm nor out of one", state)
	}
	// swarm init also creates the docker_gwbridge network, which leaving
	// keeps: remove it too when it was not there before.
	_, gwErr := docker(t, "network", "inspect", gwBridge)
	t.Cleanup(func() {
		if out, err := docker(t, "swarm", "leave", "--force"); err != nil {
			t.Errorf("leave the test's swarm: %v: %s", err, out)
		}
		if gwErr != nil {
			if out, err := docker(t, "network", "rm", gwBridge); err != nil && !strings.Contains(out, "not found") {
				t.Errorf("remove %s: %v: %s", gwBridge, err, out)
			}
		}
	})
	if out, err := docker(t, "swarm", "init", "--advertise-addr", "127.0.0.1", "--listen-addr", "127.0.0.1:2377"); err != nil {
		t.Fatalf("docker swarm init: %v: %s", err, out)
	}
}

// gwBridge is the bridge network swarm init creates on the engine.
const gwBridge = "docker_gwbridge"

func docker(t testing.TB, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}
