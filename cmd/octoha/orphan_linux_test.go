//go:build linux

package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/octoha/octoha/harness/lb"
	"github.com/octoha/octoha/internal/syncbuf"
)

// groupMembers lists the live processes whose process group is pgid.
func groupMembers(pgid int) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(b, ')')
		f := strings.Fields(string(b[i+1:]))
		if len(f) > 2 && f[0] != "Z" && f[2] == strconv.Itoa(pgid) {
			out = append(out, pid)
		}
	}
	return out
}

// When the owner of an nginx cluster is SIGKILLed, the nginx master dies
// with it but its workers do not; `octoha down` must reap them.
func TestOwnerKilledLeavesNoNginxWorker(t *testing.T) {
	bin := needUpBinary(t)
	if err := lb.Available(lb.Nginx); err != nil {
		t.Skipf("nginx is not installed (make deps installs it): %v", err)
	}
	dir := filepath.Join(t.TempDir(), "run")
	cleanupRun(t, dir)
	var out syncbuf.Buffer
	cmd := childCmd(context.Background(), bin, "up", "--network", "127.0.26", "--lb", "nginx", "--nodes", "1", "--run-dir", dir)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	st := waitReady(t, dir, cmd.Process.Pid, exited, out.String)
	master := 0
	for _, c := range st.Components {
		if c.Part == "load balancer" {
			master = c.PID
		}
	}
	if master == 0 || len(groupMembers(master)) < 2 {
		t.Fatalf("nginx master %d with group %v: want a master and its workers", master, groupMembers(master))
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-exited
	if code, stdout, stderr := runOctoha(t, bin, 30*time.Second, "down", "--run-dir", dir); code != 0 {
		t.Fatalf("down: exit %d\n%s\n%s", code, stdout, stderr)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(groupMembers(master)) > 0 {
		if time.Now().After(deadline) {
			var ps []byte
			for _, pid := range groupMembers(master) {
				b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
				ps = append(ps, b...)
			}
			t.Fatalf("nginx processes left behind after down (master %d, state pids %v, starts %v): %v\n%s", master, st.PIDs, st.Starts, groupMembers(master), ps)
		}
		time.Sleep(20 * time.Millisecond) // the kernel's reaping, after SIGKILL
	}
}
