package main

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/payload"
)

// specFlags are octoha up's cluster-spec flags; only flags the user set
// override the YAML file. Each flag is declared once, with what it sets.
type specFlags struct {
	config, name *string
	order        []string                             // the spec flags, as registered
	set          map[string]func(*cluster.Spec) error // by flag name
	value        map[string]func() int64              // the numeric flags' values
	azureFiles   *bool
	files        []string // the storage.azureFiles flags besides --azure-files
}

func addSpecFlags(fs *flag.FlagSet) *specFlags {
	f := &specFlags{set: map[string]func(*cluster.Spec) error{}, value: map[string]func() int64{}}
	f.config = fs.String("config", "", "cluster spec YAML (flags override it)")
	f.name = fs.String("name", "default", "cluster name (names the default run directory)")
	f.integer(fs, "nodes", 3, "number of nodes", func(s *cluster.Spec, v int) { s.Nodes = v })
	f.text(fs, "lb", "haproxy", "load balancer: haproxy, nginx, nginx-defaults, caddy, caddy-timeout, embedded, azure-lb or azure-appgw (docs/azure.md)", func(s *cluster.Spec, v string) { s.LB.Kind = v })
	f.text(fs, "db", "sqlite", "database: sqlite, postgres or sqlserver", func(s *cluster.Spec, v string) { s.DB.Kind = v })
	f.text(fs, "db-dsn", "", "SQL Server DSN for --db sqlserver (or ${VAR} in the YAML); prefer $OCTOHA_MSSQL_DSN", func(s *cluster.Spec, v string) { s.DB.DSN = v })
	f.text(fs, "storage", "local", "share: local (a directory) or smb (Samba)", func(s *cluster.Spec, v string) { s.Storage.Kind = v })
	f.text(fs, "network", "127.0.0", "loopback /24 to use: LB .10, nodes .11+, database .5, share .6", func(s *cluster.Spec, v string) { s.Network = v })
	f.integer(fs, "port", 8080, "HTTP port of the load balancer and of every node", func(s *cluster.Spec, v int) { s.Port = v })
	f.boolean(fs, "sticky", "cookie session stickiness at the load balancer", func(s *cluster.Spec, v bool) { s.LB.Sticky = v })
	f.text(fs, "drain", "down", "what a 418 does at HAProxy: down (expect 200) or nolb (true drain, L7OKC)", func(s *cluster.Spec, v string) { s.LB.Drain = v })
	f.duration(fs, "interval", 500*time.Millisecond, "load balancer health-check interval", func(s *cluster.Spec, v time.Duration) { s.LB.Interval = v })
	f.integer(fs, "fall", 2, "failed checks before a node is taken out", func(s *cluster.Spec, v int) { s.LB.Fall = v })
	f.integer(fs, "rise", 2, "passed checks before a node is put back", func(s *cluster.Spec, v int) { s.LB.Rise = v })
	f.boolean(fs, "toxiproxy", "put every link (client → LB, LB → node, node → database and share) through Toxiproxy, for network faults", func(s *cluster.Spec, v bool) { s.Toxiproxy = v })
	f.text(fs, "os", "linux", "operating system of the nodes: linux or windows, or one per node comma-separated (windows,linux,…)", func(s *cluster.Spec, v string) { s.Node.OS = strings.Split(v, ",") })
	f.boolean(fs, "allow-mixed-os", "allow Windows and Linux nodes in one cluster, which the seed forbids (to watch downloads fail)", func(s *cluster.Spec, v bool) { s.Node.AllowMixedOS = v })
	f.text(fs, "db-replica", "", "with --db postgres: a failover group, primary + standby behind one listener, replicating sync or async (docs/azure-sql.md)", func(s *cluster.Spec, v string) { s.DB.Replica = v })
	f.addAzure(fs)
	return f
}

// addAzure adds the lb.azure.* and storage.azureFiles spec fields as flags;
// zero means Azure's default (docs/azure.md).
func (f *specFlags) addAzure(fs *flag.FlagSet) {
	z := func(s *cluster.Spec) *cluster.AzureLBSpec { return &s.LB.Azure }
	f.duration(fs, "azure-probe-interval", 0, "lb.azure.probeInterval (azure-lb 5s, azure-appgw 30s)", func(s *cluster.Spec, v time.Duration) { z(s).ProbeInterval = v })
	f.integer(fs, "azure-probe-threshold", 0, "lb.azure.probeThreshold (azure-lb 1, azure-appgw 3)", func(s *cluster.Spec, v int) { z(s).ProbeThreshold = v })
	f.duration(fs, "azure-probe-timeout", 0, "lb.azure.probeTimeout (30s)", func(s *cluster.Spec, v time.Duration) { z(s).ProbeTimeout = v })
	f.duration(fs, "azure-idle-timeout", 0, "lb.azure.idleTimeout, azure-lb's silent idle drop (4m)", func(s *cluster.Spec, v time.Duration) { z(s).IdleTimeout = v })
	f.duration(fs, "azure-request-timeout", 0, "lb.azure.requestTimeout, azure-appgw's backend request timeout (20s)", func(s *cluster.Spec, v time.Duration) { z(s).RequestTimeout = v })
	f.duration(fs, "azure-drain-timeout", 0, "lb.azure.drainTimeout, azure-appgw's connection draining (30s)", func(s *cluster.Spec, v time.Duration) { z(s).DrainTimeout = v })
	f.boolean(fs, "azure-waf", "lb.azure.waf: azure-appgw's WAF size limits", func(s *cluster.Spec, v bool) { z(s).WAF = v })
	f.size(fs, "azure-waf-request-body-limit", "lb.azure.wafRequestBodyLimit (128KiB)", func(s *cluster.Spec) *int64 { return &z(s).WAFRequestBodyLimit })
	f.size(fs, "azure-waf-file-upload-limit", "lb.azure.wafFileUploadLimit (100MiB)", func(s *cluster.Spec) *int64 { return &z(s).WAFFileUploadLimit })
	f.text(fs, "azure-affinity", "", "lb.azure.affinity: none, clientip (azure-lb) or cookie (azure-appgw)", func(s *cluster.Spec, v string) { z(s).Affinity = v })
	f.azureFiles = fs.Bool("azure-files", false, "storage.azureFiles: shape the share links like an Azure Files standard share (needs --storage smb; turns --toxiproxy on)")
	// The storage.azureFiles fields: set after --azure-files made the section.
	af := func(s *cluster.Spec) *cluster.AzureFilesSpec { return s.Storage.AzureFiles }
	f.integer(fs, "azure-files-iops", 0, "storage.azureFiles.iops, requests per second over which requests fail (1000)", func(s *cluster.Spec, v int) { af(s).IOPS = v })
	f.size(fs, "azure-files-bandwidth", "storage.azureFiles.bandwidth per second (60MiB)", func(s *cluster.Spec) *int64 { return &af(s).Bandwidth })
	f.duration(fs, "azure-files-latency", 0, "storage.azureFiles.latency (3ms)", func(s *cluster.Spec, v time.Duration) { af(s).Latency = v })
	f.files = []string{"azure-files-iops", "azure-files-bandwidth", "azure-files-latency"}
}

