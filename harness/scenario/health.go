package scenario

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/octoha/octoha/harness/checker"
	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/nemesis"
	"github.com/octoha/octoha/octopusapi"
)

// HealthCheck: the seed's health-check contract, node by node, and the
// load balancer following it.
func HealthCheck() Scenario {
	return Scenario{
		Title:     "Health check",
		Claim:     "Every node answers its ping with 200 when healthy, 418 when draining and 503 without its database, and the load balancer follows each answer.",
		Topic:     LHealth,
		Needs:     []cluster.Capability{cluster.CapDrain},
		Shape:     Shape{Nodes: 3},
		Load:      []Load{{Target: "ping", Rate: 60}},
		Faults:    []FaultPlan{{Fault: nemesis.KindDrain, Target: "Node2"}, {Fault: nemesis.KindDBOutage}},
		Checks:    checks("history", "min-ops:ping", "convergence", "error-window"),
		Certifies: []string{ReqHealthCheckPath},
		Timeout:   3 * time.Minute,
		Steps:     healthSteps,
	}
}

func healthSteps(ctx context.Context, r Run) error {
	c, spec := r.Cluster(), r.Spec()
	if err := r.Attack("ping", 60); err != nil {
		return err
	}
	if err := r.WaitOps(ctx, "ping", 30); err != nil {
		return err
	}
	r.Step("every node answers 200 with its own node JSON, and so does the load balancer")
	for _, n := range c.Nodes() {
		if err := nodePingsItself(ctx, n); err != nil {
			return err
		}
		if err := r.WaitLB(ctx, n.Name, "UP", 0); err != nil {
			return err
		}
	}
	if err := PingIs(ctx, c.URL(), http.StatusOK)(); err != nil {
		return fmt.Errorf("load balancer: %w", err)
	}
	drained, other := c.Nodes()[1], c.Nodes()[0]
	r.Step("draining %s through the API: its ping answers 418 and the load balancer takes it out", drained.Name)
	drain, err := r.Inject(ctx, nemesis.Drain, drained.Name)
	if err != nil {
		return err
	}
	if err := Eventually(ctx, drained.Name+" answers 418", spec.Node.Heartbeat+time.Second, 20*time.Millisecond, PingIs(ctx, drained.URL, http.StatusTeapot)); err != nil {
		return err
	}
	r.Figure("drain-to-418", time.Since(drain.Start()).Seconds(), "s")
	if err := r.WaitLB(ctx, drained.Name, "OUT", spec.Node.Heartbeat+LBBound(spec, spec.LB.Fall)); err != nil {
		return err
	}
	r.Figure("drain-to-lb-out", time.Since(drain.Start()).Seconds(), "s")
	if err := Consistently(ctx, other.Name+" keeps serving", time.Second, 50*time.Millisecond, PingIs(ctx, other.URL, http.StatusOK)); err != nil {
		return err
	}
	r.Step("undraining: 200 again and back in the load balancer")
	if err := drain.Recover(ctx); err != nil {
		return err
	}
	undrained := time.Now()
	if err := r.WaitLB(ctx, drained.Name, "UP", spec.Node.Heartbeat+LBBound(spec, spec.LB.Rise)); err != nil {
		return err
	}
	r.Figure("undrain-to-lb-up", time.Since(undrained).Seconds(), "s")
	if err := r.ServesAgain(ctx, drained.Name, undrained); err != nil {
		return err
	}

	if err := r.Can(cluster.CapDBOutage); err != nil {
		r.Note("database step skipped: %v", err)
	} else {
		r.Step("stopping the database: every node answers 503 and the load balancer has nothing to serve")
		outage, err := stopDatabase(ctx, r, true)
		if err != nil {
			return err
		}
		r.Step("starting the database again: nodes recover by themselves")
		if err := startDatabase(ctx, r, outage); err != nil {
			return err
		}
	}
	r.StopLoad()
	_, err = r.Check(ctx, checker.Options{
		Convergence: checker.ConvergenceOptions{EjectWithin: spec.Node.Heartbeat + LBBound(spec, spec.LB.Fall), RejoinWithin: spec.Node.Heartbeat + LBBound(spec, spec.LB.Rise)},
		MinOps:      []checker.MinOpsRule{{Kind: "ping", N: 20}},
		ErrorWindow: checker.ErrorWindowOptions{Grace: 2 * time.Second},
	})
	return err
}

// nodePingsItself checks that a node's ping answers 200 with its own JSON.
func nodePingsItself(ctx context.Context, n cluster.Node) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.URL+octopusapi.PingPath, nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return fmt.Errorf("%s ping: %w", n.Name, err)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s ping answered %s, want 200", n.Name, resp.Status)
	}
	var pn octopusapi.Node
	if err := json.Unmarshal(body, &pn); err != nil {
		return fmt.Errorf("%s ping body is not node JSON: %w", n.Name, err)
	}
	if n.ID != "" && pn.Id != n.ID {
		return fmt.Errorf("%s ping body names %q, want %q", n.Name, pn.Id, n.ID)
	}
	if pn.IsInMaintenanceMode {
		return fmt.Errorf("%s is in maintenance mode before the scenario drained it", n.Name)
	}
	return nil
}
