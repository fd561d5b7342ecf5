package swarm

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/octoha/octoha/harness/loaders"
)

// fakeDocker is a docker CLI stand-in: it appends its argv to a log and,
// for service create, copies the env file it was given (the real CLI
// reads it before it returns); for inspect it prints canned tasks.
const fakeDocker = `#!/bin/sh
log="$(dirname "$0")/argv.log"
echo "$*" >> "$log"
if [ "$1 $2" = "service create" ]; then
  while [ $# -gt 0 ]; do
    if [ "$1" = "--env-file" ]; then cp "$2" "$(dirname "$0")/env.copy"; stat -c %a "$2" > "$(dirname "$0")/env.mode"; fi
    shift
  done
  exit 0
fi
case "$1 $2" in
  "service ps") echo t0; echo t1; echo t2 ;;
  "inspect --type") cat "$(dirname "$0")/tasks.json" ;;
  "service rm") echo "Error: No such service: x" >&2; exit 1 ;;
  "service logs") echo "the end of loader output" ;;
esac
`

func fakeEngine(t *testing.T) (*Engine, string) {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "docker")
	if err := os.WriteFile(bin, []byte(fakeDocker), 0o755); err != nil {
		t.Fatal(err)
	}
	tasks := `[{"ID":"t0","Slot":0,"Status":{"State":"running","ContainerStatus":{"ContainerID":"c0"}}},
{"ID":"t1","Slot":1,"Status":{"State":"failed","Err":"task: non-zero exit (137)","ContainerStatus":{"ContainerID":"c1","ExitCode":137}}},
{"ID":"t2","Slot":2,"Status":{"State":"complete","ContainerStatus":{"ContainerID":"c2"}}}]`
	if err := os.WriteFile(filepath.Join(dir, "tasks.json"), []byte(tasks), 0o644); err != nil {
		t.Fatal(err)
	}
	return &Engine{Docker: bin}, dir
}

func TestStartKeepsSecretsOffTheCommandLine(t *testing.T) {
	e, dir := fakeEngine(t)
	const token = "0123456789abcdef-the-token"
	ws, err := e.Start(context.Background(), loaders.WorkerSpec{
		RunID: "r1", Count: 3, Command: []string{"/octoha", "loader"}, Network: "host", Timeout: time.Hour,
		Env: map[string]string{loaders.TokenEnv: token, loaders.CoordinatorEnv: "http://127.0.0.1:5000"},
	})
	if err != nil {
		t.Fatal(err)
	}
	argv, _ := os.ReadFile(filepath.Join(dir, "argv.log"))
	if strings.Contains(string(argv), token) {
		t.Fatalf("the token is on docker's command line: %s", argv)
	}
	for _, want := range []string{"service create", "--mode replicated-job", "--replicas 3", "--restart-condition none",
		"--network host", "--entrypoint /octoha", loaders.SlotEnv + "={{.Task.Slot}}", DefaultImage + " loader", "--name octoha-loader-r1"} {
		if !strings.Contains(string(argv), want) {
			t.Fatalf("docker service create lacks %q: %s", want, argv)
		}
	}
	env, _ := os.ReadFile(filepath.Join(dir, "env.copy"))
	mode, _ := os.ReadFile(filepath.Join(dir, "env.mode"))
	if !strings.Contains(string(env), loaders.TokenEnv+"="+token+"\n") || !strings.Contains(string(env), loaders.TimeoutEnv+"=1h0m0s\n") {
		t.Fatalf("env file: %q", env)
	}
	if strings.TrimSpace(string(mode)) != "600" {
		t.Fatalf("env file mode %s, want 600", mode)
	}
	left, _ := filepath.Glob(filepath.Join(os.TempDir(), "octoha-loader-env-*"))
	for _, f := range left {
		if b, _ := os.ReadFile(f); strings.Contains(string(b), token) {
			t.Fatalf("env file %s left behind", f)
		}
	}

	sts, err := ws.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(sts) != 3 || sts[0].State != loaders.StateRunning || sts[1].State != loaders.StateFailed ||
		!strings.Contains(sts[1].Message, "exit code 137") || sts[2].State != loaders.StateComplete {
		t.Fatalf("status: %+v", sts)
	}
	if err := ws.Kill(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	if err := ws.Kill(context.Background(), 1); err == nil {
		t.Fatal("killed a task that is not running")
	}
	argv, _ = os.ReadFile(filepath.Join(dir, "argv.log"))
	if !strings.Contains(string(argv), "kill --signal KILL c0") {
		t.Fatalf("no docker kill of c0: %s", argv)
	}
	if l, err := ws.(loaders.LogReader).Logs(context.Background(), 1, 5); err != nil || !strings.Contains(l, "the end of loader output") {
		t.Fatalf("logs: %q, %v", l, err)
	}
	argv, _ = os.ReadFile(filepath.Join(dir, "argv.log"))
	if !strings.Contains(string(argv), "service logs --raw --no-task-ids --tail 5 t1") {
		t.Fatalf("no docker service logs of task t1: %s", argv)
	}
	// The service is already gone: Remove is idempotent.
	if err := ws.Remove(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestStartRefusesAnEnvironmentItCannotPass(t *testing.T) {
	e, _ := fakeEngine(t)
	_, err := e.Start(context.Background(), loaders.WorkerSpec{RunID: "r", Count: 1, Command: []string{"/octoha"},
		Env: map[string]string{"A": "two\nlines"}})
	if err == nil || !strings.Contains(err.Error(), "env file") {
		t.Fatalf("err = %v", err)
	}
	if _, err := e.Start(context.Background(), loaders.WorkerSpec{Count: 1}); err == nil {
		t.Fatal("a spec without run ID and command accepted")
	}
}

func TestStateOf(t *testing.T) {
	for in, want := range map[string]string{"new": loaders.StatePending, "starting": loaders.StatePending,
		"running": loaders.StateRunning, "complete": loaders.StateComplete, "rejected": loaders.StateFailed,
		"shutdown": loaders.StateFailed, "failed": loaders.StateFailed} {
		if got := stateOf(in); got != want {
			t.Fatalf("%s → %s, want %s", in, got, want)
		}
	}
}
