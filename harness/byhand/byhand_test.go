package byhand

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/octoha/octoha/harness/cluster/local"
	"github.com/octoha/octoha/harness/history"
)

// An action is checked against the table before any cluster is looked
// for: unknown actions, a missing or stray --node, --for on a recovery.
func TestFaultOptionsResolve(t *testing.T) {
	for _, c := range []struct {
		o    FaultOptions
		want string
	}{
		{FaultOptions{Action: "explode"}, "unknown action"},
		{FaultOptions{Action: "kill"}, "kill needs --node"},
		{FaultOptions{Action: "db-stop", Node: "Node1"}, "db-stop takes no --node"},
		{FaultOptions{Action: "start", Node: "Node1", Hold: time.Second}, "--for takes a positive duration"},
		{FaultOptions{Action: "kill", Node: "Node1", Hold: -time.Second}, "--for takes a positive duration"},
	} {
		_, err := c.o.resolve()
		if !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: err = %v, want a usage error saying %q", c.o, err, c.want)
		}
	}
	for _, o := range []FaultOptions{{Action: "kill", Node: "Node1"}, {Action: "heal"}, {Action: "heal", Node: "Node2"}, {Action: "latency@db,latency=300ms", Node: "Node1"}} {
		if _, err := o.resolve(); err != nil {
			t.Errorf("%+v: %v", o, err)
		}
	}
	for action, want := range map[string]string{"kill": "start", "stop": "start", "pause": "resume", "drain": "undrain", "db-stop": "db-start", "latency@db": "heal"} {
		if got := recoveryOf(action); got != want {
			t.Errorf("recoveryOf(%s) = %q, want %q", action, got, want)
		}
	}
}

// Commands sharing an output directory join one history under their own
// names, each with its own results file; the default directory is one per
// cluster lifetime under Root.
func TestOpenSharesOneHistory(t *testing.T) {
	t.Setenv(RunsDirEnv, t.TempDir())
	st := &local.State{Name: "c1", SupervisorPID: 42, RunDir: "/run/c1", LBURL: "http://127.0.0.10:8080"}
	dir := DefaultOutDir(st, "ignored")
	if dir != filepath.Join(Root(), "c1-42") {
		t.Fatalf("DefaultOutDir = %s", dir)
	}
	if got := DefaultOutDir(nil, "x"); got != filepath.Join(Root(), "by-hand") {
		t.Errorf("DefaultOutDir(nil) = %s", got)
	}
	a, err := Open(dir, "upload", st, history.Command{}, true)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Open(dir, "upload", st, history.Command{}, true)
	if err != nil {
		t.Fatal(err)
	}
	if a.Name == b.Name || a.ResultsPath() == b.ResultsPath() || a.HistoryPath() != b.HistoryPath() {
		t.Errorf("names %s, %s; results %s, %s", a.Name, b.Name, a.ResultsPath(), b.ResultsPath())
	}
	for _, x := range []*Artefacts{a, b} {
		if err := x.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(x.ResultsPath()); err != nil {
			t.Error(err)
		}
	}
	h, err := history.Load(a.HistoryPath())
	if err != nil || len(h.Commands) != 2 {
		t.Fatalf("history: %v, %d commands", err, len(h.Commands))
	}
	// A root anyone may write to is refused: under a shared /tmp anyone
	// could have made it first.
	if runtime.GOOS == "windows" {
		return // per-user temporary directories are private there
	}
	if err := os.Chmod(Root(), 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(filepath.Join(Root(), "c2-1"), "fault", st, history.Command{}, false); err == nil || !strings.Contains(err.Error(), "writable by others") {
		t.Errorf("a world-writable root: err = %v", err)
	}
}

// The Packages directory is the Samba share's for smb storage, else the
// share component's, else the run directory's.
func TestPackagesDir(t *testing.T) {
	st := &local.State{RunDir: "/run/c"}
	if got := PackagesDir(st); got != "/run/c/share/Packages" {
		t.Errorf("default: %s", got)
	}
	st.Spec.Storage.Kind = "smb"
	if got := PackagesDir(st); got != "/run/c/samba/share/Packages" {
		t.Errorf("smb: %s", got)
	}
}

// The API key: the flag's, else the cluster's file, else the environment.
func TestAPIKey(t *testing.T) {
	t.Setenv("OCTOHA_API_KEY", "API-ENV")
	if got := APIKey("API-FLAG", nil); got != "API-FLAG" {
		t.Errorf("flag: %s", got)
	}
	if got := APIKey("", &local.State{RunDir: t.TempDir()}); got != "API-ENV" {
		t.Errorf("no key file: %s", got)
	}
}
