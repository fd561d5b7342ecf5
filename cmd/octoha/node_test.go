package main

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
)

// The task flags are checked before the node starts.
func TestNodeTaskFlagErrors(t *testing.T) {
	base := []string{"--id", "OctopusServerNodes-1", "--name", "Node1", "--db", "sqlite:" + t.TempDir() + "/x.db",
		"--packages", t.TempDir(), "--api-key", "API-X"}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--task-poll", "0s"}, "--task-poll must be positive"},
		{[]string{"--offline-after", "-1s"}, "cannot be negative"},
		{[]string{"--heartbeat", "1s", "--leader-lease", "500ms"}, "must be longer than --heartbeat"},
	} {
		err := runNode(context.Background(), append(append([]string{}, base...), c.args...), io.Discard, io.Discard)
		if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: err = %v, want a usage error saying %q", c.args, err, c.want)
		}
	}
}
