package main

import (
	"net/http"
	"testing"
)

func TestNodeState(t *testing.T) {
	yes, no := true, false
	for want, n := range map[string]nodeStatus{
		"OK":            {Ping: http.StatusOK, LBState: "UP", ProcessLive: &yes},
		"DEAD":          {Ping: 0, LBState: "DOWN", ProcessLive: &no},
		"NOT ANSWERING": {Ping: 0, LBState: "UP", ProcessLive: &yes},
		"DRAINING":      {Ping: http.StatusTeapot, LBState: "DOWN", Draining: &yes},
		"UNHEALTHY":     {Ping: http.StatusServiceUnavailable, LBState: "DOWN"},
		"OUT":           {Ping: http.StatusOK, LBState: "MAINT"},
	} {
		if got := nodeState(n); got != want {
			t.Errorf("%+v: state %q, want %q", n, got, want)
		}
	}
	// An LB whose view cannot be read does not make a serving node degraded.
	if got := nodeState(nodeStatus{Ping: http.StatusOK, LBState: "UNKNOWN"}); got != "OK" {
		t.Errorf("unknown LB view: %q", got)
	}
}

func TestStatusDegradedExitCode(t *testing.T) {
	if (statusDegraded{[]string{"Node2 DEAD"}}).ExitCode() != 3 {
		t.Fatal("degraded must exit 3, as documented")
	}
}
