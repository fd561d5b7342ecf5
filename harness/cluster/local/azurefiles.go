package local

import (
	"context"
	"fmt"

	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/services/toxiproxy"
)

// azureFiles puts the Azure Files profile (storage.azureFiles) on node's
// share link: the share's latency both ways, and the azure_files toxic
// (IOPS cap that fails requests, bandwidth) in one pool for all nodes.
func (c *Cluster) azureFiles(ctx context.Context, node string) error {
	f := c.spec.Storage.AzureFiles
	if f == nil || c.tp == nil {
		return nil
	}
	link, err := cluster.LinkName(cluster.LinkShare, node)
	if err != nil {
		return err
	}
	half := f.Latency / 2
	for _, t := range []toxiproxy.Toxic{
		toxiproxy.Latency(cluster.AzureFilesLatencyToxic+"-up", toxiproxy.Upstream, half, 0),
		toxiproxy.Latency(cluster.AzureFilesLatencyToxic+"-down", toxiproxy.Downstream, f.Latency-half, 0),
		toxiproxy.AzureFiles(cluster.AzureFilesThrottleToxic, c.spec.Name+"-share", f.IOPS, f.Bandwidth),
	} {
		if err := c.tp.AddToxic(ctx, link, t); err != nil {
			return fmt.Errorf("add the Azure Files profile to %s: %w", link, err)
		}
	}
	if node == cluster.NodeName(0) {
		c.comps = append(c.comps, cluster.Component{Part: "share profile",
			Description: fmt.Sprintf("Azure Files standard share (emulated on the share links by Toxiproxy): %s latency, %d IOPS shared (over it requests fail), %d B/s shared", f.Latency, f.IOPS, f.Bandwidth),
			Location:    c.tp.Addr()})
	}
	return nil
}
