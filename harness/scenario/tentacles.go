package scenario

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/octoha/octoha/harness/checker"
	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/lb"
	"github.com/octoha/octoha/harness/nemesis"
	"github.com/octoha/octoha/harness/tentacle"
	"github.com/octoha/octoha/internal/selfsigned"
	"github.com/octoha/octoha/octopusapi"
)

// The seed: "Polling Tentacles must poll all of the Octopus Server
// nodes"; through the load balancer "the Tentacle will not poll all
// servers in a timely manner". A task for a Tentacle holds its request on
// the node that runs it only, so every request is picked up in time only
// when each Tentacle polls each node.

// Polling scenario settings.
const (
	tentacleCount  = 3
	tentaclePoll   = time.Second
	tentacleBound  = time.Second // on top of the poll interval
	tentacleRounds = 6
	tentacleWait   = 6 * time.Second // a task's own bound (DurationMs)
)

// PollingTentacles runs a fleet of polling Tentacles in one layout. The
// two the seed supports must pick up every request within poll + bound,
// with Node2 killed and restarted on the way; via-lb must fail, naming
// the unpolled nodes.
func PollingTentacles(layout string) Scenario {
	sc := Scenario{
		Title:        "Polling Tentacles — " + layout,
		Topic:        LTentacles,
		Needs:        []cluster.Capability{cluster.CapSimulated},
		Shape:        Shape{Nodes: 3, DB: cluster.DBSQLite, Storage: cluster.StorageLocal, TaskPoll: 200 * time.Millisecond},
		Providers:    []string{Local},
		ProviderNote: "its layouts need the fake nodes' polling ports and the HAProxy polling frontends of the local provider",
		Timeout:      2 * time.Minute,
	}
	switch layout {
	case cluster.LayoutViaLB:
		sc.Claim = "Tentacles polling one load-balanced endpoint keep their connection on one node and miss the requests held on the others: the tentacles check must fail, naming unpolled nodes."
		sc.Checks = []Check{{Name: "tentacles", ExpectFail: true, Finding: checker.FindingUnpolled.Name}}
	default:
		sc.Claim = fmt.Sprintf("Tentacles polling every node (%s) pick up every request within the poll interval plus %s, also while a node is killed and restarted.", layout, tentacleBound)
		sc.Checks = checks("tentacles")
		sc.Faults = []FaultPlan{{Fault: nemesis.KindKill, Target: "Node2, then restarted"}}
	}
	sc.Steps = func(ctx context.Context, r Run) error { return tentacleSteps(ctx, r, layout) }
	return sc
}

func tentacleSteps(ctx context.Context, r Run, layout string) error {
	spec := r.Spec()
	if layout != cluster.LayoutUniqueAddress && spec.LB.Kind != string(lb.HAProxy) {
		return Skip("the %s layout needs HAProxy's polling frontends; this cluster's load balancer is %s", layout, spec.LB.Kind)
	}
	endpoints, err := spec.PollingEndpoints(layout)
	if err != nil {
		return err
	}
	c := r.Cluster()
	r.Step("registering %d polling Tentacles through the REST API; each polls %s every %s", tentacleCount, strings.Join(endpoints, ", "), tentaclePoll)
	fleet, err := tentacle.Register(ctx, tentacle.Options{Count: tentacleCount, Endpoints: endpoints, Layout: layout, Thumbprint: spec.PollingThumbprint,
		Poll: tentaclePoll, URL: c.URL(), APIKey: c.APIKey(), Recorder: r.Env().Recorder})
	if err != nil {
		return err
	}
	fctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); fleet.Run(fctx) }()
	defer func() { stop(); wg.Wait() }()

	killAt := -1
	if layout != cluster.LayoutViaLB {
		killAt = 2
	}
	var kill *nemesis.Injection
	// The REST API is reached through the load balancer: wait until it has
	// taken Node2 out (and back in), as a client retrying would.
	within := spec.Node.Heartbeat + LBBound(spec, spec.LB.Fall)
	beforeRound := func(round int) error {
		var err error
		switch {
		case round == killAt:
			if kill, err = r.Inject(ctx, nemesis.Kill, "Node2"); err != nil {
				return err
			}
			return r.WaitLB(ctx, "Node2", "OUT", within)
		case round == killAt+2 && kill != nil:
			if err := kill.Recover(ctx); err != nil {
				return err
			}
			return r.WaitLB(ctx, "Node2", "UP", within+LBBound(spec, spec.LB.Rise))
		}
		return nil
	}
	r.Step("queuing a task for each Tentacle at a random instant of every 1.5s, %d times%s", tentacleRounds, map[bool]string{true: "; Node2 killed before the third round and restarted two rounds later"}[killAt >= 0])
	ids, err := fleet.Work(ctx, tentacle.WorkOptions{Rounds: tentacleRounds, Every: 1500 * time.Millisecond, Wait: tentacleWait, Seed: r.Seed(), BeforeRound: beforeRound})
	if err != nil {
		return err
	}
	r.Step("waiting for every task to end (picked up, timed out after %s, or lost with its node)", tentacleWait)
	if err := Eventually(ctx, "every Tentacle task ended", tentacleWait+15*time.Second, 250*time.Millisecond, func() error {
		left, err := fleet.Unfinished(ctx, ids)
		if err == nil && len(left) > 0 {
			err = fmt.Errorf("still running: %s", strings.Join(left, ", "))
		}
		return err
	}); err != nil {
		return err
	}
	stop()
	wg.Wait()
	if _, err := fleet.Lost(ctx, ids); err != nil {
		return err
	}
	rep, err := r.Check(ctx, checker.Options{Tentacles: &checker.TentacleOptions{Within: tentaclePoll + tentacleBound}})
	if err != nil {
		return err
	}
	res, _ := rep.Result("tentacles")
	for _, f := range []string{"pickup-p50", "pickup-p95", "pickup-max", checker.FindingUnpolled.Name} {
		r.Figure(f, res.Value(f), map[bool]string{true: "count", false: "s"}[f == checker.FindingUnpolled.Name])
	}
	if layout == cluster.LayoutViaLB {
		r.Note("via-lb does not meet the seed's advice: %s", checker.FindingUnpolled.Explanation)
	}
	return nil
}

