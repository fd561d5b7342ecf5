package otheruser

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

// try carries out one probe as the current (other) user.
func try(p Probe) Result {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	switch p.Kind {
	case "read":
		f, err := os.Open(p.Target)
		if err != nil {
			return Result{Err: err.Error()}
		}
		defer f.Close()
		n, err := io.Copy(io.Discard, io.LimitReader(f, 1<<20))
		if err != nil {
			return Result{Err: err.Error()}
		}
		return Result{Detail: fmt.Sprintf("read %d bytes", n)}
	case "dial-unix", "dial-tcp":
		network := strings.TrimPrefix(p.Kind, "dial-")
		var d net.Dialer
		c, err := d.DialContext(ctx, network, p.Target)
		if err != nil {
			return Result{Err: err.Error()}
		}
		c.Close()
		return Result{Detail: "connected"}
	case "http":
		tr := &http.Transport{}
		if p.Socket != "" {
			tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", p.Socket)
			}
		}
		defer tr.CloseIdleConnections()
		req, err := http.NewRequestWithContext(ctx, p.Method, p.Target, strings.NewReader(p.Body))
		if err != nil {
			return Result{Err: err.Error()}
		}
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			return Result{Err: err.Error()}
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		detail := resp.Status + ": " + strings.TrimSpace(string(b))
		if resp.StatusCode >= 300 {
			return Result{Err: detail}
		}
		return Result{Detail: detail}
	}
	return Result{Err: "unknown probe kind " + p.Kind}
}
