//go:build linux

package local

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/internal/proc"
)

// Issue 11, items 1 and 2: a run directory someone else prepared must not
// make octoha signal, truncate or chmod anything that is not its own.

// plantState writes a state file as an attacker would: owner and children
// as given, with start times only for the PIDs in starts.
func plantState(t *testing.T, dir string, owner int, pids []int, starts map[int]uint64) {
	t.Helper()
	b, err := json.Marshal(State{Name: "planted", RunDir: dir, SupervisorPID: owner, PIDs: pids, Starts: starts})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, StateFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// assertSurvives fails if the victim died (giving a wrongly sent signal
// time to land first).
func assertSurvives(t *testing.T, p *proc.Process, after string) {
	t.Helper()
	select {
	case <-p.Done():
		t.Fatalf("%s killed pid %d, a process octoha never started: %v", after, p.PID(), p.Err())
	case <-time.After(300 * time.Millisecond):
	}
	if !proc.Alive(p.PID()) {
		t.Fatalf("%s: pid %d is gone", after, p.PID())
	}
}

func assertMode(t *testing.T, path string, want os.FileMode, after string) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("%s: mode of %s is %#o, was %#o", after, path, got, want)
	}
}

// upFailing runs Up with nodes that exit at once (/bin/false), so that it
// fails fast once past the run directory, and returns its error.
func upFailing(t *testing.T, name, runDir, network string) error {
	t.Helper()
	spec := cluster.Defaults()
	spec.Name, spec.Nodes, spec.Network = name, 1, network
	spec.LB.Kind = "embedded"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := Up(ctx, spec, Options{RunDir: runDir, Binary: "/bin/false", Logger: slog.New(slog.DiscardHandler), ReadyTimeout: 10 * time.Second})
	if err == nil {
		_ = c.Down(ctx)
		t.Fatal("Up with nodes that exit at once succeeded")
	}
	return err
}

func downDir(dir string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return DownDir(ctx, dir)
}

// TestPlantedStateWithoutStartTimes (item 1b): a state file naming a PID
// without a recorded start time is no licence to signal it: neither down
// (the owner) nor up (a dead run's children) touches the process.
func TestPlantedStateWithoutStartTimes(t *testing.T) {
	t.Run("down", func(t *testing.T) {
		victim := startSleeper(t)
		dir := filepath.Join(t.TempDir(), "run")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		plantState(t, dir, victim.PID(), []int{victim.PID()}, nil)
		err := downDir(dir)
		t.Logf("DownDir: %v", err)
		assertSurvives(t, victim, "DownDir")
	})
	t.Run("up", func(t *testing.T) {
		victim := startSleeper(t)
		dir := filepath.Join(t.TempDir(), "run")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		plantState(t, dir, 0, []int{victim.PID()}, nil)
		err := upFailing(t, "planted", dir, "127.0.71")
		t.Logf("Up: %v", err)
		assertSurvives(t, victim, "Up")
	})
}

