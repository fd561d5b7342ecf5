package lb

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// slowBody sends n bytes in 64 KiB chunks every 20 ms (about 3 MB/s).
type slowBody struct{ left int }

func (b *slowBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, io.EOF
	}
	time.Sleep(20 * time.Millisecond) // the pace of the slow client, not a wait for readiness
	n := min(len(p), 64<<10, b.left)
	b.left -= n
	return n, nil
}

// A request body that takes longer than RequestTimeout to arrive is
// answered 408 (and the client reads the answer, though it is still
// sending); one that arrives in time passes.
func TestEmbeddedRequestTimeout(t *testing.T) {
	nodes := []*fakeNode{startFakeNode(t, "Node1", "127.0.148.11")}
	o := testOptions(t, Embedded, nodes)
	o.Listen = "127.0.148.10:0"
	o.RequestTimeout = time.Second
	b := startLB(t, o)
	post := func(size int) (*http.Response, string, time.Duration) {
		start := time.Now()
		req, _ := http.NewRequest(http.MethodPost, b.URL()+"/api/Spaces-1/packages/raw", &slowBody{left: size})
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("POST %d bytes: %v", size, err)
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(msg), time.Since(start)
	}
	resp, msg, _ := post(64 << 10 * 10) // about 0.2 s
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("a request in time: %s %s", resp.Status, msg)
	}
	resp, msg, took := post(64 << 10 * 200) // about 4 s
	if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(msg, "within 1s") {
		t.Fatalf("a request slower than the limit: %s %q", resp.Status, msg)
	}
	if took > 3*time.Second {
		t.Fatalf("the 408 came after %s; the limit is 1s", took)
	}
}
