package cluster

import (
	"strings"
	"testing"
	"time"
)

func TestAzureSpec(t *testing.T) {
	s, err := ParseSpec([]byte("lb:\n  kind: azure-appgw\n  azure:\n    requestTimeout: 2m\n    affinity: cookie\n    waf: true\nstorage:\n  kind: smb\n  azureFiles: {}\n"))
	if err != nil {
		t.Fatal(err)
	}
	n, err := s.Normalize()
	if err != nil {
		t.Fatal(err)
	}
	if a := n.LB.Azure.Options(); a.RequestTimeout != 2*time.Minute || a.Affinity != "cookie" || !a.WAF {
		t.Errorf("lb.azure %+v", a)
	}
	if f := n.Storage.AzureFiles; f == nil || f.IOPS != 1000 || f.Bandwidth != 60<<20 || f.Latency != 3*time.Millisecond || !n.Toxiproxy {
		t.Errorf("azureFiles %+v toxiproxy %v: want Azure's defaults and Toxiproxy on", f, n.Toxiproxy)
	}
	for _, tc := range []struct {
		yaml, want string
	}{
		{"lb:\n  kind: haproxy\n  azure:\n    idleTimeout: 5m\n", "lb.azure is for lb.kind azure-lb or azure-appgw"},
		{"lb:\n  kind: azure-lb\n  azure:\n    affinity: cookie\n", "client IP"},
		{"lb:\n  kind: azure-lb\n  azure:\n    probeInterval: 1s\n", "5s minimum"},
		{"provider: docker\nlb:\n  kind: azure-lb\n", "docker provider cannot run it"},
		{"storage:\n  kind: local\n  azureFiles: {}\n", "needs storage.kind smb"},
	} {
		s, err := ParseSpec([]byte(tc.yaml))
		if err == nil {
			_, err = s.Normalize()
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err %v, want %q", tc.yaml, err, tc.want)
		}
	}
}
