package main

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

// Only the flags given override the spec; a typed zero is refused; the
// Azure sections are made by the flags that need them.
func TestSpecFlags(t *testing.T) {
	parse := func(args ...string) (*specFlags, error) {
		fs := newFlagSet("up", io.Discard)
		sf := addSpecFlags(fs)
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		return sf, nil
	}
	build := func(args ...string) (string, error) {
		fs := newFlagSet("up", io.Discard)
		sf := addSpecFlags(fs)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		s, err := sf.spec(fs)
		if err != nil {
			return "", err
		}
		var b strings.Builder
		b.WriteString(s.Name + " " + s.LB.Kind + " " + s.DB.Kind + " " + s.Storage.Kind + " " + strings.Join(s.Node.OS, ","))
		if s.Storage.AzureFiles != nil {
			f := s.Storage.AzureFiles
			b.WriteString(" files:" + time.Duration(f.Latency).String())
			if f.IOPS == 77 && f.Bandwidth == 1<<20 {
				b.WriteString(",set")
			}
		}
		return b.String(), nil
	}
	if _, err := parse(); err != nil {
		t.Fatal(err)
	}
	got, err := build("--name", "c1", "--nodes", "2", "--lb", "nginx", "--os", "linux,linux")
	if err != nil || got != "c1 nginx sqlite local linux,linux" {
		t.Errorf("flags: %q, %v", got, err)
	}
	for _, bad := range [][]string{{"--nodes", "0"}, {"--interval", "0s"}, {"--azure-waf-request-body-limit", "lots"}} {
		if _, err := build(bad...); !errors.Is(err, errUsage) {
			t.Errorf("%v: err = %v, want a usage error", bad, err)
		}
	}
	got, err = build("--storage", "smb", "--azure-files-iops", "77", "--azure-files-bandwidth", "1MiB", "--azure-files-latency", "5ms")
	if err != nil || !strings.HasSuffix(got, "files:5ms,set") {
		t.Errorf("azure files: %q, %v", got, err)
	}
	got, err = build("--storage", "smb", "--azure-files=false")
	if err != nil || strings.Contains(got, "files:") {
		t.Errorf("--azure-files=false: %q, %v", got, err)
	}
}
