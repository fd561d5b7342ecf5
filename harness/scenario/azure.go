package scenario

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/octoha/octoha/harness/checker"
	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/history"
	"github.com/octoha/octoha/harness/lb"
	"github.com/octoha/octoha/harness/nemesis"
	"github.com/octoha/octoha/harness/payload"
	"github.com/octoha/octoha/harness/traffic"
	"github.com/octoha/octoha/octopusapi"
)

// The seed's Azure components, simulated (issue 20; docs/azure.md). Azure's
// timings are scaled down where waiting them out would make CI slow; each
// scenario says which figure is scaled and the real default.

// azureNote is why the Azure scenarios run on the local provider only.
const azureNote = "the Azure kinds' emulated parts run in octoha's process in front of HAProxy; the docker provider runs plain HAProxy"

// azureShape is the small cluster the Azure LB scenarios use.
func azureShape(kind lb.Kind, a cluster.AzureLBSpec) Shape {
	a.Scaled = true
	return Shape{Nodes: 2, LB: string(kind), DB: cluster.DBSQLite, Storage: cluster.StorageLocal, Azure: a}
}

func azureScenario(title, claim string, shape Shape, steps func(context.Context, Run) error) Scenario {
	return Scenario{Title: title, Claim: claim, Topic: LAzure, Needs: []cluster.Capability{cluster.CapSimulated}, Shape: shape,
		Providers: []string{Local}, ProviderNote: azureNote, Timeout: 3 * time.Minute,
		Steps: func(ctx context.Context, r Run) error {
			if err := lb.Available(lb.Kind(shape.LB)); shape.LB != "" && err != nil {
				return Skip("%s needs HAProxy: %v", shape.LB, err)
			}
			if want := shape.LB; want != "" && r.Spec().LB.Kind != want {
				return Skip("the cluster came up with the %s load balancer instead of %s", r.Spec().LB.Kind, want)
			}
			return steps(ctx, r)
		}}
}

// probeBound is Azure's "interval × threshold" for the cluster's LB.
func probeBound(spec cluster.Spec) time.Duration {
	return spec.LB.Azure.Options().WithDefaults(lb.Kind(spec.LB.Kind)).ProbeBound()
}

// AzureLBDrain: a node drained behind Azure Load Balancer.
func AzureLBDrain() Scenario {
	sc := azureScenario("Azure LB — drained node",
		"Behind azure-lb (probe scaled to 500ms × 2), a drained node (ping 418) is probed out within interval × threshold, its in-flight upload finishes (Standard SKU: established flows continue), and new connections go to the other node.",
		azureShape(lb.AzureLB, cluster.AzureLBSpec{ProbeInterval: 500 * time.Millisecond, ProbeThreshold: 2}), azureLBDrainSteps)
	sc.Uploads = &Uploads{Count: 1, Concurrency: 1, MaxSize: 32 << 20}
	sc.Faults = []FaultPlan{{Fault: nemesis.KindDrain, Target: "the node receiving an upload"}}
	sc.Checks = checks("durability", "no-leftovers", "upload-path")
	return sc
}

// slowUpload starts one upload paced to last about d.
func slowUpload(r Run, size int64, d time.Duration) <-chan UploadResult {
	o := r.UploadOptions(1, 1, size)
	o.Retries = 0
	o.Rate = max(size/int64(d/time.Second), 1)
	return r.UploadInBackground(o)
}

// measureEjection injects fault on node and returns how long the load
// balancer took to report it out, counted from the moment the node's own
// ping first answered 418 (a drain reaches the ping at the node's next
// heartbeat, which is not the load balancer's time), and the whole time
// from the injection.
func measureEjection(ctx context.Context, r Run, fault nemesis.Fault, node string, within time.Duration) (probe, total time.Duration, err error) {
	inj, err := r.Inject(ctx, fault, node)
	if err != nil {
		return 0, 0, err
	}
	client := &http.Client{Timeout: 2 * time.Second}
	if err := Eventually(ctx, node+" answers its ping with 418", within, 10*time.Millisecond, func() error {
		resp, err := client.Get(nodeURL(r.Cluster(), node) + octopusapi.PingPath)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusTeapot {
			return fmt.Errorf("ping %d", resp.StatusCode)
		}
		return nil
	}); err != nil {
		return 0, 0, err
	}
	flipped := time.Now()
	if err := r.WaitLB(ctx, node, "OUT", within); err != nil {
		return 0, 0, fmt.Errorf("%s not taken out within %s: %w", node, within, err)
	}
	return time.Since(flipped), time.Since(inj.Start()), nil
}

