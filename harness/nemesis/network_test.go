package nemesis

import (
	"bytes"
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/history"
	"github.com/octoha/octoha/internal/testbin"
	"github.com/octoha/octoha/services/toxiproxy"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testbin.Cleanup()
	os.Exit(code)
}

func TestParseNet(t *testing.T) {
	for in, want := range map[string]Net{
		"latency@db,latency=300ms,jitter=100ms": {Kind: KindLatency, Link: cluster.LinkDB, Latency: 300 * time.Millisecond, Jitter: 100 * time.Millisecond},
		"latency@share":                         {Kind: KindLatency, Link: cluster.LinkShare, Latency: 200 * time.Millisecond},
		"bandwidth@share,rate=10MB/s":           {Kind: KindBandwidth, Link: cluster.LinkShare, Rate: 10_000_000},
		"reset@lb,after=500ms":                  {Kind: KindReset, Link: cluster.LinkLB, After: 500 * time.Millisecond},
		"blackhole@client":                      {Kind: KindBlackhole, Link: cluster.LinkClient},
		"slow-close@lb,after=2s":                {Kind: KindSlowClose, Link: cluster.LinkLB, After: 2 * time.Second},
		"partition":                             {Kind: KindPartition, Link: cluster.LinkAll},
		"partition@share":                       {Kind: KindPartition, Link: cluster.LinkShare},
	} {
		got, err := ParseNet(in)
		if err != nil || got != want {
			t.Errorf("ParseNet(%q) = %+v, %v; want %+v", in, got, err, want)
			continue
		}
		// The spec written into histories and schedules reads back the same.
		again, err := ParseNet(got.String())
		if err != nil || again != got {
			t.Errorf("ParseNet(%q) = %+v, %v; want %+v", got.String(), again, err, got)
		}
	}
	for _, bad := range []string{"latency", "latency@moon", "latency@all", "bandwidth@db,rate=0", "reset@lb,after=-1s", "latency@db,speed=3", "latency@db,latency", "jam@db"} {
		if _, err := ParseNet(bad); err == nil {
			t.Errorf("ParseNet(%q) accepted", bad)
		}
	}
	f, err := ByName("latency@db,latency=1s")
	if err != nil || f.Name() != KindLatency || !f.Targeted() {
		t.Fatalf("ByName: %v %v", f, err)
	}
	if f, _ := ByName("blackhole@client"); f.Targeted() {
		t.Fatal("the client link is not a node's")
	}
	s, err := ParseSchedule("1s latency@db,latency=300ms Node1 for 2s; 4s partition@share Node2 for 1s; 6s bandwidth@client,rate=1MB/s for 1s")
	if err != nil {
		t.Fatal(err)
	}
	if got := s.String(); got != "1s latency@db,latency=300ms Node1 for 2s; 4s partition@share Node2 for 1s; 6s bandwidth@client,rate=1000000 for 1s" {
		t.Fatalf("schedule = %s", got)
	}
}

// netCluster is fakeCluster with its links through a real Toxiproxy.
type netCluster struct {
	fakeCluster
	tp *toxiproxy.Client
}

func (c *netCluster) Can(cp cluster.Capability) error {
	if cp == cluster.CapNetwork || cp == cluster.CapPartition {
		return nil
	}
	return c.fakeCluster.Can(cp)
}
func (c *netCluster) Toxiproxy() *toxiproxy.Client { return c.tp }

type undoStack struct{ whats []string }

func (u *undoStack) Push(what string, _ func(context.Context) error) { u.whats = append(u.whats, what) }

