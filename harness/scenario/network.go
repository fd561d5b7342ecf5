package scenario

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/octoha/octoha/harness/checker"
	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/lb"
	"github.com/octoha/octoha/harness/nemesis"
	"github.com/octoha/octoha/harness/payload"
	"github.com/octoha/octoha/internal/proc"
)

// The network scenarios run on clusters whose links go through Toxiproxy
// (Shape.Toxiproxy), or with clients slowed to a WAN rate.

// Where links go through Toxiproxy (a real cluster's are not the
// harness's to proxy).
var toxiproxyProviders = []string{Local, Docker}

const toxiproxyNote = "the harness puts the links of the clusters it simulates through Toxiproxy; a real cluster's are not its to proxy"

// SlowClientRate is the rate of the slow-client uploads: a fast office
// link to a cloud region; a 1 GiB package takes 54 s at it.
const SlowClientRate = 20_000_000

// SlowClientLimit is the total request limit of the misconfigured load
// balancer: shorter than the slow upload at any CI size (256 MiB at
// SlowClientRate takes 13 s).
const SlowClientLimit = 8 * time.Second

// slowClientSize caps the slow upload so that it lasts tens of seconds at
// most (1 GiB: 54 s) and always longer than SlowClientLimit.
func slowClientSize(r Run) int64 {
	return max(min(r.UploadSize(), 1<<30), 2*SlowClientLimit.Milliseconds()*SlowClientRate/1000)
}

// SlowClient: a package uploaded at a WAN rate meets the load balancer's
// time limits. Through HAProxy configured for Octopus (inactivity
// timeouts only) it passes; through a load balancer with a total request
// read limit shorter than the upload it fails, and the diagnosis names the
// timeout and the setting to change. That load balancer is a real Caddy
// with `timeouts read_body` when Caddy is installed, else the embedded Go
// proxy with the same limit (Go's ReadTimeout, as Traefik's readTimeout),
// which the run then says.
func SlowClient(passes bool) Scenario {
	sc := Scenario{
		Topic:   LNetwork,
		Needs:   []cluster.Capability{cluster.CapSimulated},
		Uploads: &Uploads{Count: 1, Concurrency: 1, MaxSize: 1 << 30},
		Checks:  checks("durability", "no-leftovers", "upload-path"),
		// It chooses the load balancer; the docker provider runs HAProxy only.
		Providers:    []string{Local},
		ProviderNote: "it chooses the load balancer and its limits",
		Timeout:      3 * time.Minute,
	}
	if passes {
		sc.Title = "Slow client — HAProxy for Octopus"
		sc.Claim = "A package uploaded at a WAN rate (20 MB/s) passes HAProxy configured for Octopus: its timeouts are inactivity timers, which a steady upload never trips."
		sc.Shape = Shape{Nodes: 2, LB: string(lb.HAProxy), DB: cluster.DBSQLite, Storage: cluster.StorageLocal}
	} else {
		sc.Title = "Slow client — total request timeout"
		kind := SlowClientLB()
		sc.Shape = Shape{Nodes: 2, LB: string(kind), DB: cluster.DBSQLite, Storage: cluster.StorageLocal, LBRequestTimeout: SlowClientLimit}
		if kind == lb.CaddyTimeout {
			// Measured with Caddy 2.6.2: it cuts the body at the limit and
			// answers 200 OK with an empty body, so the upload counts as
			// acknowledged and is missing: durability fails too.
			sc.Claim = "A package uploaded at a WAN rate fails through Caddy with a total request read limit (servers timeouts read_body) shorter than the upload; Caddy cuts the body and answers 200 with an empty body, and the diagnosis names that timeout and the setting to change."
			sc.Checks = []Check{{Name: "durability", ExpectFail: true}, {Name: "no-leftovers"}, {Name: "upload-path", ExpectFail: true, Finding: checker.FindingLBEmptyAck.Name}}
		} else {
			sc.Claim = "A package uploaded at a WAN rate fails through a proxy whose total request read limit (Go's ReadTimeout, Traefik v3's readTimeout; the embedded Go proxy, as Caddy is not installed) is shorter than the upload, and the diagnosis names that timeout and the setting to change."
			sc.Checks = []Check{{Name: "durability"}, {Name: "no-leftovers"}, {Name: "upload-path", ExpectFail: true, Finding: checker.FindingLBTimeout.Name}}
		}
	}
	sc.Steps = func(ctx context.Context, r Run) error { return slowClientSteps(ctx, r, passes) }
	return sc
}

// SlowClientLB is the load balancer of the failing slow-client scenario:
// Caddy with a read_body limit when Caddy is installed, else the embedded
// Go proxy with the same total read limit.
func SlowClientLB() lb.Kind {
	if lb.Available(lb.CaddyTimeout) == nil {
		return lb.CaddyTimeout
	}
	return lb.Embedded
}

