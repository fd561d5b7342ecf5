package main

import (
	"flag"
	"fmt"
	"time"

	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/payload"
)

// azureFlags are the lb.azure.* and storage.azureFiles spec fields as
// flags of up and chaos; zero means Azure's default (docs/azure.md).
type azureFlags struct {
	probeInterval, probeTimeout, idle, request, drain time.Duration
	threshold                                         int
	waf, files                                        bool
	bodyLimit, uploadLimit, filesBandwidth            string
	affinity                                          string
	filesIOPS                                         int
	filesLatency                                      time.Duration
}

func addAzureFlags(fs *flag.FlagSet) *azureFlags {
	a := &azureFlags{}
	fs.DurationVar(&a.probeInterval, "azure-probe-interval", 0, "lb.azure.probeInterval (azure-lb 5s, azure-appgw 30s)")
	fs.IntVar(&a.threshold, "azure-probe-threshold", 0, "lb.azure.probeThreshold (azure-lb 1, azure-appgw 3)")
	fs.DurationVar(&a.probeTimeout, "azure-probe-timeout", 0, "lb.azure.probeTimeout (30s)")
	fs.DurationVar(&a.idle, "azure-idle-timeout", 0, "lb.azure.idleTimeout, azure-lb's silent idle drop (4m)")
	fs.DurationVar(&a.request, "azure-request-timeout", 0, "lb.azure.requestTimeout, azure-appgw's backend request timeout (20s)")
	fs.DurationVar(&a.drain, "azure-drain-timeout", 0, "lb.azure.drainTimeout, azure-appgw's connection draining (30s)")
	fs.BoolVar(&a.waf, "azure-waf", false, "lb.azure.waf: azure-appgw's WAF size limits")
	fs.StringVar(&a.bodyLimit, "azure-waf-request-body-limit", "", "lb.azure.wafRequestBodyLimit (128KiB)")
	fs.StringVar(&a.uploadLimit, "azure-waf-file-upload-limit", "", "lb.azure.wafFileUploadLimit (100MiB)")
	fs.StringVar(&a.affinity, "azure-affinity", "", "lb.azure.affinity: none, clientip (azure-lb) or cookie (azure-appgw)")
	fs.BoolVar(&a.files, "azure-files", false, "storage.azureFiles: shape the share links like an Azure Files standard share (needs --storage smb; turns --toxiproxy on)")
	fs.IntVar(&a.filesIOPS, "azure-files-iops", 0, "storage.azureFiles.iops, requests per second over which requests fail (1000)")
	fs.StringVar(&a.filesBandwidth, "azure-files-bandwidth", "", "storage.azureFiles.bandwidth per second (60MiB)")
	fs.DurationVar(&a.filesLatency, "azure-files-latency", 0, "storage.azureFiles.latency (3ms)")
	return a
}

// apply sets the spec fields of the flags the user set.
func (a *azureFlags) apply(s *cluster.Spec, set map[string]bool) error {
	size := func(name, v string, dst *int64) error {
		if !set[name] {
			return nil
		}
		n, err := payload.ParseSize(v)
		if err != nil || n <= 0 {
			return fmt.Errorf("%w: --%s %q: want a positive size such as 100MiB", errUsage, name, v)
		}
		*dst = n
		return nil
	}
	z := &s.LB.Azure
	if set["azure-probe-interval"] {
		z.ProbeInterval = a.probeInterval
	}
	if set["azure-probe-threshold"] {
		z.ProbeThreshold = a.threshold
	}
	if set["azure-probe-timeout"] {
		z.ProbeTimeout = a.probeTimeout
	}
	if set["azure-idle-timeout"] {
		z.IdleTimeout = a.idle
	}
	if set["azure-request-timeout"] {
		z.RequestTimeout = a.request
	}
	if set["azure-drain-timeout"] {
		z.DrainTimeout = a.drain
	}
	if set["azure-waf"] {
		z.WAF = a.waf
	}
	if set["azure-affinity"] {
		z.Affinity = a.affinity
	}
	if err := size("azure-waf-request-body-limit", a.bodyLimit, &z.WAFRequestBodyLimit); err != nil {
		return err
	}
	if err := size("azure-waf-file-upload-limit", a.uploadLimit, &z.WAFFileUploadLimit); err != nil {
		return err
	}
	if set["azure-files"] && !a.files {
		s.Storage.AzureFiles = nil
	}
	if a.files || set["azure-files-iops"] || set["azure-files-bandwidth"] || set["azure-files-latency"] {
		if s.Storage.AzureFiles == nil {
			s.Storage.AzureFiles = &cluster.AzureFilesSpec{}
		}
		f := s.Storage.AzureFiles
		if set["azure-files-iops"] {
			f.IOPS = a.filesIOPS
		}
		if set["azure-files-latency"] {
			f.Latency = a.filesLatency
		}
		if err := size("azure-files-bandwidth", a.filesBandwidth, &f.Bandwidth); err != nil {
			return err
		}
	}
	return nil
}