// PollingEndpoints certifies a cluster's polling layout: each configured
// endpoint accepts TLS and presents the cluster's thumbprint, and there
// are as many distinct endpoints as nodes (one per node: the seed's
// unique-address or unique-port layouts; fewer means polling through the
// load balancer).
func PollingEndpoints() Scenario {
	return Scenario{
		Title:     "Polling endpoints",
		Claim:     "Each polling endpoint accepts TLS and presents the cluster's certificate, one endpoint per node, so every Tentacle polls every node.",
		Topic:     LTentacles,
		Shape:     Shape{Nodes: 3, DB: cluster.DBSQLite, Storage: cluster.StorageLocal},
		Certifies: []string{ReqPolling},
		Providers: []string{Local, External},
		Timeout:   time.Minute,
		Steps:     pollingEndpointSteps,
	}
}

func pollingEndpointSteps(ctx context.Context, r Run) error {
	spec := r.Spec()
	endpoints, err := spec.PollingEndpoints(cluster.LayoutUniquePort)
	if spec.Provider == cluster.ProviderExternal && err != nil {
		return Skip("%v: list the host:port your Tentacles poll in external.pollingEndpoints, and the certificate's thumbprint in pollingThumbprint", err)
	}
	if err != nil {
		return err
	}
	if spec.PollingThumbprint == "" {
		return Skip("the cluster's polling certificate thumbprint is not known: set pollingThumbprint in the cluster YAML")
	}
	client, err := selfsigned.New("octoha certify")
	if err != nil {
		return err
	}
	r.Step("dialling TLS to each of %d polling endpoints", len(endpoints))
	var bad []string
	distinct := map[string]bool{}
	for _, ep := range endpoints {
		distinct[ep] = true
		thumb, err := serverThumbprint(ctx, ep, client)
		switch {
		case err != nil:
			bad = append(bad, fmt.Sprintf("%s: %v", ep, err))
		case thumb != strings.ToUpper(spec.PollingThumbprint):
			bad = append(bad, fmt.Sprintf("%s presents %s, not the cluster's %s", ep, thumb, spec.PollingThumbprint))
		default:
			r.Note("%s: TLS, thumbprint %s", ep, thumb)
		}
	}
	nodes := len(r.Cluster().Nodes())
	r.Figure("polling-endpoints", float64(len(distinct)), "count")
	r.Figure("nodes", float64(nodes), "count")
	if len(distinct) < nodes {
		bad = append(bad, fmt.Sprintf("%d distinct polling endpoints for %d nodes: Tentacles do not poll every node (polling through the load balancer does not meet the seed's advice)", len(distinct), nodes))
	}
	if len(bad) > 0 {
		slices.Sort(bad)
		return errors.New(strings.Join(bad, "; "))
	}
	return nil
}

// serverThumbprint completes a TLS handshake (with a client certificate,
// which polling ports ask for) and returns the server's thumbprint.
func serverThumbprint(ctx context.Context, endpoint string, client selfsigned.Cert) (string, error) {
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: &tls.Config{
		Certificates: []tls.Certificate{client.TLS}, InsecureSkipVerify: true, //nolint:gosec // compared by thumbprint
		MinVersion: tls.VersionTLS12,
	}}
	conn, err := d.DialContext(ctx, "tcp", endpoint)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	certs := conn.(*tls.Conn).ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return "", errors.New("no server certificate")
	}
	return octopusapi.Thumbprint(certs[0].Raw), nil
}
