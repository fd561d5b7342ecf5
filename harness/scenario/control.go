package scenario

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/octoha/octoha/harness/checker"
	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/nemesis"
)

// BrokenCluster is the control: deliberately broken nodes that acknowledge
// uploads before storing them must be caught by the durability check.
func BrokenCluster() Scenario {
	return Scenario{
		Title:        "Broken cluster control",
		Claim:        "The durability check catches a node that acknowledges an upload before storing it and is killed: the check must fail, naming the lost package.",
		Needs:        []cluster.Capability{cluster.CapKill, cluster.CapSimulated},
		Shape:        Shape{Nodes: 2, UnsafeAckBeforeStore: true, DB: cluster.DBSQLite, Storage: cluster.StorageLocal},
		Uploads:      &Uploads{Count: 1, Concurrency: 1, MaxSize: 16 << 20},
		Faults:       []FaultPlan{{Fault: nemesis.KindKill, Target: "the node that acknowledged"}},
		Checks:       []Check{{Name: "durability", ExpectFail: true}},
		Providers:    []string{Local},
		ProviderNote: "deliberately broken nodes exist only as local processes",
		Timeout:      2 * time.Minute,
		Steps:        brokenSteps,
	}
}

func brokenSteps(ctx context.Context, r Run) error {
	r.Note("deliberately broken nodes: uploads are acknowledged before the file and its row are stored")
	r.Step("uploading one package; the node acknowledges it at once")
	o := r.UploadOptions(1, 1, 16<<20)
	o.Retries = 0
	sum, err := r.Upload(ctx, o)
	if err != nil {
		return err
	}
	if err := sum.Err(); err != nil {
		return err
	}
	acked := sum.Packages[0]
	r.Step("SIGKILL %s before it stores what it acknowledged", acked.Node)
	kill, err := r.Inject(ctx, nemesis.Kill, acked.Node)
	if err != nil {
		return err
	}
	if err := kill.Recover(ctx); err != nil {
		return err
	}
	rep, err := r.Check(ctx, checker.Options{})
	if err != nil {
		return err
	}
	dur, _ := rep.Result("durability")
	if dur.Status == checker.Fail && !strings.Contains(strings.Join(dur.Evidence, "\n"), acked.Spec.Version) {
		return fmt.Errorf("the durability check failed but its evidence does not name the lost package %s: %s", acked.Spec.Version, strings.Join(dur.Evidence, "; "))
	}
	return nil
}

// RandomChaos: a seeded schedule of faults under load.
func RandomChaos() Scenario {
	return Scenario{
		Title:        "Random chaos",
		Claim:        "The cluster survives a seeded schedule of kills, pauses, restarts, drains and outages under load with every acknowledged upload intact.",
		Needs:        []cluster.Capability{cluster.CapSimulated},
		Shape:        Shape{Nodes: 3},
		Load:         []Load{{Target: "ping", Rate: 30}, {Target: "nodes", Rate: 10}},
		Uploads:      &Uploads{Count: 8, Concurrency: 2, MaxSize: 256 << 20},
		Faults:       []FaultPlan{{Fault: "random"}},
		Checks:       checks("history", "min-ops:ping", "durability", "no-leftovers", "error-window"),
		Providers:    []string{Local},
		ProviderNote: "the schedule's process faults and outages are timed for local processes",
		Timeout:      10 * time.Minute,
		Steps:        chaosSteps,
	}
}

func chaosSteps(ctx context.Context, r Run) error {
	c := r.Cluster()
	sched, err := nemesis.Plan(r.Seed(), nemesis.PlanOptions{Cluster: c, Count: 4, Start: 2 * time.Second, Gap: 3 * time.Second, MinHold: 2 * time.Second, MaxHold: 4 * time.Second})
	if err != nil {
		return err
	}
	r.Note("schedule (seed %d): %s", r.Seed(), sched)
	r.Step("schedule: %s", sched)
	if err := r.Attack("ping", 30); err != nil {
		return err
	}
	if err := r.Attack("nodes", 10); err != nil {
		return err
	}
	if err := r.WaitOps(ctx, "ping", 15); err != nil {
		return err
	}
	o := r.UploadOptions(8, 2, min(r.UploadSize(), 256<<20))
	o.Retries, o.Backoff = 10, 500*time.Millisecond
	uploads := r.UploadInBackground(o)
	faults, err := sched.Run(ctx, r.Env())
	if err != nil {
		return fmt.Errorf("run the schedule: %w", err)
	}
	if len(faults) != len(sched.Steps) {
		return fmt.Errorf("the schedule ran %d of %d steps", len(faults), len(sched.Steps))
	}
	if _, err := AwaitUploads(ctx, uploads, 8*time.Minute, "uploads retried through the faults must succeed"); err != nil {
		return err
	}
	// The schedule's last fault may end just before the checks (a database
	// back for a second, nodes still reconnecting): judge the cluster once
	// it serves again, as the outage scenarios do, not mid-recovery.
	if _, err := ClusterServesAgain(ctx, r, time.Now(), 30*time.Second, "schedule-end-to-cluster-serving"); err != nil {
		return err
	}
	r.StopLoad()
	_, err = r.Check(ctx, checker.Options{
		MinOps:      []checker.MinOpsRule{{Kind: "ping", N: 10}},
		ErrorWindow: checker.ErrorWindowOptions{Grace: 6 * time.Second, IgnoreStatus: []int{http.StatusConflict, http.StatusTeapot}},
	})
	return err
}
