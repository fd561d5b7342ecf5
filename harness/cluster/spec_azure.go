package cluster

import (
	"errors"
	"fmt"
	"time"

	"github.com/octoha/octoha/harness/lb"
	"github.com/octoha/octoha/services/toxiproxy"
)

// AzureLBSpec is lb.azure: the figures of the azure-lb and azure-appgw
// kinds. Zero fields take Azure's defaults (lb.AzureDefaults; sources in
// harness/lb/azure.go and docs/azure.md).
type AzureLBSpec struct {
	ProbeInterval       time.Duration `yaml:"probeInterval,omitempty"`
	ProbeThreshold      int           `yaml:"probeThreshold,omitempty"`
	ProbeTimeout        time.Duration `yaml:"probeTimeout,omitempty"`
	IdleTimeout         time.Duration `yaml:"idleTimeout,omitempty"`
	RequestTimeout      time.Duration `yaml:"requestTimeout,omitempty"`
	DrainTimeout        time.Duration `yaml:"drainTimeout,omitempty"`
	WAF                 bool          `yaml:"waf,omitempty"`
	WAFRequestBodyLimit int64         `yaml:"wafRequestBodyLimit,omitempty"`
	WAFFileUploadLimit  int64         `yaml:"wafFileUploadLimit,omitempty"`
	Affinity            string        `yaml:"affinity,omitempty"` // none, clientip (azure-lb), cookie (azure-appgw)
	// Scaled allows figures below Azure's minimums (scenarios scale
	// Azure's timings down so CI stays fast).
	Scaled bool `yaml:"scaled,omitempty"`
}

// Options is the spec as lb.Options.Azure.
func (a AzureLBSpec) Options() lb.Azure {
	return lb.Azure{ProbeInterval: a.ProbeInterval, ProbeThreshold: a.ProbeThreshold, ProbeTimeout: a.ProbeTimeout,
		IdleTimeout: a.IdleTimeout, RequestTimeout: a.RequestTimeout, DrainTimeout: a.DrainTimeout, WAF: a.WAF,
		WAFRequestBodyLimit: a.WAFRequestBodyLimit, WAFFileUploadLimit: a.WAFFileUploadLimit,
		Affinity: lb.Affinity(a.Affinity), Scaled: a.Scaled}
}

// The toxics of the Azure Files profile on each share link; faults use
// other names, so removing a fault leaves the profile.
const (
	AzureFilesLatencyToxic  = "azure-files-latency"
	AzureFilesThrottleToxic = "azure-files-throttle"
)

// AzureFilesSpec is storage.azureFiles: an Azure Files standard share's
// scale targets on every node's share link (Toxiproxy: latency, and the
// azure_files toxic for IOPS and bandwidth shared by all nodes).
type AzureFilesSpec struct {
	IOPS      int           `yaml:"iops,omitempty"`      // default 1,000
	Bandwidth int64         `yaml:"bandwidth,omitempty"` // bytes/s, default 60 MiB/s
	Latency   time.Duration `yaml:"latency,omitempty"`   // default 3ms
}

// WithDefaults fills zero fields with Azure's figures.
func (f AzureFilesSpec) WithDefaults() AzureFilesSpec {
	if f.IOPS == 0 {
		f.IOPS = toxiproxy.AzureFilesIOPS
	}
	if f.Bandwidth == 0 {
		f.Bandwidth = toxiproxy.AzureFilesBandwidth
	}
	if f.Latency == 0 {
		f.Latency = toxiproxy.AzureFilesLatency
	}
	return f
}

func (s *Spec) normalizeAzure() {
	if s.Storage.AzureFiles != nil {
		f := s.Storage.AzureFiles.WithDefaults()
		s.Storage.AzureFiles = &f
		// The profile lives on the share links, which only Toxiproxy has.
		s.Toxiproxy = true
	}
}

func (s Spec) validateAzure(kind lb.Kind) []error {
	var errs []error
	if lb.IsAzure(kind) {
		if err := lb.ValidateAzure(kind, s.LB.Azure.Options()); err != nil {
			errs = append(errs, fmt.Errorf("lb.azure: %w", err))
		}
		if s.Provider == ProviderDocker {
			errs = append(errs, fmt.Errorf("lb.kind %s: the docker provider cannot run it (its silent idle drop, request timeout and WAF limits run in octoha's own process in front of HAProxy); use the local provider", kind))
		}
	} else if s.LB.Azure != (AzureLBSpec{}) {
		errs = append(errs, fmt.Errorf("lb.azure is for lb.kind %s or %s (lb.kind is %s)", lb.AzureLB, lb.AzureAppGW, kind))
	}
	if f := s.Storage.AzureFiles; f != nil {
		if s.Storage.Kind != StorageSMB {
			errs = append(errs, errors.New("storage.azureFiles shapes the SMB share links: needs storage.kind smb"))
		}
		if s.Provider != ProviderLocal {
			errs = append(errs, errors.New("storage.azureFiles needs the local provider (its links go through octoha's Toxiproxy)"))
		}
		if f.IOPS < 0 || f.Bandwidth < 0 || f.Latency < 0 {
			errs = append(errs, errors.New("storage.azureFiles: iops, bandwidth and latency cannot be negative"))
		}
	}
	return errs
}
