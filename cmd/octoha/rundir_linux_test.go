package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/octoha/octoha/harness/cluster/local"
	"github.com/octoha/octoha/internal/proc"
	"github.com/octoha/octoha/internal/testbin"
)

// Issue 11, item 1: the default run directory's base, /tmp/octoha-<uid>,
// made by someone else must not let `octoha up` truncate a file through a
// planted <name>.up.log link, nor `octoha down`/`up` kill a process named
// in a planted state file.

// startVictim starts `sleep 60`, a process the test owns and octoha never
// started, and returns it with a channel closed when it exits.
func startVictim(t *testing.T) (*exec.Cmd, <-chan struct{}) {
	t.Helper()
	cmd := exec.Command("sleep", "60")
	cmd.SysProcAttr = childSysProcAttr() // its own group, like octoha's children
	if err := cmd.Start(); err != nil {
		t.Skipf("no sleep: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-done })
	return cmd, done
}

func victimSurvives(t *testing.T, victim *exec.Cmd, done <-chan struct{}, after string) {
	t.Helper()
	select {
	case <-done:
		t.Fatalf("%s killed pid %d, a process octoha never started (%v)", after, victim.Process.Pid, victim.ProcessState)
	case <-time.After(300 * time.Millisecond):
	}
	if !proc.Alive(victim.Process.Pid) {
		t.Fatalf("%s: pid %d is gone", after, victim.Process.Pid)
	}
}

// startTime reads a process's start time from /proc, as anyone can.
func startTime(t *testing.T, pid int) uint64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	v, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// attackerBase makes $TMPDIR/octoha-<uid> as another user would: world
// writable (0777), the way a hostile user who got there first could leave
// it for us. It sets $TMPDIR and returns the base.
func attackerBase(t *testing.T) string {
	t.Helper()
	t.Setenv("TMPDIR", t.TempDir())
	base := filepath.Dir(local.DefaultRunDir("x"))
	if err := os.Mkdir(base, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(base, 0o777); err != nil {
		t.Fatal(err)
	}
	return base
}

// TestUpDetachPlantedLogLink (item 1a): a <run dir>.up.log planted as a
// symbolic link to a file the test owns: `octoha up --detach` neither
// truncates nor writes the file, whether the link is in an attacker's
// base directory, in a shared sticky directory next to --run-dir, or in
// our own base directory.
func TestUpDetachPlantedLogLink(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds and runs the octoha binary")
	}
	bin, err := testbin.Octoha()
	if err != nil {
		t.Fatalf("build octoha: %v", err)
	}
	const name = "planted"
	cases := []struct {
		name string
		// setup returns the extra up arguments and the place of the log.
		setup func(t *testing.T) (args []string, log string)
	}{
		{"attacker's base", func(t *testing.T) ([]string, string) {
			base := attackerBase(t)
			return []string{"--name", name}, filepath.Join(base, name+".up.log")
		}},
		{"shared sticky parent of --run-dir", func(t *testing.T) ([]string, string) {
			shared := filepath.Join(t.TempDir(), "shared")
			if err := os.Mkdir(shared, 0o777); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(shared, 0o777|os.ModeSticky); err != nil {
				t.Fatal(err)
			}
			return []string{"--run-dir", filepath.Join(shared, "run")}, filepath.Join(shared, "run.up.log")
		}},
		{"own base", func(t *testing.T) ([]string, string) {
			t.Setenv("TMPDIR", t.TempDir())
			base := filepath.Dir(local.DefaultRunDir(name))
			if err := os.Mkdir(base, 0o700); err != nil {
				t.Fatal(err)
			}
			return []string{"--name", name}, filepath.Join(base, name+".up.log")
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			victim := filepath.Join(t.TempDir(), "precious")
			const content = "precious content\n"
			if err := os.WriteFile(victim, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			args, logPath := tc.setup(t)
			if err := os.Symlink(victim, logPath); err != nil {
				t.Fatal(err)
			}
			args = append([]string{"up", "--detach", "--nodes", "1", "--lb", "embedded", "--network", "127.0.72", "--timeout", "10s"}, args...)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := childCmd(ctx, bin, args...)
			// Nodes that exit at once: should up get past the log, it fails fast.
			cmd.Env = append(slices.DeleteFunc(os.Environ(), func(kv string) bool {
				return strings.HasPrefix(kv, local.EnvBinary+"=")
			}), local.EnvBinary+"=/bin/false")
			out, err := cmd.CombinedOutput()
			t.Logf("octoha %s: %v\n%s", strings.Join(args, " "), err, out)
			if err == nil {
				t.Error("up --detach succeeded with nodes that cannot start")
			}
			got, rerr := os.ReadFile(victim)
			if rerr != nil || string(got) != content {
				t.Errorf("the file behind the planted link now holds %q (%v); want %q untouched", got, rerr, content)
			}
			if fi, err := os.Lstat(logPath); err != nil || fi.Mode()&os.ModeSymlink == 0 {
				t.Logf("the planted link was replaced or removed: %v", err)
			}
		})
	}
}

// TestDownUpPlantedState (item 1b): a state file planted in an attacker's
// base directory, naming a victim with its true start time: `octoha down`
// and `octoha up` refuse the directory and the victim lives.
func TestDownUpPlantedState(t *testing.T) {
	const name = "planted"
	base := attackerBase(t)
	dir := filepath.Join(base, name)
	if err := os.Mkdir(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	victim, done := startVictim(t)
	pid := victim.Process.Pid
	plant := func(owner int) {
		b, _ := json.Marshal(map[string]any{"name": name, "runDir": dir, "supervisorPid": owner, "pids": []int{pid},
			"starts": map[string]uint64{strconv.Itoa(pid): startTime(t, pid)}})
		if err := os.WriteFile(filepath.Join(dir, local.StateFile), b, 0o666); err != nil {
			t.Fatal(err)
		}
	}

	plant(pid)
	var stdout, stderr bytes.Buffer
	code := run([]string{"down", "--name", name, "--timeout", "5s"}, &stdout, &stderr)
	if code == 0 || !strings.Contains(stderr.String(), "writable") {
		t.Errorf("down: exit %d, stderr %q; want a refusal of the writable base directory", code, stderr.String())
	}
	victimSurvives(t, victim, done, "octoha down")

	// up: the owner is dead, so the named children pass for a dead run's
	// leftovers. Nodes that exit at once, should up get that far.
	plant(0)
	t.Setenv(local.EnvBinary, "/bin/false")
	stdout.Reset()
	stderr.Reset()
	code = run([]string{"up", "--name", name, "--nodes", "1", "--lb", "embedded", "--network", "127.0.73", "--timeout", "10s"}, &stdout, &stderr)
	if code == 0 || !strings.Contains(stderr.String(), "writable") {
		t.Errorf("up: exit %d, stderr %q; want a refusal of the writable base directory", code, stderr.String())
	}
	victimSurvives(t, victim, done, "octoha up")
	if _, err := os.Stat(filepath.Join(dir, local.StateFile)); err != nil {
		t.Errorf("up removed the planted run directory: %v", err)
	}
}