func slowClientSteps(ctx context.Context, r Run, passes bool) error {
	spec := r.Spec()
	size := slowClientSize(r)
	if !passes && spec.LB.Kind == string(lb.Embedded) {
		r.Note("caddy is not installed (%v): the EMBEDDED Go proxy stands in for a load balancer with a total request read limit", lb.Available(lb.CaddyTimeout))
	}
	r.Step("uploading %s at %s/s through %s (about %s)", payload.FormatSize(size), payload.FormatSize(SlowClientRate), spec.LB.Kind,
		(time.Duration(size/SlowClientRate) * time.Second).String())
	o := r.UploadOptions(1, 1, size)
	o.Rate, o.Retries = SlowClientRate, 0
	start := time.Now()
	sum, err := r.Upload(ctx, o)
	if err != nil {
		return err
	}
	took := time.Since(start)
	r.Figure("slow-upload-duration", took.Seconds(), "s")
	if passes {
		if err := sum.Err(); err != nil {
			return fmt.Errorf("a slow upload through %s: %w", spec.LB.Kind, err)
		}
	} else {
		if sum.OK != 0 {
			return fmt.Errorf("the upload lasted %s, longer than the %s request limit, and was stored: the limit did not bite", took.Round(time.Millisecond), spec.LB.RequestTimeout)
		}
		r.Figure("request-timeout", spec.LB.RequestTimeout.Seconds(), "s")
		r.Note("the upload failed after %s: %s", took.Round(100*time.Millisecond), sum.Packages[0].Error)
	}
	// The 408 is the misconfiguration upload-path names, not a failure
	// of the cluster's.
	rep, err := r.Check(ctx, checker.Options{ErrorWindow: checker.ErrorWindowOptions{IgnoreStatus: []int{http.StatusRequestTimeout}}})
	if err != nil {
		return err
	}
	if up, ok := rep.Result("upload-path"); ok && up.Status == checker.Fail {
		r.Note("%s", strings.Join(up.Evidence, "; "))
	}
	return nil
}

// AzureFilesShare: the share is as far away as Azure Files over SMB 3.
func AzureFilesShare() Scenario {
	return Scenario{
		Title:     "Share with Azure Files latency",
		Claim:     "With the share a few milliseconds and a bandwidth limit away (as Azure Files is), uploads still succeed; their throughput and the nodes' memory are reported.",
		Topic:     LNetwork,
		Needs:     []cluster.Capability{cluster.CapNetwork},
		Shape:     Shape{Nodes: 2, Toxiproxy: true},
		Providers: toxiproxyProviders, ProviderNote: toxiproxyNote,
		Uploads: &Uploads{Count: 2, Concurrency: 2, MaxSize: 128 << 20},
		Faults:  []FaultPlan{{Fault: azureShareLatency, Target: "every node"}, {Fault: azureShareBandwidth, Target: "every node"}},
		Checks:  checks("history", "durability", "no-leftovers", "upload-path"),
		Timeout: 3 * time.Minute,
		Steps:   azureShareSteps,
	}
}

// Azure Files (standard, SMB 3 from a VM in the same region): a few
// milliseconds each way, and a per-share throughput limit of the order
// of 60 MiB/s.
const (
	azureShareLatency   = "latency@share,latency=3ms,jitter=1ms"
	azureShareBandwidth = "bandwidth@share,rate=60MiB/s"
)

func azureShareSteps(ctx context.Context, r Run) error {
	c := r.Cluster()
	r.Step("the share is now %s and %s away from every node", azureShareLatency, azureShareBandwidth)
	var injs []*nemesis.Injection
	for _, spec := range []string{azureShareLatency, azureShareBandwidth} {
		f, err := nemesis.ByName(spec)
		if err != nil {
			return err
		}
		for _, n := range c.Nodes() {
			inj, err := r.Inject(ctx, f, n.Name)
			if err != nil {
				return err
			}
			injs = append(injs, inj)
		}
	}
	size := min(r.UploadSize(), 128<<20)
	r.Step("uploading 2 × %s through the load balancer", payload.FormatSize(size))
	stop := make(chan struct{})
	peak := make(chan int64, 1)
	go func() { peak <- watchRSS(c, stop) }()
	sum, err := r.Upload(ctx, r.UploadOptions(2, 2, size))
	close(stop)
	maxRSS := <-peak
	if err != nil {
		return err
	}
	if err := sum.Err(); err != nil {
		return fmt.Errorf("uploads to a distant share: %w", err)
	}
	r.Figure("share-latency-throughput", sum.Throughput/1e6, "MB/s")
	// The checks then read every node over a healthy share.
	for _, inj := range injs {
		if err := inj.Recover(ctx); err != nil {
			return err
		}
	}
	if maxRSS > 0 {
		r.Figure("node-rss-max", float64(maxRSS)/(1<<20), "MiB")
	} else {
		r.Note("the nodes' memory is not readable here (not local processes)")
	}
	_, err = r.Check(ctx, checker.Options{})
	return err
}

