package local

import (
	"net/http"
	"testing"
)

func TestNodeSummary(t *testing.T) {
	yes, no := true, false
	for want, n := range map[string]NodeStatus{
		"OK":            {Ping: http.StatusOK, LBState: "UP", ProcessLive: &yes},
		"DEAD":          {Ping: 0, LBState: "DOWN", ProcessLive: &no},
		"NOT ANSWERING": {Ping: 0, LBState: "UP", ProcessLive: &yes},
		"DRAINING":      {Ping: http.StatusTeapot, LBState: "DOWN", Draining: &yes},
		"UNHEALTHY":     {Ping: http.StatusServiceUnavailable, LBState: "DOWN"},
		"OUT":           {Ping: http.StatusOK, LBState: "MAINT"},
	} {
		if got := nodeSummary(n); got != want {
			t.Errorf("%+v: state %q, want %q", n, got, want)
		}
	}
	// An LB whose view cannot be read does not make a serving node degraded.
	if got := nodeSummary(NodeStatus{Ping: http.StatusOK, LBState: "UNKNOWN"}); got != "OK" {
		t.Errorf("unknown LB view: %q", got)
	}
}