// on registers what flag name sets.
func (f *specFlags) on(name string, set func(*cluster.Spec) error) {
	f.order = append(f.order, name)
	f.set[name] = set
}

func (f *specFlags) text(fs *flag.FlagSet, name, def, usage string, set func(*cluster.Spec, string)) {
	p := fs.String(name, def, usage)
	f.on(name, func(s *cluster.Spec) error { set(s, *p); return nil })
}

func (f *specFlags) boolean(fs *flag.FlagSet, name, usage string, set func(*cluster.Spec, bool)) {
	p := fs.Bool(name, false, usage)
	f.on(name, func(s *cluster.Spec) error { set(s, *p); return nil })
}

func (f *specFlags) integer(fs *flag.FlagSet, name string, def int, usage string, set func(*cluster.Spec, int)) {
	p := fs.Int(name, def, usage)
	f.on(name, func(s *cluster.Spec) error { set(s, *p); return nil })
	f.value[name] = func() int64 { return int64(*p) }
}

func (f *specFlags) duration(fs *flag.FlagSet, name string, def time.Duration, usage string, set func(*cluster.Spec, time.Duration)) {
	p := fs.Duration(name, def, usage)
	f.on(name, func(s *cluster.Spec) error { set(s, *p); return nil })
	f.value[name] = func() int64 { return int64(*p) }
}

// size is a size flag (100MiB); it must be positive.
func (f *specFlags) size(fs *flag.FlagSet, name, usage string, dst func(*cluster.Spec) *int64) {
	p := fs.String(name, "", usage)
	f.on(name, func(s *cluster.Spec) error {
		n, err := payload.ParseSize(*p)
		if err != nil || n <= 0 {
			return fmt.Errorf("%w: --%s %q: want a positive size such as 100MiB", errUsage, name, *p)
		}
		*dst(s) = n
		return nil
	})
}

// spec builds the spec: defaults, then the YAML file, then flags set.
func (f *specFlags) spec(fs *flag.FlagSet) (cluster.Spec, error) {
	s := cluster.Defaults()
	if *f.config != "" {
		var err error
		if s, err = cluster.LoadSpec(*f.config); err != nil {
			return s, err
		}
	}
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	// Normalize reads a zero as "use the default"; a zero typed on the
	// command line is a mistake, not a request for the default.
	for _, name := range []string{"nodes", "port", "fall", "rise", "interval"} {
		if set[name] && f.value[name]() <= 0 {
			return s, fmt.Errorf("%w: --%s must be positive", errUsage, name)
		}
	}
	if set["name"] || *f.config == "" {
		s.Name = *f.name
	}
	if err := f.apply(&s, set); err != nil {
		return s, err
	}
	if s.DB.Kind == cluster.DBSQLServer && s.DB.DSN == "" {
		s.DB.DSN = os.Getenv("OCTOHA_MSSQL_DSN")
	}
	if s.Provider == "" || s.Provider == cluster.ProviderLocal {
		s.Provider = cluster.ProviderLocal
	}
	n, err := s.Normalize()
	if err != nil {
		return s, fmt.Errorf("%w: %v", errUsage, err)
	}
	return n, nil
}

// apply sets the spec fields of the flags set: the storage.azureFiles ones
// after --azure-files has made (or removed) their section.
func (f *specFlags) apply(s *cluster.Spec, set map[string]bool) error {
	var errs []error
	for _, name := range f.order {
		if set[name] && !slices.Contains(f.files, name) {
			errs = append(errs, f.set[name](s))
		}
	}
	if set["azure-files"] && !*f.azureFiles {
		s.Storage.AzureFiles = nil
	}
	filesSet := *f.azureFiles
	for _, name := range f.files {
		filesSet = filesSet || set[name]
	}
	if filesSet {
		if s.Storage.AzureFiles == nil {
			s.Storage.AzureFiles = &cluster.AzureFilesSpec{}
		}
		for _, name := range f.files {
			if set[name] {
				errs = append(errs, f.set[name](s))
			}
		}
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
