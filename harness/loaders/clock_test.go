package loaders

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestOffsetOfKeepsTheShortestRoundTrip(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	skew := 3 * time.Second // the coordinator is 3s ahead
	samples := []clockSample{
		// A slow sample whose server stamp is late in its window: it
		// would say +3.04s.
		{sent: base, server: base.Add(skew + 90*time.Millisecond), received: base.Add(100 * time.Millisecond)},
		// The fastest: 2ms, server stamp in the middle.
		{sent: base.Add(time.Second), server: base.Add(time.Second + skew + time.Millisecond), received: base.Add(time.Second + 2*time.Millisecond)},
		// A clock step backwards: unusable.
		{sent: base.Add(2 * time.Second), server: base, received: base.Add(time.Second)},
	}
	o, err := offsetOf(samples)
	if err != nil {
		t.Fatal(err)
	}
	if o.Offset != skew || o.RTT != 2*time.Millisecond || o.Uncertainty != time.Millisecond || o.Samples != 3 {
		t.Fatalf("offset %+v, want +3s ±1ms from the 2ms sample", o)
	}
	if !strings.Contains(o.String(), "+3000.000ms ±1.000ms") {
		t.Fatalf("String = %q", o.String())
	}
	if _, err := offsetOf(samples[2:]); err == nil {
		t.Fatal("no usable sample accepted")
	}
}

func TestMeasureOffsetAgainstASkewedCoordinator(t *testing.T) {
	skew := -90 * time.Minute
	c := newCoordinator("r", []byte("tok"), 1, Job{}, time.Second)
	c.now = func() time.Time { return time.Now().Add(skew) }
	srv := httptest.NewServer(c.handler())
	defer srv.Close()
	w, err := newWorker(WorkerOptions{Coordinator: srv.URL, Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	o, err := measureOffset(context.Background(), w.now)
	if err != nil {
		t.Fatal(err)
	}
	if d := o.Offset - skew; d < -o.Uncertainty-time.Millisecond || d > o.Uncertainty+time.Millisecond {
		t.Fatalf("offset %s, want %s within ±%s", o.Offset, skew, o.Uncertainty)
	}
	if o.Samples != clockSamples {
		t.Fatalf("%d samples", o.Samples)
	}
}

func TestTokenGuardsEveryEndpoint(t *testing.T) {
	c := newCoordinator("r", []byte("the-token"), 2, Job{Kind: KindAttack}, time.Second)
	srv := httptest.NewServer(c.handler())
	defer srv.Close()
	for _, p := range []string{pathTime, pathJoin, pathStart, pathReport} {
		for _, hdr := range []string{"", "Bearer wrong", "the-token", "Bearer the-token-and-more"} {
			method := http.MethodPost
			if p == pathTime {
				method = http.MethodGet
			}
			req, _ := http.NewRequest(method, srv.URL+p, strings.NewReader(`{"index":0}`))
			if hdr != "" {
				req.Header.Set("Authorization", hdr)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("%s with %q: %d, want 401", p, hdr, resp.StatusCode)
			}
		}
	}
	c.mu.Lock()
	joined := c.workers[0].joined
	c.mu.Unlock()
	if joined {
		t.Fatal("a request without the token joined")
	}

	w, _ := newWorker(WorkerOptions{Coordinator: srv.URL, Token: "the-token"})
	var a Assignment
	ctx := context.Background()
	if err := w.call(ctx, pathJoin, joinRequest{Index: -1}, &a); err != nil || a.Segment.Index != 0 {
		t.Fatalf("join with the token: %v, %+v", err, a)
	}
	var he httpError
	if err := w.call(ctx, pathJoin, joinRequest{Index: 0}, &a); !errors.As(err, &he) || he.status != http.StatusConflict {
		t.Fatalf("second join as loader 0: %v", err)
	}
	if err := w.call(ctx, pathJoin, joinRequest{Index: 2}, &a); !errors.As(err, &he) || he.status != http.StatusConflict {
		t.Fatalf("join as loader 2 of 2: %v", err)
	}
	if err := w.call(ctx, pathJoin, joinRequest{Index: -1}, &a); err != nil || a.Segment.Index != 1 {
		t.Fatalf("join without an index: %v, %+v", err, a)
	}
	if err := w.call(ctx, pathJoin, joinRequest{Index: -1}, &a); err == nil {
		t.Fatal("a third loader joined a run of two")
	}
	var rr reportReply
	if err := w.call(ctx, pathReport, report{Index: 0, Seq: 2}, &rr); !errors.As(err, &he) || he.status != http.StatusConflict {
		t.Fatalf("report 2 before report 1: %v", err)
	}
}
