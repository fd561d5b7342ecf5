package main

import "testing"

func TestStatusDegradedExitCode(t *testing.T) {
	if (statusDegraded{[]string{"Node2 DEAD"}}).ExitCode() != 3 {
		t.Fatal("degraded must exit 3, as documented")
	}
}
