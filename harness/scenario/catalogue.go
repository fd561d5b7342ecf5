package scenario

import (
	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/lb"
)

// Catalogue returns every scenario, in the order they run.
func Catalogue() []Scenario {
	return []Scenario{
		HealthCheck(),
		DrainUnderLoad(),
		KillMidUpload(),
		KillMidDelta(),
		Pause(),
		Capacity(2, 20),
		Capacity(4, 10),
		LBLimits(lb.HAProxy, "LB limits — HAProxy for Octopus", true, true),
		LBLimits(lb.Nginx, "LB limits — nginx tuned", true, false),
		LBLimits(lb.NginxDefaults, "LB limits — nginx defaults", false, false),
		LBCertification(),
		Stickiness(),
		BrokenCluster(),
		RandomChaos(),
		DatabaseOutage(),
		ShareOutage(),
		Partition(),
		SlowClient(true), SlowClient(false), AzureFilesShare(), FlakyDatabase(), ResetMidUpload(), SharePartition(),
		MixedOS(),
		OSTopology(),
		PermissionCache("none"),
		PermissionCache("sticky"),
		PermissionCache("shared"),
		PollingTentacles(cluster.LayoutUniqueAddress),
		PollingTentacles(cluster.LayoutUniquePort),
		PollingTentacles(cluster.LayoutViaLB),
		PollingEndpoints(),
		TaskQueueNodeKilled(),
		TaskDrain(),
		TaskLeaderKilled(),
		TaskDatabaseOutage(),
		TaskCapChange(),
		TaskCapacity(2, 20),
		TaskCapacity(4, 10),
		TaskUnsafeClaim(),
		AzureLBDrain(), AzureLBIdle(), AzureAppGWTimeout(false), AzureAppGWTimeout(true), AzureAppGWWAF(), AzureAppGWEjection(),
		AzurePermissionCache(lb.AzureLB), AzurePermissionCache(lb.AzureAppGW), AzureFilesThrottle(),
		AzureCertProbe(), AzureCertLongUpload(), AzureCertOver100MB(),
		AzureSQLFailover(true), AzureSQLFailover(false), AzureSQLForcedAsync(),
		AzureSQLReconfigurationUploads(), AzureSQLReconfigurationTasks(),
	}
}

// checks declares checks that must pass.
func checks(names ...string) []Check {
	out := make([]Check, len(names))
	for i, n := range names {
		out[i] = Check{Name: n}
	}
	return out
}

func nodeURL(c cluster.Cluster, name string) string {
	for _, n := range c.Nodes() {
		if n.Name == name {
			return n.URL
		}
	}
	return ""
}
