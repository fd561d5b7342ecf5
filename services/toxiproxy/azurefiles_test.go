package toxiproxy

import (
	"testing"
	"time"
)

// NetBIOS frames are counted across chunk boundaries, headers split too.
func TestSMBFramingCountsMessages(t *testing.T) {
	frame := func(n int) []byte {
		b := []byte{0, byte(n >> 16), byte(n >> 8), byte(n)}
		return append(b, make([]byte, n)...)
	}
	all := append(append(frame(70000), frame(3)...), frame(0)...)
	for _, split := range []int{1, 2, 3, 5, 4096, len(all)} {
		var f smbFraming
		n := 0
		for i := 0; i < len(all); i += split {
			n += f.messages(all[i:min(i+split, len(all))])
		}
		if n != 3 {
			t.Errorf("chunks of %d: %d messages, want 3", split, n)
		}
	}
}

// The IOPS cap refuses what is over one second of budget and refills; the
// bandwidth reservation spaces bytes at the rate.
func TestAzureFilesPool(t *testing.T) {
	p := &pool{last: time.Now(), tokens: -1}
	ok := 0
	for i := 0; i < 15; i++ {
		if p.take(10, 1) {
			ok++
		}
	}
	if ok != 10 || p.throttled != 5 {
		t.Fatalf("10 IOPS: %d of 15 passed (%d throttled), want 10 and 5", ok, p.throttled)
	}
	p.last = p.last.Add(-500 * time.Millisecond) // half a second later: 5 more
	if !p.take(10, 5) || p.take(10, 1) {
		t.Fatalf("after 0.5 s at 10 IOPS, want 5 requests and no more")
	}
	q := &pool{}
	if d := q.delay(1000, 500); d != 0 {
		t.Fatalf("first reservation waits %v", d)
	}
	if d := q.delay(1000, 500); d < 400*time.Millisecond || d > 500*time.Millisecond {
		t.Fatalf("second 500 B at 1000 B/s waits %v, want about 0.5 s", d)
	}
}