// watchRSS samples the resident memory of the cluster's node processes
// (local provider: /proc) until stop closes, and returns the largest.
func watchRSS(c cluster.Cluster, stop <-chan struct{}) int64 {
	var peak int64
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		for _, comp := range c.Components() {
			if strings.HasPrefix(comp.Part, "node ") && comp.PID > 0 {
				peak = max(peak, proc.RSS(comp.PID))
			}
		}
		select {
		case <-stop:
			return peak
		case <-t.C:
		}
	}
}

// FlakyDatabase: latency spikes and connection resets on the nodes'
// database links.
func FlakyDatabase() Scenario {
	return Scenario{
		Title:     "Flaky database link",
		Claim:     "A little database latency leaves every ping 200; a latency spike past the heartbeat's timeout, or connection resets, turn the affected nodes' pings non-200; the cluster recovers by itself and nothing acknowledged is lost.",
		Topic:     LNetwork,
		Needs:     []cluster.Capability{cluster.CapNetwork},
		Shape:     Shape{Nodes: 3, Toxiproxy: true},
		Providers: toxiproxyProviders, ProviderNote: toxiproxyNote,
		Load:    []Load{{Target: "ping", Rate: 30}},
		Uploads: &Uploads{Count: 4, Concurrency: 2, MaxSize: 32 << 20},
		Faults: []FaultPlan{{Fault: "latency@db", Target: "every node (20ms, then a 1.5s spike)"},
			{Fault: "reset@db", Target: "Node1"}},
		Checks:  checks("history", "min-ops:ping", "durability", "no-leftovers", "upload-path"),
		Timeout: 3 * time.Minute,
		Steps:   flakyDBSteps,
	}
}

func flakyDBSteps(ctx context.Context, r Run) error {
	c, spec := r.Cluster(), r.Spec()
	if err := r.Attack("ping", 30); err != nil {
		return err
	}
	if err := r.WaitOps(ctx, "ping", 15); err != nil {
		return err
	}
	o := r.UploadOptions(4, 2, min(r.UploadSize(), 32<<20))
	o.Retries, o.Backoff = 10, time.Second
	uploads := r.UploadInBackground(o)
	injectAll := func(spec string) ([]*nemesis.Injection, error) {
		f, err := nemesis.ByName(spec)
		if err != nil {
			return nil, err
		}
		var out []*nemesis.Injection
		for _, n := range c.Nodes() {
			inj, err := r.Inject(ctx, f, n.Name)
			if err != nil {
				return out, err
			}
			out = append(out, inj)
		}
		return out, nil
	}
	recoverAll := func(injs []*nemesis.Injection) error {
		var errs []error
		for _, inj := range injs {
			errs = append(errs, inj.Recover(ctx))
		}
		return errors.Join(errs...)
	}
	allServe := func(within time.Duration) error {
		for _, n := range c.Nodes() {
			if err := Eventually(ctx, n.Name+" answers 200 again", within, 50*time.Millisecond, PingIs(ctx, n.URL, http.StatusOK)); err != nil {
				return err
			}
		}
		return nil
	}
	unhealthy := spec.Node.UnhealthyAfter + 3*spec.Node.Heartbeat + 2*time.Second

	r.Step("20 ms ± 10 ms on every node's database link: pings stay 200")
	mild, err := injectAll("latency@db,latency=20ms,jitter=10ms")
	if err != nil {
		return err
	}
	for _, n := range c.Nodes() {
		if err := Consistently(ctx, n.Name+" stays healthy with 20ms to its database", spec.Node.UnhealthyAfter/2, 100*time.Millisecond, PingIs(ctx, n.URL, http.StatusOK)); err != nil {
			return err
		}
	}
	if err := recoverAll(mild); err != nil {
		return err
	}

	r.Step("a 1.5 s latency spike on every node's database link: every ping goes non-200")
	spike, err := injectAll("latency@db,latency=1500ms")
	if err != nil {
		return err
	}
	spikeStart := time.Now()
	for _, n := range c.Nodes() {
		if err := Eventually(ctx, n.Name+" unhealthy during the spike", unhealthy, 50*time.Millisecond, PingIsNot(ctx, n.URL, http.StatusOK)); err != nil {
			return err
		}
	}
	r.Figure("db-spike-to-unhealthy", time.Since(spikeStart).Seconds(), "s")
	if err := recoverAll(spike); err != nil {
		return err
	}
	back := time.Now()
	if err := allServe(30 * time.Second); err != nil {
		return err
	}
	r.Figure("db-spike-end-to-healthy", time.Since(back).Seconds(), "s")

	victim := c.Nodes()[0].Name
	r.Step("connection resets on %s's database link: its ping goes non-200, the others stay 200", victim)
	reset, err := r.Inject(ctx, nemesis.Net{Kind: nemesis.KindReset, Link: cluster.LinkDB}, victim)
	if err != nil {
		return err
	}
	if err := Eventually(ctx, victim+" unhealthy while its database connections are reset", unhealthy, 50*time.Millisecond, PingIsNot(ctx, nodeURL(c, victim), http.StatusOK)); err != nil {
		return err
	}
	for _, n := range c.Nodes()[1:] {
		if err := Consistently(ctx, n.Name+" stays healthy", time.Second, 100*time.Millisecond, PingIs(ctx, n.URL, http.StatusOK)); err != nil {
			return err
		}
	}
	if err := reset.Recover(ctx); err != nil {
		return err
	}
	if err := allServe(30 * time.Second); err != nil {
		return err
	}
	if _, err := AwaitUploads(ctx, uploads, 2*time.Minute, "uploads retried through the database trouble must succeed"); err != nil {
		return err
	}
	r.StopLoad()
	_, err = r.Check(ctx, checker.Options{MinOps: []checker.MinOpsRule{{Kind: "ping", N: 10}}})
	return err
}

