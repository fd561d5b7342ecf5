//go:build linux

package proc

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestStartStopKill(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := Start(Spec{Name: "sleep", Path: "/bin/sleep", Args: []string{"30"}})
	if err != nil {
		t.Fatal(err)
	}
	if !Alive(p.PID()) {
		t.Fatal("child not alive after start")
	}
	if err := p.Pause(); err != nil {
		t.Fatal(err)
	}
	if err := p.Stop(ctx, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	if Alive(p.PID()) {
		t.Fatal("child alive after stop")
	}
}

func TestKillGroup(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// A shell with a grandchild: killing the group must take both.
	p, err := Start(Spec{Name: "sh", Path: "/bin/sh", Args: []string{"-c", "sleep 30 & wait"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	if Alive(p.PID()) {
		t.Fatal("shell alive after kill")
	}
}

func TestTailKeepsTheEnd(t *testing.T) {
	var fwd strings.Builder
	tl := NewTail(8, &fwd)
	tl.Write([]byte("hello "))
	tl.Write([]byte("world\n"))
	if tl.String() != "o world" || fwd.String() != "hello world\n" {
		t.Fatalf("tail %q, forwarded %q", tl.String(), fwd.String())
	}
	if NewTail(4, nil).Indented() != "  (no output)" {
		t.Fatal("empty tail")
	}
	port, err := FreePort("127.0.0.1")
	if err != nil || port == 0 {
		t.Fatalf("free port %d %v", port, err)
	}
}
