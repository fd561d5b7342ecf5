package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestLoaderFlagsRefuseWhatTheyCannotDo(t *testing.T) {
	url := "http://127.0.0.1:9"
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"attack", "--url", url, "--loaders", "2", "--engine", "nomad", "--out", "OUT"}, `--engine "nomad" is not an engine this octoha knows: use swarm`},
		{[]string{"attack", "--url", url, "--loaders", "2", "--out", "OUT"}, "--loaders needs --engine (swarm)"},
		{[]string{"attack", "--url", url, "--engine", "swarm", "--out", "OUT"}, "--engine needs --loaders N"},
		{[]string{"attack", "--url", url, "--loaders", "3", "--engine", "swarm", "--rate", "2/s", "--out", "OUT"}, "ask for at least 3 per period"},
		{[]string{"attack", "--url", url, "--loaders", "2", "--engine", "swarm", "--kill-loader", "x", "--out", "OUT"}, "--kill-loader"},
		{[]string{"upload", "--url", url, "--api-key", "API-X", "--loaders", "2", "--engine", "swarm", "--delta", "--out", "OUT"}, "cannot be split over --loaders"},
		{[]string{"upload", "--url", url, "--api-key", "API-X", "--loaders", "3", "--engine", "swarm", "--count", "2", "--out", "OUT"}, "use at most 2 loaders"},
		{[]string{"loader"}, "octoha loader is started by --loaders N --engine"},
	} {
		for i, a := range tc.args {
			if a == "OUT" {
				tc.args[i] = t.TempDir()
			}
		}
		t.Setenv("OCTOHA_LOADER_COORDINATOR", "")
		var out, errb bytes.Buffer
		if code := run(tc.args, &out, &errb); code != 2 || !strings.Contains(errb.String(), tc.want) {
			t.Fatalf("octoha %s: exit %d, stderr %q; want 2 and %q", strings.Join(tc.args, " "), code, errb.String(), tc.want)
		}
	}
}

func TestParseKill(t *testing.T) {
	k, err := parseKill("2@3s")
	if err != nil || k.Index != 2 || k.After != 3*time.Second {
		t.Fatalf("2@3s: %+v, %v", k, err)
	}
	for _, bad := range []string{"", "2", "@3s", "-1@3s", "1@soon", "1@-2s"} {
		if _, err := parseKill(bad); err == nil {
			t.Fatalf("%q accepted", bad)
		}
	}
}