// ResetMidUpload: the connection between the load balancer and a node is
// reset while it receives an upload.
func ResetMidUpload() Scenario {
	return Scenario{
		Title:     "Reset mid-upload",
		Claim:     "A connection reset between the load balancer and the node receiving an upload fails only that upload; its retry succeeds and no partial file survives.",
		Topic:     LNetwork,
		Needs:     []cluster.Capability{cluster.CapNetwork},
		Shape:     Shape{Nodes: 3, Toxiproxy: true},
		Providers: toxiproxyProviders, ProviderNote: toxiproxyNote,
		Uploads: &Uploads{Count: 3, Concurrency: 3, MaxSize: 128 << 20, Rate: 32_000_000, Within: 2 * time.Minute,
			Must: "the retry of the reset upload must succeed"},
		Faults: []FaultPlan{{Fault: "reset@lb", Target: "the node receiving an upload", Victim: VictimUploadingOnly, Hold: time.Second,
			Expect: []Expectation{victimFailedOnly, noPartialFiles}}},
		Checks:  checks("history", "durability", "no-leftovers"),
		Timeout: 3 * time.Minute,
	}
}

// SharePartition: a node reaches the database but not the share.
func SharePartition() Scenario {
	return Scenario{
		Title:     "Partition from the share",
		Claim:     "A node that reaches the database but not the share fails the uploads it receives with a 5xx, their retries succeed on the other nodes, and no package is recorded without its file.",
		Topic:     LNetwork,
		Needs:     []cluster.Capability{cluster.CapNetwork},
		Shape:     Shape{Nodes: 3, Toxiproxy: true},
		Providers: toxiproxyProviders, ProviderNote: toxiproxyNote,
		Uploads: &Uploads{Count: 6, Concurrency: 3, MaxSize: 32 << 20},
		Faults:  []FaultPlan{{Fault: "partition@share", Target: "Node2"}},
		Checks:  checks("history", "durability", "no-leftovers"),
		Timeout: 3 * time.Minute,
		Steps:   sharePartitionSteps,
	}
}

func sharePartitionSteps(ctx context.Context, r Run) error {
	c := r.Cluster()
	victim := c.Nodes()[1].Name
	r.Step("cutting %s from the share (it still reaches the database)", victim)
	inj, err := r.Inject(ctx, nemesis.NetworkPartition(cluster.LinkShare), victim)
	if err != nil {
		return err
	}
	r.Figure("ping-of-share-cut-node", float64(Ping(ctx, nodeURL(c, victim))), "status")
	o := r.UploadOptions(6, 3, min(r.UploadSize(), 32<<20))
	o.Retries, o.Backoff = 8, 300*time.Millisecond
	sum, err := r.Upload(ctx, o)
	if err != nil {
		return err
	}
	if err := sum.Err(); err != nil {
		return fmt.Errorf("uploads with %s cut from the share: %w", victim, err)
	}
	r.Step("healing %s's share link", victim)
	if err := inj.Recover(ctx); err != nil {
		return err
	}
	h, err := r.History()
	if err != nil {
		return err
	}
	out := Outcome{Victim: victim, Fault: inj.Fault(), Uploads: sum, History: h}
	for _, expect := range []Expectation{victimFailedOnly, noPartialFiles} {
		if err := expect(ctx, r, out); err != nil {
			return err
		}
	}
	_, err = r.Check(ctx, checker.Options{})
	return err
}
