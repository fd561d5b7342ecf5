package scenario

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/octoha/octoha/harness/checker"
	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/nemesis"
)

// Azure SQL behind a failover group, simulated by a PostgreSQL primary and
// standby behind one listener (harness/cluster/local/dbgroup.go;
// docs/azure-sql.md).
const (
	// azureReconfiguration is the reconfiguration's length. Azure: a
	// reconfiguration "usually" ends within 60 s (learn.microsoft.com,
	// "Troubleshoot transient connection errors"; the Azure SQL section of
	// /work/shared/reference/azure.md). Scaled to 8 s for CI: longer than
	// the nodes' unhealthy bound (3 s) plus the load balancer's fall, so
	// the nodes are seen to go out and come back.
	azureReconfiguration = 8 * time.Second
	// reconnectSlack is what a node may take beyond the reconfiguration
	// and one heartbeat: a new connection and the store's reconnect delay
	// (fakes/store DefaultReconnect, 250 ms).
	reconnectSlack = time.Second
	// azureOfflineAfter is the task scenarios' offline bound here: Octopus
	// calls a node offline after minutes, longer than a reconfiguration
	// (< 60 s), so the scaled bound stays longer than the scaled one.
	azureOfflineAfter = 2 * azureReconfiguration
)

const azureSQLNote = "the database failover group (PostgreSQL primary + standby behind one listener) runs on the local provider only; docker: not supported yet"

// azureSQL fills what every Azure SQL scenario shares.
func azureSQL(sc Scenario) Scenario {
	sc.Topic = LAzure
	sc.Needs = append(sc.Needs, cluster.CapDBFailover)
	sc.Providers, sc.ProviderNote = []string{Local}, azureSQLNote
	return sc
}

// AzureSQLFailover: a planned failover, or a forced one with synchronous
// replication, under uploads: nothing acknowledged is lost.
func AzureSQLFailover(planned bool) Scenario {
	sc := Scenario{
		Title:   "Azure SQL — forced failover, sync",
		Claim:   "Killing the primary of a synchronously replicated failover group and promoting the standby loses no acknowledged upload; the nodes reconnect through the listener by themselves.",
		Shape:   Shape{Nodes: 3, DBReplica: cluster.ReplicaSync},
		Load:    []Load{{Target: "ping", Rate: 30}, {Target: "nodes", Rate: 20}},
		Uploads: &Uploads{Count: 6, Concurrency: 2, MaxSize: 64 << 20},
		Faults:  []FaultPlan{{Fault: nemesis.KindDBFailover, Target: "forced failover"}},
		Checks:  checks("history", "min-ops:ping", "durability", checker.CheckLostRows, "no-leftovers", "error-window", "upload-path"),
		Timeout: 6 * time.Minute,
	}
	fault, name := nemesis.ForcedFailover, "forced"
	if planned {
		sc.Title = "Azure SQL — planned failover"
		sc.Claim = "A planned failover (standby caught up, primary stopped, standby promoted, listener moved) loses no acknowledged upload, even with an asynchronous replica; the nodes reconnect through the listener by themselves."
		sc.Shape.DBReplica = cluster.ReplicaAsync
		sc.Faults[0].Target = "planned failover"
		fault, name = nemesis.PlannedFailover, "planned"
	}
	sc.Steps = func(ctx context.Context, r Run) error {
		return uploadsAcrossDBFault(ctx, r, func(ctx context.Context) error {
			r.Step("%s failover of the database failover group mid-load", name)
			inj, err := failover(ctx, r, fault, name)
			if err != nil {
				return err
			}
			return rebuildStandby(ctx, r, inj)
		}, checker.Options{LostRows: true})
	}
	return azureSQL(sc)
}

// failover injects a failover and waits until the cluster serves again
// through the moved listener.
func failover(ctx context.Context, r Run, fault nemesis.Fault, name string) (*nemesis.Injection, error) {
	inj, err := r.Inject(ctx, fault, "")
	if err != nil {
		return nil, err
	}
	r.Figure(name+"-failover-took", time.Since(inj.Start()).Seconds(), "s")
	if _, err := ClusterServesAgain(ctx, r, inj.Start(), time.Minute, name+"-failover-to-cluster-serving"); err != nil {
		return nil, err
	}
	return inj, nil
}

