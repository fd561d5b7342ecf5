package local

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/octoha/octoha/internal/proc"
)

// startSleeper starts a process this test owns, standing in for a process
// that reused the PID of a dead run's child.
func startSleeper(t *testing.T) *proc.Process {
	t.Helper()
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skipf("no sleep binary: %v", err)
	}
	p, err := proc.Start(proc.Spec{Name: "sleeper", Path: sleep, Args: []string{"60"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Kill(context.Background()) })
	return p
}

// writeStateFile writes a run directory with a state file naming pid as
// owner and child, recorded with the given start time.
func writeStateFile(t *testing.T, pid int, start uint64) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "run")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(State{Name: "t", RunDir: dir, SupervisorPID: pid, PIDs: []int{pid}, Starts: map[int]uint64{pid: start}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, StateFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestStateIgnoresReusedPIDs: a state file's PIDs whose processes have a
// different start time belong to someone else now: the owner is not
// "alive", and down removes the run directory without signalling them.
func TestStateIgnoresReusedPIDs(t *testing.T) {
	p := startSleeper(t)
	start, ok := procStart(p.PID())
	if !ok {
		t.Skip("no /proc start times on this system")
	}
	dir := writeStateFile(t, p.PID(), start+1)
	st, err := ReadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Alive() || st.Running(p.PID()) {
		t.Errorf("a reused PID counts as the run's: Alive %v, Running %v", st.Alive(), st.Running(p.PID()))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := DownDir(ctx, dir); err != nil {
		t.Fatalf("DownDir: %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("run directory still there: %v", err)
	}
	// Give a wrongly sent signal time to land before looking.
	select {
	case <-p.Done():
		t.Fatalf("DownDir killed a process that merely reused a recorded PID: %v", p.Err())
	case <-time.After(200 * time.Millisecond):
	}
}

// TestStateSignalsRecordedOwner: the control case: with the right start
// time the owner is alive, and down stops it.
func TestStateSignalsRecordedOwner(t *testing.T) {
	p := startSleeper(t)
	start, ok := procStart(p.PID())
	if !ok {
		t.Skip("no /proc start times on this system")
	}
	dir := writeStateFile(t, p.PID(), start)
	st, err := ReadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Alive() || !st.Running(p.PID()) {
		t.Fatalf("the recorded owner is not alive: Alive %v, Running %v", st.Alive(), st.Running(p.PID()))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := DownDir(ctx, dir); err != nil {
		t.Fatalf("DownDir: %v", err)
	}
	select {
	case <-p.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("DownDir did not stop the recorded owner")
	}
}
