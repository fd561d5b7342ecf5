package lb

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/octoha/octoha/harness/history"
)

// TestWatch records the initial states, the 418 ejection, and an outage of
// the balancer itself, each once.
func TestWatch(t *testing.T) {
	nodes := startFakeNodes(t, 2)
	b := startLB(t, testOptions(t, Embedded, nodes))

	var mu sync.Mutex
	var got []history.LBState
	seen := func(server, state string) bool {
		mu.Lock()
		defer mu.Unlock()
		for _, s := range got {
			if s.Server == server && s.State == state {
				return true
			}
		}
		return false
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Watch(ctx, b, 20*time.Millisecond, func(s history.LBState) {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, s)
		})
	}()
	waitFor := func(what string, bound time.Duration, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(bound)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("watch never recorded %s; got %+v", what, got)
			}
			time.Sleep(10 * time.Millisecond) // poll interval of a real condition with a deadline
		}
	}
	waitFor("both servers UP", slack, func() bool { return seen("Node1", "UP") && seen("Node2", "UP") })
	nodes[1].ping.Store(http.StatusTeapot)
	waitFor("Node2 DOWN", ejectBound(), func() bool { return seen("Node2", "DOWN") })
	stop, cancelStop := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancelStop()
	if err := b.Stop(stop); err != nil {
		t.Fatal(err)
	}
	waitFor("the outage", slack, func() bool { return seen(WatchAll, "ERROR") })
	time.Sleep(100 * time.Millisecond) // let several polls fail: the outage must still be one entry
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Watch returned %v", err)
	}
	// Entries are changes: per server, no two in a row with the same state
	// and check; the outage is one entry however many polls failed.
	count := map[string]int{}
	prev := map[string]history.LBState{}
	for _, s := range got {
		count[s.Server+" "+s.State]++
		check, _, _ := strings.Cut(s.Detail, ";")
		if p, ok := prev[s.Server]; ok {
			pcheck, _, _ := strings.Cut(p.Detail, ";")
			if p.State == s.State && pcheck == check {
				t.Errorf("unchanged %s %s recorded twice: %+v", s.Server, s.State, got)
			}
		}
		prev[s.Server] = s
	}
	if count[WatchAll+" ERROR"] != 1 {
		t.Errorf("outage recorded %d times, want once: %+v", count[WatchAll+" ERROR"], got)
	}
	if count["Node1 DOWN"] != 0 {
		t.Errorf("Node1 recorded DOWN: %+v", got)
	}
}
