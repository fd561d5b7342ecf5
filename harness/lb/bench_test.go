package lb

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// zeros is an endless reader of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// BenchmarkUpload streams a 256 MiB body through each driver to a node that
// discards it and reports MB/s (lb.md measured 1 GiB: HAProxy about 0.3×
// and nginx about 0.2× a direct Go upload on 2 vCPU). nginx-defaults is
// left out: its 1 MB limit refuses the body.
func BenchmarkUpload(b *testing.B) {
	const size = 256 << 20
	for _, kind := range []Kind{"direct", HAProxy, Nginx, Embedded} {
		b.Run(string(kind), func(b *testing.B) {
			nodes := startFakeNodes(b, 1)
			url := "http://" + nodes[0].addr
			if kind != "direct" {
				if err := Available(kind); err != nil {
					b.Skipf("%s not installed, nothing to measure: %v", kind, err)
				}
				url = startLB(b, testOptions(b, kind, nodes)).URL()
			}
			hc := &http.Client{Transport: &http.Transport{Proxy: nil}}
			b.SetBytes(size)
			b.ResetTimer()
			for range b.N {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/api/Spaces-1/packages/raw", io.LimitReader(zeros{}, size))
				if err != nil {
					b.Fatal(err)
				}
				req.ContentLength = size
				resp, err := hc.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				cancel()
				if got := resp.Header.Get("X-Body-Bytes"); resp.StatusCode != http.StatusOK || got != strconv.Itoa(size) {
					b.Fatalf("upload through %s: status %d, node got %s bytes", kind, resp.StatusCode, got)
				}
			}
		})
	}
}
