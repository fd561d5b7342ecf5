//go:build linux

package proc

import (
	"bufio"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The /proc readers every driver uses: a shell's sleeping grandchild is
// found below it, its direct child among its children, and a stopped
// process reads as T.
func TestInspectProcesses(t *testing.T) {
	// sh → sh -c (child) → sleep (grandchild); the inner shell prints the
	// sleep's PID and waits for it.
	cmd := exec.Command("sh", "-c", "sh -c 'sleep 300 & echo $!; wait' & wait")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, pid := range Descendants(cmd.Process.Pid) {
			_ = KillPID(pid)
		}
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	sleeper, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatal(err)
	}
	below := Descendants(cmd.Process.Pid)
	if !slices.Contains(below, sleeper) || len(below) < 2 {
		t.Errorf("Descendants(%d) = %v, want the inner shell and sleep %d", cmd.Process.Pid, below, sleeper)
	}
	kids := Children(cmd.Process.Pid)
	if len(kids) != 1 || kids[0] == sleeper {
		t.Errorf("Children(%d) = %v, want only the inner shell", cmd.Process.Pid, kids)
	}
	// The shell prints the PID once it has forked; the child execs sleep
	// a moment later (until then its command line is the shell's, or empty
	// mid-exec), so wait for it, bounded.
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(Cmdline(sleeper), "sleep\x00300"); {
		if time.Now().After(deadline) {
			t.Fatalf("Cmdline(%d) = %q, want sleep 300", sleeper, Cmdline(sleeper))
		}
		time.Sleep(time.Millisecond)
	}
	if err := StopPID(sleeper); err != nil {
		t.Fatal(err)
	}
	// SIGSTOP is delivered asynchronously; the state follows within the
	// kernel's next schedule of the process.
	for i := 0; i < 1000; i++ {
		if st, _ := State(sleeper); st == 'T' {
			break
		}
		if i == 999 {
			st, ok := State(sleeper)
			t.Errorf("State of a stopped process = %q, %v; want T", st, ok)
		}
		time.Sleep(time.Millisecond) // bounded poll for a kernel state change
	}
	if RSS(os.Getpid()) <= 0 {
		t.Errorf("RSS of this test = %d", RSS(os.Getpid()))
	}
	if _, ok := State(1 << 30); ok {
		t.Error("State of a PID that cannot exist reads")
	}
}
