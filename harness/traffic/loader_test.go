package traffic

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// An attack that holds its rate is on schedule; one whose single worker
// waits 50 ms per request cannot send 100/s and says it fell behind; an
// unlimited attack has no schedule. Each reports its CPU share.
func TestAttackLoaderStats(t *testing.T) {
	fast := newPingNode(t, "Fast")
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(50 * time.Millisecond) // the server's own slowness is what is tested
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(slow.Close)
	attack := func(url string, rate vegeta.Rate, workers uint64) LoaderStats {
		var st LoaderStats
		_, err := Attack(context.Background(), AttackOptions{URL: url, Target: TargetPing, Rate: rate,
			Duration: 500 * time.Millisecond, Workers: workers, MaxWorkers: workers, Loader: &st})
		if err != nil {
			t.Fatal(err)
		}
		if st.Wall < 400*time.Millisecond || st.CPUs < 1 || st.CPUShare < 0 || st.CPUShare > 1.5 {
			t.Fatalf("implausible loader stats: %+v", st)
		}
		return st
	}
	hundred := vegeta.Rate{Freq: 100, Per: time.Second}
	if st := attack(fast.srv.URL, hundred, 16); !st.Scheduled || st.Behind || st.Asked != 100 || !strings.Contains(st.String(), "on schedule") {
		t.Errorf("100/s against a quick node: %+v (%s)", st, st)
	}
	if st := attack(slow.URL, hundred, 1); !st.Scheduled || !st.Behind || st.Achieved > 30 || !strings.Contains(st.String(), "BEHIND") {
		t.Errorf("100/s with one worker against a 50 ms node: %+v (%s)", st, st)
	}
	if st := attack(fast.srv.URL, vegeta.Rate{}, 2); st.Scheduled || st.Behind {
		t.Errorf("unlimited rate: %+v", st)
	}
}

// A rate-limited upload has a schedule, and its rate limit holds (whether
// it fell behind depends on the machine: not asserted); an unlimited one
// has none.
func TestUploadLoaderStats(t *testing.T) {
	n := newTestNode(t, "Node1")
	sum, err := Upload(context.Background(), UploadOptions{URL: n.URL(), APIKey: testKey, Size: 1 << 20, Count: 1, Seed: 5, Rate: 4 << 20})
	if err != nil || sum.OK != 1 {
		t.Fatalf("upload: %v %+v", err, sum)
	}
	// The limiter's first burst (64 KiB) is free, so 1 MiB goes at up
	// to 16/15 of the rate; unlimited, it would go at hundreds of MB/s.
	if st := sum.Loader; !st.Scheduled || st.Asked != 4<<20 || st.Achieved > 1.5*st.Asked || st.CPUs < 1 {
		t.Errorf("rate-limited upload: %+v", st)
	}
	sum, err = Upload(context.Background(), UploadOptions{URL: n.URL(), APIKey: testKey, Size: 64 << 10, Count: 1, Seed: 6})
	if err != nil || sum.OK != 1 {
		t.Fatalf("upload: %v %+v", err, sum)
	}
	if st := sum.Loader; st.Scheduled || st.Behind || st.Wall <= 0 {
		t.Errorf("unlimited upload: %+v", st)
	}
}