// ejectFigures reports an ejection against the probe bound.
// A probe-out later than the bound plus a second of measuring slack (state
// polled every 20 ms on a loaded machine) is an error.
func ejectFigures(r Run, node string, probe, total, bound time.Duration) error {
	r.Figure("eject", probe.Seconds(), "s")
	r.Figure("eject-from-drain", total.Seconds(), "s")
	r.Figure("probe-bound", bound.Seconds(), "s")
	r.Note("%s out %s after its ping first answered 418 (%s after the drain request); bound interval × threshold = %s",
		node, probe.Round(10*time.Millisecond), total.Round(10*time.Millisecond), bound)
	if probe > bound+time.Second {
		return fmt.Errorf("%s was taken out %s after its ping failed, beyond the probe bound %s", node, probe.Round(10*time.Millisecond), bound)
	}
	return nil
}

// freshConnections pings n times, each on a new connection, and counts
// the nodes that answered.
func freshConnections(ctx context.Context, base string, n int) (map[string]int, error) {
	return pingNodes(ctx, base, n, false)
}

func azureLBDrainSteps(ctx context.Context, r Run) error {
	spec := r.Spec()
	bound := probeBound(spec)
	size := min(r.UploadSize(), 32<<20)
	r.Step("one %s upload paced to last about 6s", payload.FormatSize(size))
	ch := slowUpload(r, size, 6*time.Second)
	node, err := r.NodeWithActiveUpload(ctx, 10*time.Second)
	if err != nil {
		return err
	}
	if node == "" {
		node = cluster.NodeName(1)
	}
	r.Step("draining %s (its ping answers 418) while it receives the upload; Azure's probe counts only 200 as healthy", node)
	took, total, err := measureEjection(ctx, r, nemesis.Drain, node, bound+2*time.Second)
	if err != nil {
		return err
	}
	if err := ejectFigures(r, node, took, total, bound); err != nil {
		return err
	}
	counts, err := freshConnections(ctx, r.Cluster().URL(), 20)
	if err != nil {
		return err
	}
	if counts[node] > 0 {
		return fmt.Errorf("new connections still reach the drained %s after it was probed out: %v", node, counts)
	}
	r.Note("20 new connections after the probe-down: %v", counts)
	sum, err := AwaitUploads(ctx, ch, time.Minute, "the upload in flight on the drained node must finish (established flows continue)")
	if err != nil {
		return err
	}
	r.Note("the in-flight upload finished: %d of %d stored, on %s", sum.OK, len(sum.Packages), uploadNodes(r))
	_, err = r.Check(ctx, checker.Options{ErrorWindow: checker.ErrorWindowOptions{IgnoreStatus: []int{http.StatusTeapot}}})
	return err
}

// uploadNodes names the nodes that acknowledged uploads.
func uploadNodes(r Run) string {
	h, err := r.History()
	if err != nil {
		return "?"
	}
	var ns []string
	for _, op := range h.Ops {
		if op.Kind == history.KindUpload && op.Outcome == history.OK {
			ns = append(ns, op.Node)
		}
	}
	return strings.Join(ns, ", ")
}

// AzureLBIdle: a connection idle past the idle timeout.
func AzureLBIdle() Scenario {
	return azureScenario("Azure LB — silent idle drop",
		"Behind azure-lb (idle timeout scaled from 4 min to 2s), a keep-alive connection idle past the timeout is dropped silently: the client's next request is written without error and never answered (no FIN, no RST), so it learns only from its own timeout; a connection used within the timeout lives.",
		azureShape(lb.AzureLB, cluster.AzureLBSpec{IdleTimeout: 2 * time.Second}), azureLBIdleSteps)
}

