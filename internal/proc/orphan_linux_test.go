//go:build linux

package proc

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A group leader that dies by SIGKILL leaves its child in the group (as an
// nginx master leaves its workers); KillOrphanedGroup reaps the child, and
// leaves alone a group whose leader's PID is still taken.
func TestKillOrphanedGroup(t *testing.T) {
	// The leader prints its child's PID, then waits.
	cmd := exec.Command("sh", "-c", "sleep 300 & echo $!; wait")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	leader := cmd.Process.Pid
	start, ok := StartTime(leader)
	if !ok {
		t.Fatal("no start time for the leader")
	}
	buf := make([]byte, 32)
	n, err := out.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	child, err := strconv.Atoi(strings.TrimSpace(string(buf[:n])))
	if err != nil {
		t.Fatalf("child pid %q: %v", buf[:n], err)
	}
	t.Cleanup(func() { _ = syscall.Kill(child, syscall.SIGKILL) })

	// While the leader lives, its PID is taken: nothing is done.
	if k, err := KillOrphanedGroup(leader, start); err != nil || k != 0 {
		t.Fatalf("group with a live leader: killed %d (%v)", k, err)
	}
	_ = syscall.Kill(leader, syscall.SIGKILL)
	_ = cmd.Wait()
	if !Alive(child) {
		t.Fatal("the child died with its leader: the test shows nothing")
	}
	k, err := KillOrphanedGroup(leader, start)
	if err != nil || k != 1 {
		t.Fatalf("killed %d (%v), want the one orphan", k, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for processExists(child) {
		if time.Now().After(deadline) {
			t.Fatalf("orphan %d still alive", child)
		}
		time.Sleep(10 * time.Millisecond) // the kernel reaps it (init waits for it)
	}
}

// processExists reports whether pid is a live (not zombie) process.
func processExists(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i >= 0 && !strings.HasPrefix(strings.TrimSpace(string(b[i+1:])), "Z")
}