// TestNetFaultsOnToxiproxy: each network fault adds its toxics (or cuts its
// links) on the target's links only, is recorded with its link, has its
// recovery registered first, and recovers to no toxic and every link on.
func TestNetFaultsOnToxiproxy(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs the octoha binary")
	}
	bin, err := testbin.Octoha()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tp, err := toxiproxy.Start(ctx, toxiproxy.Options{Binary: bin, Allow: []string{"127.0.145.0/24"}, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tp.Close(context.Background()) })
	// Links to nowhere: toxics and cuts are configuration, no traffic needed.
	port := 9100
	for _, l := range []string{"client-lb", "lb-Node1", "Node1-db", "Node1-share", "lb-Node2", "Node2-db", "Node2-share"} {
		port++
		if err := tp.AddLink(ctx, l, "127.0.145.20:"+itoa(port), "127.0.145.21:9"); err != nil {
			t.Fatal(err)
		}
	}
	nc := &netCluster{tp: tp.Client}
	var buf bytes.Buffer
	undo := &undoStack{}
	env := Env{Cluster: nc, Recorder: history.NewRecorder(&buf), Undo: undo}
	state := func() map[string]string {
		links, err := tp.Links(ctx)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, l := range links {
			var ts []string
			for _, x := range l.Toxics {
				ts = append(ts, x.Type+"/"+x.Stream)
			}
			v := strings.Join(ts, "+")
			if !l.Enabled {
				v = "cut"
			}
			if v != "" {
				out[l.Name] = v
			}
		}
		return out
	}
	for _, tc := range []struct {
		spec, target string
		want         map[string]string
	}{
		{"latency@db,latency=300ms,jitter=50ms", "Node1", map[string]string{"Node1-db": "latency/upstream+latency/downstream"}},
		{"bandwidth@share,rate=1MB/s", "Node2", map[string]string{"Node2-share": "bandwidth/upstream+bandwidth/downstream"}},
		{"blackhole@lb", "Node1", map[string]string{"lb-Node1": "timeout/upstream+timeout/downstream"}},
		{"reset@client,after=10ms", "", map[string]string{"client-lb": "reset_peer/upstream"}},
		{"slow-close@lb,after=1s", "Node2", map[string]string{"lb-Node2": "slow_close/downstream"}},
		{"partition@share", "Node1", map[string]string{"Node1-share": "cut"}},
		{"partition", "Node2", map[string]string{"lb-Node2": "cut", "Node2-db": "cut", "Node2-share": "cut"}},
	} {
		f, err := ByName(tc.spec)
		if err != nil {
			t.Fatal(err)
		}
		inj, err := Inject(ctx, env, f, tc.target)
		if err != nil {
			t.Fatalf("%s: %v", tc.spec, err)
		}
		if got := state(); !equalMaps(got, tc.want) {
			t.Errorf("%s on %q: links %v, want %v", tc.spec, tc.target, got, tc.want)
		}
		if err := inj.Recover(ctx); err != nil {
			t.Fatalf("%s: recover: %v", tc.spec, err)
		}
		if got := state(); len(got) != 0 {
			t.Errorf("%s: after recovery: %v", tc.spec, got)
		}
		rec := inj.Fault()
		if rec.Kind != f.Name() || rec.Target != tc.target || rec.End.IsZero() || !strings.HasPrefix(rec.Detail, strings.SplitN(tc.spec, ",", 2)[0]) {
			t.Errorf("%s: recorded %+v", tc.spec, rec)
		}
	}
	if len(undo.whats) != 7 {
		t.Errorf("recoveries registered: %v", undo.whats)
	}
	// A link that does not exist is an error, and nothing is left injected.
	if _, err := Inject(ctx, env, Net{Kind: KindLatency, Link: cluster.LinkDB, Latency: time.Second}, "Node3"); err == nil {
		t.Error("a fault on Node3, which has no links, was injected")
	}
	// Ctrl-C during the hold: the fault is recovered at once.
	cctx, cancel := context.WithCancel(ctx)
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	rec, err := Hold(cctx, env, Net{Kind: KindLatency, Link: cluster.LinkDB, Latency: time.Second}, "Node1", time.Minute)
	if err != nil || time.Since(start) > 10*time.Second || rec.End.IsZero() {
		t.Fatalf("hold cancelled: %+v %v after %v", rec, err, time.Since(start))
	}
	if got := state(); len(got) != 0 {
		t.Errorf("after a cancelled hold: %v", got)
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func itoa(n int) string { return strconv.Itoa(n) }