// TestDefaultRunDirTakeover (item 1b, 1c): someone else created the base
// directory /tmp/octoha-<uid> (here under $TMPDIR) and planted a run
// directory whose state file names a victim with its true start time
// (anyone can read it in /proc). Down and up refuse, saying why, and
// neither signals the victim nor chmods anything.
func TestDefaultRunDirTakeover(t *testing.T) {
	const name = "takeover"
	cases := []struct {
		name, want string
		root       bool
		// prepare makes the base directory at base; it returns the real
		// directory the planted run directory is in.
		prepare func(t *testing.T, base string) string
	}{
		{"world-writable base", "writable", false, func(t *testing.T, base string) string {
			mkdirMode(t, base, 0o777)
			return base
		}},
		{"base owned by another user", "owned by", true, func(t *testing.T, base string) string {
			mkdirMode(t, base, 0o755)
			return base
		}},
		{"base is a symbolic link", "symbolic link", false, func(t *testing.T, base string) string {
			target := t.TempDir()
			if err := os.Chmod(target, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, base); err != nil {
				t.Fatal(err)
			}
			return target
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.root && os.Geteuid() != 0 {
				t.Skip("needs root to give the base directory to another user")
			}
			t.Setenv("TMPDIR", t.TempDir())
			dir := DefaultRunDir(name)
			base := filepath.Dir(dir)
			real := tc.prepare(t, base)
			runDir := filepath.Join(real, name)
			mkdirMode(t, runDir, 0o755)
			victim := startSleeper(t)
			start, ok := procStart(victim.PID())
			if !ok {
				t.Skip("no /proc start times on this system")
			}
			plantState(t, runDir, victim.PID(), []int{victim.PID()}, map[int]uint64{victim.PID(): start})
			if tc.root {
				for _, p := range []string{base, runDir, filepath.Join(runDir, StateFile)} {
					if err := os.Chown(p, 65534, 65534); err != nil {
						t.Fatal(err)
					}
				}
			}
			realMode := modeOf(t, real)

			err := downDir(dir)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("DownDir: %v; want a refusal saying %q", err, tc.want)
			}
			assertSurvives(t, victim, "DownDir")

			// Up with a dead owner: the planted children would be killed
			// as a dead run's leftovers.
			plantStateAs(t, runDir, 0, []int{victim.PID()}, map[int]uint64{victim.PID(): start}, tc.root)
			err = upFailing(t, name, "", "127.0.71")
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Up: %v; want a refusal saying %q", err, tc.want)
			}
			assertSurvives(t, victim, "Up")
			assertMode(t, real, realMode, "Up")
			if _, err := os.Lstat(filepath.Join(runDir, StateFile)); err != nil {
				t.Errorf("Up removed or replaced the planted run directory: %v", err)
			}
		})
	}
}

// plantStateAs plants a state file, given to nobody when chown is set.
func plantStateAs(t *testing.T, dir string, owner int, pids []int, starts map[int]uint64, chown bool) {
	t.Helper()
	if chown { // the directory is nobody's: write through a fresh file
		_ = os.Remove(filepath.Join(dir, StateFile))
	}
	plantState(t, dir, owner, pids, starts)
	if chown {
		if err := os.Chown(filepath.Join(dir, StateFile), 65534, 65534); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSymlinkedRunDir (item 1c): a run directory replaced with a symbolic
// link is neither followed nor chmodded by up, and down does not act on a
// state file behind it.
func TestSymlinkedRunDir(t *testing.T) {
	target := t.TempDir()
	if err := os.Chmod(target, 0o700); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "run")
	if err := os.Symlink(target, dir); err != nil {
		t.Fatal(err)
	}
	err := upFailing(t, "symlinked", dir, "127.0.71")
	if !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("Up: %v; want a refusal naming the symbolic link", err)
	}
	assertMode(t, target, 0o700, "Up")
	if entries, _ := os.ReadDir(target); len(entries) > 0 {
		t.Errorf("Up wrote through the symbolic link into %s: %v", target, entries)
	}

	// Down, on its own: the link planted afresh.
	_ = os.Remove(dir)
	if err := os.Symlink(target, dir); err != nil {
		t.Fatal(err)
	}
	victim := startSleeper(t)
	start, ok := procStart(victim.PID())
	if !ok {
		t.Skip("no /proc start times on this system")
	}
	plantState(t, target, victim.PID(), []int{victim.PID()}, map[int]uint64{victim.PID(): start})
	err = downDir(dir)
	if err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("DownDir: %v; want a refusal naming the symbolic link", err)
	}
	assertSurvives(t, victim, "DownDir")
	if _, err := os.Stat(filepath.Join(target, StateFile)); err != nil {
		t.Errorf("DownDir removed what the link points to: %v", err)
	}
}

func mkdirMode(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.Mkdir(path, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // past the umask
		t.Fatal(err)
	}
}

func modeOf(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}