// rebuildStandby ends a failover: the lost server is re-seeded as the new
// standby, so the group is whole again.
func rebuildStandby(ctx context.Context, r Run, inj *nemesis.Injection) error {
	r.Step("re-seeding the lost server as the new standby")
	t := time.Now()
	if err := inj.Recover(ctx); err != nil {
		return err
	}
	r.Figure("standby-rebuilt", time.Since(t).Seconds(), "s")
	return nil
}

// AzureSQLForcedAsync: a forced failover of an asynchronous group loses
// what the standby had not received, and octoha must find it.
func AzureSQLForcedAsync() Scenario {
	return azureSQL(Scenario{
		Title: "Azure SQL — forced failover, async",
		Claim: "A forced failover of an asynchronously replicated group loses the uploads the standby had not received: octoha names them — acknowledged, their rows gone, their files still on the share — and the window in which they were acknowledged.",
		Shape: Shape{Nodes: 3, DBReplica: cluster.ReplicaAsync},
		Load:  []Load{{Target: "ping", Rate: 30}},
		// 2 replicated before the cut, 4 after it.
		Uploads: &Uploads{Count: 6, Concurrency: 2, MaxSize: 64 << 20},
		Faults: []FaultPlan{
			{Fault: nemesis.KindDBFailover, Target: "replication cut"},
			{Fault: nemesis.KindDBFailover, Target: "forced failover"},
		},
		Checks: []Check{
			{Name: "history"}, {Name: "min-ops:ping"},
			{Name: "durability", ExpectFail: true},
			{Name: checker.CheckLostRows, ExpectFail: true, Finding: checker.FindingLostAcks},
			{Name: "no-leftovers"}, {Name: "upload-path"},
		},
		Timeout: 6 * time.Minute,
		Steps:   forcedAsyncSteps,
	})
}

// forcedAsyncLost is how many uploads are acknowledged while WAL shipping
// is cut: each must be found lost.
const forcedAsyncLost = 4

func forcedAsyncSteps(ctx context.Context, r Run) error {
	if err := r.Attack("ping", 30); err != nil {
		return err
	}
	if err := r.WaitOps(ctx, "ping", 15); err != nil {
		return err
	}
	size := min(r.UploadSize(), 64<<20)
	r.Step("uploading 2 packages the standby receives")
	if err := uploadAll(ctx, r, 2, 1, size, r.Seed()); err != nil {
		return err
	}
	r.Step("cutting WAL shipping to the standby (once it has caught up)")
	if _, err := r.Inject(ctx, nemesis.ReplicationCut, ""); err != nil {
		return err
	}
	r.Step("uploading %d packages only the primary receives", forcedAsyncLost)
	if err := uploadAll(ctx, r, forcedAsyncLost, 2, size, r.Seed()+1); err != nil {
		return err
	}
	r.Step("forced failover: the primary killed, the standby promoted with what it has")
	inj, err := failover(ctx, r, nemesis.ForcedFailover, "forced")
	if err != nil {
		return err
	}
	r.StopLoad()
	rep, err := r.Check(ctx, checker.Options{
		LostRows:    true,
		MinOps:      []checker.MinOpsRule{{Kind: "ping", N: 10}},
		ErrorWindow: checker.ErrorWindowOptions{Grace: 5 * time.Second, IgnoreStatus: []int{http.StatusConflict}},
	})
	if err != nil {
		return err
	}
	lost, _ := rep.Result(checker.CheckLostRows)
	r.Figure("lost-acknowledged-uploads", lost.Value(checker.FindingLostAcks), "packages")
	r.Figure("lost-bytes", lost.Value("lost-bytes"), "bytes")
	r.Figure("lost-window", lost.Value("lost-window"), "s")
	if n := int(lost.Value(checker.FindingLostAcks)); n != forcedAsyncLost {
		return fmt.Errorf("%d uploads were acknowledged after WAL shipping was cut, but the lost-rows check found %d lost: %s", forcedAsyncLost, n, lost.Summary)
	}
	return rebuildStandby(ctx, r, inj)
}

// uploadAll uploads count packages and fails unless every one is
// acknowledged.
func uploadAll(ctx context.Context, r Run, count, conc int, size int64, seed int64) error {
	o := r.UploadOptions(count, conc, size)
	o.Seed = seed
	sum, err := r.Upload(ctx, o)
	if err != nil {
		return err
	}
	if err := sum.Err(); err != nil {
		return fmt.Errorf("every upload must be acknowledged: %w", err)
	}
	return nil
}

