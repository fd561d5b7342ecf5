package toxiproxy_test

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/octoha/octoha/services/toxiproxy"
)

// The azure_files toxic in a real `octoha toxiproxy`: frames within the
// IOPS budget pass, the frame over it ends the connection (the request
// fails), and a new connection works once the budget refills.
func TestAzureFilesToxicThrottles(t *testing.T) {
	s := startServer(t)
	echoServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.AddLink(ctx, "share", linkAddr, echoAddr); err != nil {
		t.Fatal(err)
	}
	tx := toxiproxy.AzureFiles("throttle", "test-share", 5, 0)
	if tx.Type != toxiproxy.AzureFilesType || tx.Attributes["iops"] != 5 || tx.Attributes["pool"] != "test-share" {
		t.Fatalf("toxic %+v", tx)
	}
	if err := s.AddToxic(ctx, "share", tx); err != nil {
		t.Fatal(err)
	}
	frame := []byte{0, 0, 0, 4, 'p', 'i', 'n', 'g'} // one NetBIOS frame: one request
	send := func(c net.Conn) error {
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Write(frame); err != nil {
			return err
		}
		_, err := io.ReadFull(c, make([]byte, len(frame)))
		return err
	}
	c, err := net.Dial("tcp", linkAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	passed := 0
	var last error
	for i := 0; i < 10; i++ {
		if last = send(c); last != nil {
			break
		}
		passed++
	}
	if passed < 4 || passed > 6 || last == nil {
		t.Fatalf("%d requests passed at 5 IOPS before %v; want about 5, then a failure", passed, last)
	}
	var ne net.Error
	if errors.As(last, &ne) && ne.Timeout() {
		t.Fatalf("the request over the cap stalled (%v); Azure fails it", last)
	}
	time.Sleep(time.Second) // let the budget refill: the rate under test is per second
	c2, err := net.Dial("tcp", linkAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if err := send(c2); err != nil {
		t.Fatalf("a request after the budget refilled: %v", err)
	}
}
