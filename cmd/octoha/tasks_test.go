package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestTasksUsageErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"tasks"}, "needs a subcommand"},
		{[]string{"tasks", "run"}, `unknown tasks subcommand "run"`},
		{[]string{"tasks", "create", "--count", "0"}, "--count must be at least 1"},
		{[]string{"tasks", "create", "--duration", "2h"}, "--duration must be between"},
		{[]string{"tasks", "create", "--rate", "fast"}, `--rate "fast"`},
		{[]string{"tasks", "cancel"}, "name the tasks to cancel"},
		{[]string{"tasks", "watch", "--every", "0s"}, "--every and --for must be positive"},
		{[]string{"tasks", "create", "--name", "no-such-cluster-here"}, "no cluster in"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(c.args, &stdout, &stderr)
		if code == 0 || !strings.Contains(stderr.String(), c.want) {
			t.Errorf("%v: exit %d, want an error naming %q:\n%s", c.args, code, c.want, stderr.String())
		}
	}
}