// reconfigure runs an Azure SQL reconfiguration of d at the listener and
// waits until the nodes went out and came back by themselves, each within
// d plus one heartbeat (plus reconnectSlack) of its start.
func reconfigure(ctx context.Context, r Run, d time.Duration) error {
	spec := r.Spec()
	inj, err := r.Inject(ctx, nemesis.Reconfiguration(d), "")
	if err != nil {
		return err
	}
	start := inj.Start()
	if err := NodesGoUnhealthy(ctx, r, start, false, "reconfiguration"); err != nil {
		return err
	}
	bound := d + spec.Node.Heartbeat + reconnectSlack
	for _, n := range r.Cluster().Nodes() {
		left := max(bound-time.Since(start), 50*time.Millisecond)
		if err := Eventually(ctx, n.Name+" serves again within the reconfiguration ("+d.String()+") + one heartbeat ("+spec.Node.Heartbeat.String()+") + "+reconnectSlack.String(), left, 50*time.Millisecond, PingIs(ctx, n.URL, http.StatusOK)); err != nil {
			return err
		}
	}
	r.Figure("reconfiguration-to-nodes-serving", time.Since(start).Seconds(), "s")
	if _, err := ClusterServesAgain(ctx, r, start, time.Minute, "reconfiguration-to-cluster-serving"); err != nil {
		return err
	}
	return inj.Recover(ctx)
}

// AzureSQLReconfigurationUploads: a reconfiguration mid-upload.
func AzureSQLReconfigurationUploads() Scenario {
	return azureSQL(Scenario{
		Title:   "Azure SQL — reconfiguration mid-upload",
		Claim:   "An Azure SQL reconfiguration (every connection reset, new ones refused) mid-upload makes the nodes unhealthy; they come back by themselves within the reconfiguration plus one heartbeat and no acknowledged upload is lost.",
		Shape:   Shape{Nodes: 3, DBReplica: cluster.ReplicaAsync},
		Load:    []Load{{Target: "ping", Rate: 30}, {Target: "nodes", Rate: 20}},
		Uploads: &Uploads{Count: 6, Concurrency: 2, MaxSize: 64 << 20},
		Faults:  []FaultPlan{{Fault: nemesis.KindDBFailover, Target: "reconfiguration"}},
		Checks:  checks("history", "min-ops:ping", "durability", checker.CheckLostRows, "no-leftovers", "error-window", "upload-path"),
		Timeout: 6 * time.Minute,
		Steps: func(ctx context.Context, r Run) error {
			return uploadsAcrossDBFault(ctx, r, func(ctx context.Context) error {
				r.Step("Azure SQL reconfiguration for %s mid-upload", azureReconfiguration)
				return reconfigure(ctx, r, azureReconfiguration)
			}, checker.Options{LostRows: true})
		},
	})
}

// AzureSQLReconfigurationTasks: a reconfiguration mid-task-queue.
func AzureSQLReconfigurationTasks() Scenario {
	shape := taskShape(3, 4)
	shape.DBReplica, shape.OfflineAfter = cluster.ReplicaAsync, azureOfflineAfter
	return azureSQL(Scenario{
		Title:   "Azure SQL — reconfiguration mid-queue",
		Claim:   "An Azure SQL reconfiguration mid-queue makes the nodes unhealthy; they come back by themselves within the reconfiguration plus one heartbeat, every task still ends, none runs twice and no node exceeds its cap.",
		Shape:   shape,
		Tasks:   &TaskPlan{Count: 30, Duration: time.Second},
		Faults:  []FaultPlan{{Fault: nemesis.KindDBFailover, Target: "reconfiguration"}},
		Checks:  taskChecks(checker.CheckTasksTerminal, checker.CheckTasksOnce, checker.CheckTasksCap),
		Timeout: 3 * time.Minute,
		Steps: func(ctx context.Context, r Run) error {
			return tasksAcrossDBFault(ctx, r, "Azure SQL reconfiguration for "+azureReconfiguration.String(), func(ctx context.Context) error {
				return reconfigure(ctx, r, azureReconfiguration)
			})
		},
	})
}
