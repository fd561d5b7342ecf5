package relay

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"
)

// echo serves lines back prefixed with its name.
func echo(t *testing.T, name string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				s := bufio.NewScanner(c)
				for s.Scan() {
					if _, err := c.Write([]byte(name + ":" + s.Text() + "\n")); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func roundTrip(c net.Conn, msg string) (string, error) {
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(msg + "\n")); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}

func TestRelayMovesResetsAndRefuses(t *testing.T) {
	a, b := echo(t, "a"), echo(t, "b")
	r, err := Listen("127.0.0.1:0", a, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	c1, err := net.Dial("tcp", r.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	if got, err := roundTrip(c1, "x"); err != nil || got != "a:x" {
		t.Fatalf("through relay to a: %q, %v", got, err)
	}

	// Moving the target leaves the established connection on a.
	r.SetTarget(b)
	if got, err := roundTrip(c1, "y"); err != nil || got != "a:y" {
		t.Fatalf("established connection after move: %q, %v", got, err)
	}
	c2, err := net.Dial("tcp", r.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if got, err := roundTrip(c2, "z"); err != nil || got != "b:z" {
		t.Fatalf("new connection after move: %q, %v", got, err)
	}

	// Refuse resets both and refuses new ones until Restore.
	if n := r.Refuse(0); n != 2 {
		t.Fatalf("Refuse reset %d connections, want 2", n)
	}
	if _, err := roundTrip(c1, "after"); err == nil {
		t.Fatal("a reset connection still answered")
	}
	c3, err := net.Dial("tcp", r.Addr())
	if err == nil {
		_, err = roundTrip(c3, "refused")
		c3.Close()
	}
	if err == nil {
		t.Fatal("a new connection was served while refusing")
	}
	r.Restore()
	c4, err := net.Dial("tcp", r.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c4.Close()
	if got, err := roundTrip(c4, "back"); err != nil || got != "b:back" {
		t.Fatalf("after Restore: %q, %v", got, err)
	}
}

func TestRefuseForDurationEndsByItself(t *testing.T) {
	r, err := Listen("127.0.0.1:0", echo(t, "a"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	r.Refuse(200 * time.Millisecond)
	if !r.Refusing() {
		t.Fatal("not refusing right after Refuse")
	}
	deadline := time.Now().Add(5 * time.Second)
	for r.Refusing() {
		if time.Now().After(deadline) {
			t.Fatal("still refusing 5s after a 200ms refusal")
		}
		time.Sleep(10 * time.Millisecond)
	}
	c, err := net.Dial("tcp", r.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got, err := roundTrip(c, "x"); err != nil || got != "a:x" {
		t.Fatalf("after the refusal ended: %q, %v", got, err)
	}
}
