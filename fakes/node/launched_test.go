package node

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/octoha/octoha/fakes/node/launch"
)

// A launch command line the node cannot run is refused before anything is
// opened, naming the flag.
func TestCheckLaunch(t *testing.T) {
	good := func() (launch.Config, launch.Secrets) {
		lc := launch.Default()
		lc.ID, lc.Name, lc.Packages = "OctopusServerNodes-1", "Node1", t.TempDir()
		return lc, launch.Secrets{DB: "sqlite:" + t.TempDir() + "/x.db", APIKeys: []string{"API-X"}}
	}
	lc, sec := good()
	if err := CheckLaunch(lc, sec); err != nil {
		t.Fatalf("a good command line: %v", err)
	}
	for _, c := range []struct {
		edit func(*launch.Config, *launch.Secrets)
		want string
	}{
		{func(c *launch.Config, _ *launch.Secrets) { c.ID = "" }, "--id and --name are required"},
		{func(_ *launch.Config, s *launch.Secrets) { s.DB = "mysql://x" }, "must be sqlite:PATH"},
		{func(_ *launch.Config, s *launch.Secrets) { s.DB = "sqlite:" }, "must be sqlite:PATH"},
		{func(_ *launch.Config, s *launch.Secrets) { s.APIKeys = nil }, "at least one --"},
		{func(c *launch.Config, _ *launch.Secrets) { c.TaskPoll = 0 }, "--task-poll must be positive"},
		{func(c *launch.Config, _ *launch.Secrets) { c.OfflineAfter = -time.Second }, "cannot be negative"},
		{func(c *launch.Config, _ *launch.Secrets) { c.Heartbeat, c.LeaderLease = time.Second, time.Second/2 }, "must be longer than --heartbeat"},
		{func(c *launch.Config, _ *launch.Secrets) { c.LogLevel = "loud" }, "--log-level"},
		{func(c *launch.Config, _ *launch.Secrets) { c.PollingListen = "127.0.0.1:0" }, "--polling-listen needs"},
	} {
		lc, sec := good()
		c.edit(&lc, &sec)
		err := CheckLaunch(lc, sec)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("err = %v, want one saying %q", err, c.want)
		}
		if err := RunLaunched(context.Background(), lc, sec, io.Discard); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("RunLaunched: err = %v, want the same refusal %q", err, c.want)
		}
	}
}

// A database that never answers is waited for, then given up with what
// was tried.
func TestRunLaunchedGivesUpOnTheDatabase(t *testing.T) {
	lc := launch.Default()
	lc.ID, lc.Name, lc.Packages, lc.StartupTimeout = "OctopusServerNodes-1", "Node1", t.TempDir(), 300*time.Millisecond
	sec := launch.Secrets{DB: "postgres://u:secret@127.0.0.1:1/db?sslmode=disable&connect_timeout=1", APIKeys: []string{"API-X"}}
	var log strings.Builder
	err := RunLaunched(context.Background(), lc, sec, &log)
	if err == nil || !strings.Contains(err.Error(), "open shared database") {
		t.Fatalf("err = %v, want the database given up", err)
	}
	if strings.Contains(err.Error(), "secret") || strings.Contains(log.String(), "secret") {
		t.Errorf("the password leaked: %v\n%s", err, log.String())
	}
	if !strings.Contains(log.String(), "not reachable yet; retrying") {
		t.Errorf("the log does not say it waited:\n%s", log.String())
	}
}