func azureLBIdleSteps(ctx context.Context, r Run) error {
	idle := r.Spec().LB.Azure.IdleTimeout
	u, err := url.Parse(r.Cluster().URL())
	if err != nil {
		return err
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return fmt.Errorf("connect to the load balancer: %w", err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	const answerWait = 3 * time.Second
	ping := func() (time.Duration, error) {
		start := time.Now()
		if _, err := io.WriteString(c, "GET "+octopusapi.PingPath+" HTTP/1.1\r\nHost: "+u.Host+"\r\n\r\n"); err != nil {
			return 0, fmt.Errorf("write: %w", err)
		}
		_ = c.SetReadDeadline(time.Now().Add(answerWait))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return time.Since(start), err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return time.Since(start), nil
	}
	r.Step("one keep-alive connection: a ping, then another after %s (within the %s idle timeout)", idle/4, idle)
	for i := 0; i < 2; i++ {
		if _, err := ping(); err != nil {
			return fmt.Errorf("ping %d on a connection used within the idle timeout: %w", i+1, err)
		}
		if err := Sleep(ctx, idle/4); err != nil { // the client's think time, below the idle timeout
			return err
		}
	}
	wait := idle + idle/2
	r.Step("the connection stays idle for %s (past the %s idle timeout), then pings again", wait, idle)
	lastUse := time.Now()
	if err := Sleep(ctx, wait); err != nil { // the idle period is the fault under test
		return err
	}
	waited, err := ping()
	var ne net.Error
	switch {
	case err == nil:
		return fmt.Errorf("the connection idle for %s still got an answer: no idle drop", wait)
	case strings.HasPrefix(err.Error(), "write:"):
		return fmt.Errorf("the write after the idle period failed at once (%v): the drop was not silent", err)
	case errors.As(err, &ne) && ne.Timeout():
		r.Note("dropped silently: the request written %s after the last use was accepted, and nothing came back for %s (no FIN, no RST): the client learns only from its own read timeout (%v)",
			time.Since(lastUse).Round(10*time.Millisecond)-waited.Round(10*time.Millisecond), waited.Round(10*time.Millisecond), err)
		r.Figure("idle-timeout", idle.Seconds(), "s")
		r.Figure("client-learned-after", waited.Seconds(), "s")
	default:
		return fmt.Errorf("after the idle period the client saw %v at once: the drop was not silent (a FIN or RST reached it)", err)
	}
	r.Step("a new connection works")
	if _, err := pingNodes(ctx, r.Cluster().URL(), 1, false); err != nil {
		return fmt.Errorf("a new connection after the idle drop: %w", err)
	}
	return nil
}

// AzureAppGWTimeout: a long upload against the gateway's request timeout.
// Default keeps Azure's 20 s; tuned raises it to 120 s.
func AzureAppGWTimeout(tuned bool) Scenario {
	a := cluster.AzureLBSpec{ProbeInterval: time.Second}
	title, claim := "Azure AppGW — default timeout",
		"Behind azure-appgw with Azure's default 20 s backend request timeout, an upload lasting about 25 s gets 504 from the gateway, and the diagnosis names the request timeout and the setting to raise."
	cs := []Check{{Name: "durability"}, {Name: "no-leftovers"}, {Name: "upload-path", ExpectFail: true, Finding: checker.FindingAppGWTimeout.Name}}
	if tuned {
		a.RequestTimeout = 120 * time.Second
		title, claim = "Azure AppGW — raised timeout",
			"Behind azure-appgw with the backend request timeout raised to 120 s, the same 25 s upload passes."
		cs = checks("durability", "no-leftovers", "upload-path")
	}
	sc := azureScenario(title, claim, azureShape(lb.AzureAppGW, a), func(ctx context.Context, r Run) error { return appGWTimeoutSteps(ctx, r, tuned) })
	sc.Uploads = &Uploads{Count: 1, Concurrency: 1, MaxSize: 64 << 20}
	sc.Checks = cs
	return sc
}

func appGWTimeoutSteps(ctx context.Context, r Run, tuned bool) error {
	rt := r.Spec().LB.Azure.Options().WithDefaults(lb.AzureAppGW).RequestTimeout
	size := min(r.UploadSize(), 64<<20)
	r.Step("one %s upload paced to last about 25s, through a gateway whose request timeout is %s", payload.FormatSize(size), rt)
	var res UploadResult
	select {
	case res = <-slowUpload(r, size, 25*time.Second):
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	if res.Err != nil {
		return res.Err
	}
	sum := res.Summary
	if tuned && sum.OK != 1 {
		return fmt.Errorf("the 25 s upload failed behind a %s request timeout: %w", rt, sum.Err())
	}
	if !tuned && sum.OK != 0 {
		return fmt.Errorf("the 25 s upload passed a %s request timeout: the gateway did not enforce it", rt)
	}
	// The node removes what the cut upload left once its body breaks.
	if err := r.NoTempFiles(ctx); err != nil {
		return err
	}
	rep, err := r.Check(ctx, checker.Options{ErrorWindow: checker.ErrorWindowOptions{IgnoreStatus: []int{http.StatusGatewayTimeout}}})
	if err != nil {
		return err
	}
	if res, ok := rep.Result("upload-path"); ok && res.Status == checker.Fail {
		r.Note("%s", checker.FindingAppGWTimeout.Explanation)
	}
	return nil
}

// AzureAppGWWAF: the WAF's file upload limit.
func AzureAppGWWAF() Scenario {
	sc := azureScenario("Azure AppGW — WAF file upload limit",
		"Behind azure-appgw with the WAF on at its defaults, a package above the 100 MB file upload limit is refused (413) and the diagnosis names the WAF limit; nothing is stored.",
		azureShape(lb.AzureAppGW, cluster.AzureLBSpec{ProbeInterval: time.Second, WAF: true}), appGWWAFSteps)
	sc.Uploads = &Uploads{Count: 1, Concurrency: 1, MaxSize: lb.AppGWWAFFileUploadLimit + 8<<20}
	sc.Checks = []Check{{Name: "durability"}, {Name: "no-leftovers"}, {Name: "upload-path", ExpectFail: true, Finding: checker.FindingWAFUpload.Name}}
	return sc
}

func appGWWAFSteps(ctx context.Context, r Run) error {
	limit := r.Spec().LB.Azure.Options().WithDefaults(lb.AzureAppGW).WAFFileUploadLimit
	size := limit + 8<<20
	r.Step("one %s package (above the WAF's %s file upload limit)", payload.FormatSize(size), payload.FormatSize(limit))
	o := r.UploadOptions(1, 1, size)
	o.Retries = 0
	sum, err := r.Upload(ctx, o)
	if err != nil {
		return err
	}
	if sum.OK != 0 {
		return fmt.Errorf("a %s package passed the WAF's %s file upload limit", payload.FormatSize(size), payload.FormatSize(limit))
	}
	if err := r.NoTempFiles(ctx); err != nil {
		return err
	}
	if _, err := r.Check(ctx, checker.Options{ErrorWindow: checker.ErrorWindowOptions{IgnoreStatus: []int{http.StatusRequestEntityTooLarge}}}); err != nil {
		return err
	}
	r.Note("%s", checker.FindingWAFUpload.Explanation)
	return nil
}

// AzureAppGWEjection: Application Gateway's probe, scaled down.
func AzureAppGWEjection() Scenario {
	sc := azureScenario("Azure AppGW — probe ejection",
		"Behind azure-appgw (probe scaled from 30 s × 3 to 1 s × 3), a drained node (418: outside 200–399) stops getting requests within interval × threshold, and every node keeps being probed.",
		azureShape(lb.AzureAppGW, cluster.AzureLBSpec{ProbeInterval: time.Second, ProbeTimeout: time.Second}), appGWEjectSteps)
	sc.Load = []Load{{Target: "ping", Rate: 20}}
	sc.Faults = []FaultPlan{{Fault: nemesis.KindDrain, Target: "Node2"}}
	sc.Checks = checks("convergence")
	return sc
}

func appGWEjectSteps(ctx context.Context, r Run) error {
	spec := r.Spec()
	bound := probeBound(spec)
	if err := r.Attack("ping", 20); err != nil {
		return err
	}
	if err := r.WaitOps(ctx, "ping", 20); err != nil {
		return err
	}
	node := cluster.NodeName(1)
	r.Step("draining %s under ping load", node)
	took, total, err := measureEjection(ctx, r, nemesis.Drain, node, bound+2*time.Second)
	if err != nil {
		return err
	}
	if err := ejectFigures(r, node, took, total, bound); err != nil {
		return err
	}
	// Two more probe rounds, then every node must show a probe result.
	if err := Sleep(ctx, 2*spec.LB.Azure.Options().WithDefaults(lb.AzureAppGW).ProbeInterval+time.Second); err != nil {
		return err
	}
	r.StopLoad()
	states, err := r.Cluster().LBStates(ctx)
	if err != nil {
		return err
	}
	for _, s := range states {
		if s.Check == "" || strings.HasPrefix(s.Check, "INI") {
			return fmt.Errorf("%s has no probe result (%q): not every node is probed", s.Name, s.Check)
		}
		r.Note("%s: %s, last probe %s", s.Name, s.State, s.Check)
	}
	_, err = r.Check(ctx, checker.Options{
		Convergence: checker.ConvergenceOptions{EjectWithin: spec.Node.Heartbeat + bound + time.Second},
		ErrorWindow: checker.ErrorWindowOptions{IgnoreStatus: []int{http.StatusTeapot}},
	})
	return err
}

// AzurePermissionCache: the seed's permission cache behind Azure's
// affinity: client IP at azure-lb, the ApplicationGatewayAffinity cookie
// at azure-appgw.
func AzurePermissionCache(kind lb.Kind) Scenario {
	sc := PermissionCache("sticky")
	aff := lb.AffinityClientIP
	if kind == lb.AzureAppGW {
		aff = lb.AffinityCookie
	}
	sc.Title = "Permission cache — " + string(kind)
	sc.Claim = "Behind " + string(kind) + " with " + string(aff) + " affinity, each session sees one consistent answer after a revoke: allowed until its node's cache expires, then denied, never flipping back."
	sc.Topic = LAzure
	shape := azureShape(kind, cluster.AzureLBSpec{ProbeInterval: time.Second, Affinity: string(aff)})
	shape.Nodes, shape.PermissionCacheTTL = 3, permissionTTL
	sc.Shape = shape
	sc.ProviderNote = azureNote
	opts := checker.PermissionOptions{ProbeKind: traffic.KindPushProbe, ExpireWithin: permissionTTL + 2*time.Second, Monotonic: true}
	sc.Steps = func(ctx context.Context, r Run) error { return permissionSteps(ctx, r, opts, false) }
	return sc
}

// liftAzureFilesCap removes the IOPS/bandwidth toxic from every node's
// share link (the latency stays).
func liftAzureFilesCap(ctx context.Context, r Run) error {
	nc, ok := r.Cluster().(cluster.NetworkController)
	if !ok || nc.Toxiproxy() == nil {
		return errors.New("the cluster's share links are not in Toxiproxy: cannot lift the Azure Files cap")
	}
	for _, n := range r.Cluster().Nodes() {
		link, err := cluster.LinkName(cluster.LinkShare, n.Name)
		if err != nil {
			return err
		}
		if err := nc.Toxiproxy().RemoveToxic(ctx, link, cluster.AzureFilesThrottleToxic); err != nil {
			return fmt.Errorf("lift the Azure Files cap on %s: %w", link, err)
		}
	}
	return nil
}

// AzureFilesThrottle: concurrent uploads against Azure Files' IOPS cap.
func AzureFilesThrottle() Scenario {
	return Scenario{
		Title: "Azure Files — throttled share",
		Claim: "With the share shaped as Azure Files (3 ms, 60 MiB/s, IOPS cap scaled from 1,000 to 40 so concurrent uploads exceed it), throttled uploads fail with a 5xx, retries store every package, and with the cap lifted every package reads back whole and nothing half-stored stays.",
		Topic: LAzure,
		Needs: []cluster.Capability{cluster.CapSimulated},
		// AzureFiles turns Toxiproxy on (cluster.Spec.Normalize); the shape
		// leaves Toxiproxy unset so the label stays azure, not network.
		Shape: Shape{Nodes: 2, DB: cluster.DBSQLite, Storage: cluster.StorageSMB,
			AzureFiles: &cluster.AzureFilesSpec{IOPS: 40}},
		Providers: []string{Local}, ProviderNote: "the Azure Files profile is a custom toxic in octoha's own Toxiproxy",
		Uploads: &Uploads{Count: 8, Concurrency: 8, MaxSize: 16 << 20},
		Checks:  checks("durability", "no-leftovers"),
		Timeout: 4 * time.Minute,
		Steps:   azureFilesSteps,
	}
}

func azureFilesSteps(ctx context.Context, r Run) error {
	spec := r.Spec()
	if spec.Storage.Kind != cluster.StorageSMB || spec.Storage.AzureFiles == nil {
		return Skip("the share is %s, not Samba shaped as Azure Files (needs smbd: apt-get install samba)", spec.Storage.Kind)
	}
	f := spec.Storage.AzureFiles
	size := min(r.UploadSize(), 16<<20)
	r.Step("8 concurrent %s uploads against a share capped at %d IOPS and %s/s, retried as a careful client does", payload.FormatSize(size), f.IOPS, payload.FormatSize(f.Bandwidth))
	o := r.UploadOptions(8, 8, size)
	o.Retries, o.Backoff = 8, time.Second
	// The throttling is this scenario's fault: the history shows its
	// window, so the checks read the failures in it as caused by it.
	rec := r.Env().Recorder
	fault := rec.FaultStart("azure-files-throttle", "share", fmt.Sprintf("Azure Files profile: %d IOPS, %d B/s (storage.azureFiles)", f.IOPS, f.Bandwidth))
	sum, err := r.Upload(ctx, o)
	if err != nil {
		rec.FaultEnd(fault, err)
		return err
	}
	// Reads are throttled too (with the cap on, reading every package back
	// through every node fails with 500s): lift the cap for the checks.
	lifted := liftAzureFilesCap(ctx, r)
	rec.FaultEnd(fault, lifted)
	if lifted != nil {
		return lifted
	}
	h, err := r.History()
	if err != nil {
		return err
	}
	// A throttled upload fails at the node, which answers 5xx; it may
	// answer before the body has all arrived and close, so the client can
	// see its write reset instead of reading the 5xx. Anything else (a 2xx
	// or 4xx failure, or a cut before the body started) is not throttling.
	answered, cut, other := 0, 0, []string{}
	for _, op := range h.Ops {
		if op.Kind != history.KindUpload || op.Outcome == history.OK {
			continue
		}
		switch {
		case op.Status >= 500:
			answered++
		case op.Status == 0 && op.Bytes > 0 && strings.Contains(op.Error, "connection broke after the request started"):
			cut++
		default:
			other = append(other, fmt.Sprintf("op %d: status %d: %s", op.Seq, op.Status, op.Error))
		}
	}
	failed := answered + cut
	mibs := float64(sum.BytesStored) / sum.Duration.Seconds() / (1 << 20)
	r.Figure("throttled-attempts", float64(failed), "ops")
	r.Figure("throttled-5xx", float64(answered), "ops")
	r.Figure("throttled-cut-mid-body", float64(cut), "ops")
	r.Figure("share-throughput", mibs, "MiB/s")
	r.Note("%d attempts for %d packages: %d failed while throttled (%d answered 5xx, %d reset mid-body after the node gave up); %s stored in %s (%.1f MiB/s)",
		sum.Attempts, len(sum.Packages), failed, answered, cut, payload.FormatSize(sum.BytesStored), sum.Duration.Round(100*time.Millisecond), mibs)
	// Durability and leftovers first: nothing half-stored may remain.
	if err := r.NoTempFiles(ctx); err != nil {
		return err
	}
	if _, err := r.Check(ctx, checker.Options{}); err != nil {
		return err
	}
	if failed == 0 {
		return fmt.Errorf("no upload was throttled at %d IOPS: the cap did not bite", f.IOPS)
	}
	if len(other) > 0 {
		return fmt.Errorf("throttled uploads must fail with a 5xx (or a reset after the node's 5xx); %d did not: %s", len(other), strings.Join(other[:min(3, len(other))], "; "))
	}
	if err := sum.Err(); err != nil {
		return fmt.Errorf("retries after throttling must store every package: %w", err)
	}
	return nil
}
