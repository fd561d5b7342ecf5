package node_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/octoha/octoha/internal/proc"
	"github.com/octoha/octoha/internal/testbin"
	"github.com/octoha/octoha/octopusapi"
)

// taskProc is an `octoha node` process of the task test cluster.
type taskProc struct {
	name, url string
	p         *proc.Process
	log       *bytes.Buffer
}

// startTaskNodes starts n node processes on 127.0.110.11.. sharing one
// SQLite database and one directory of stores, with fast task timings and
// any extra flags.
func startTaskNodes(t *testing.T, n int, extra ...string) []*taskProc {
	t.Helper()
	bin, err := testbin.Octoha()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var hosts []string
	for i := range n {
		hosts = append(hosts, "127.0.110."+strconv.Itoa(11+i))
	}
	port := freePortOnBoth(t, hosts...)
	var out []*taskProc
	for i := range n {
		name := "Node" + strconv.Itoa(i+1)
		var logBuf bytes.Buffer
		addr := net.JoinHostPort(hosts[i], strconv.Itoa(port))
		args := []string{"node", "--id", "OctopusServerNodes-" + strconv.Itoa(i+1), "--name", name, "--listen", addr,
			"--packages", filepath.Join(dir, "Packages"), "--tasklogs", filepath.Join(dir, "TaskLogs"),
			"--artifacts", filepath.Join(dir, "Artifacts"), "--max-concurrent-tasks", "3",
			"--heartbeat", "200ms", "--unhealthy-after", "1s", "--task-poll", "200ms",
			"--leader-lease", "1s", "--offline-after", "2s", "--retention-interval", "0s"}
		p, err := proc.Start(proc.Spec{
			Name: name, Path: bin, Log: &syncWriter{w: &logBuf},
			Args: append(args, extra...),
			Env:  append(os.Environ(), "OCTOHA_DB=sqlite:"+filepath.Join(dir, "octopus.db"), "OCTOHA_API_KEY="+procKey),
		})
		if err != nil {
			t.Fatal(err)
		}
		tp := &taskProc{name: name, url: "http://" + addr, p: p, log: &logBuf}
		t.Cleanup(func() {
			_ = p.Resume()
			_ = p.Kill(context.Background())
			if t.Failed() {
				t.Logf("%s log:\n%s", name, logBuf.String())
			}
		})
		np := &nodeProc{name: name, url: tp.url, p: p, log: &logBuf}
		np.waitPing(t, 200, 30*time.Second)
		out = append(out, tp)
	}
	return out
}

func (n *taskProc) getJSON(t *testing.T, path string, out any) bool {
	t.Helper()
	code, body, _ := request(t, "GET", n.url+path, nil)
	return code == 200 && json.Unmarshal(body, out) == nil
}

// leaderSeenBy returns the node list's leader as n sees it ("" for none),
// failing the test if it shows two.
func (n *taskProc) leaderSeenBy(t *testing.T) string {
	t.Helper()
	var nodes []octopusapi.Node
	if !n.getJSON(t, octopusapi.NodesAllPath, &nodes) {
		return ""
	}
	var leaders []string
	for _, x := range nodes {
		if x.Rank == octopusapi.RankLeader {
			leaders = append(leaders, x.Name)
		}
	}
	if len(leaders) > 1 {
		t.Fatalf("%s lists two leaders: %v", n.name, leaders)
	}
	if len(leaders) == 0 {
		return ""
	}
	return leaders[0]
}

func poll(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("not within %v: %s", within, what)
		}
		time.Sleep(20 * time.Millisecond) // polling a condition with a deadline
	}
	return time.Since(start)
}

// Node processes with the task flags: a paused leader is replaced within
// the lease, its tasks are Failed once it has been offline for
// --offline-after, and when it resumes it stops those runs and is a
// follower; a killed leader is replaced the same way.
func TestTaskNodeProcessesPauseAndKillLeader(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping node processes")
	}
	nodes := startTaskNodes(t, 3)
	byName := map[string]*taskProc{}
	for _, n := range nodes {
		byName[n.name] = n
	}
	var leader string
	poll(t, 5*time.Second, "a leader", func() bool { leader = nodes[0].leaderSeenBy(t); return leader != "" })
	paused := byName[leader]
	var other *taskProc
	for _, n := range nodes {
		if n != paused {
			other = n
			break
		}
	}
	for range 9 {
		b, _ := json.Marshal(octopusapi.TaskCreate{Name: octopusapi.TaskKindHealth, Arguments: octopusapi.TaskArguments{DurationMs: 30_000}})
		if code, body, _ := request(t, "POST", other.url+octopusapi.TasksPath, bytes.NewReader(b)); code != 201 {
			t.Fatalf("create: %d %s", code, body)
		}
	}
	running := func(node string) int {
		var p octopusapi.Page[octopusapi.Task]
		if !other.getJSON(t, octopusapi.TaskListQuery([]string{octopusapi.TaskExecuting}, node, nil, 0, 0), &p) {
			return -1
		}
		return p.TotalResults
	}
	poll(t, 5*time.Second, "all nine tasks running, three per node", func() bool { return running("") == 9 })
	if n := running(paused.name); n != 3 {
		t.Fatalf("the leader runs %d tasks, want its cap 3", n)
	}

	if err := paused.p.Pause(); err != nil {
		t.Fatal(err)
	}
	pausedAt := time.Now()
	took := poll(t, 5*time.Second, "a new leader after the pause", func() bool {
		l := other.leaderSeenBy(t)
		return l != "" && l != paused.name
	})
	t.Logf("FIGURE leader paused: new leader %s after %v (lease 1s, heartbeat 200ms)", other.leaderSeenBy(t), took)
	poll(t, 10*time.Second, "the paused node's tasks Failed", func() bool { return running(paused.name) == 0 })
	t.Logf("FIGURE leader paused: its 3 tasks Failed %v after the pause (offline-after 2s)", time.Since(pausedAt))
	var p octopusapi.Page[octopusapi.Task]
	other.getJSON(t, octopusapi.TaskListQuery([]string{octopusapi.TaskFailed}, paused.name, nil, 0, 0), &p)
	if p.TotalResults != 3 {
		t.Fatalf("%d of the paused node's tasks Failed, want 3", p.TotalResults)
	}
	for _, tk := range p.Items {
		if !strings.Contains(tk.ErrorMessage, "The server node "+paused.name+" running this task went offline") {
			t.Errorf("%s: %q", tk.Id, tk.ErrorMessage)
		}
	}

	// Back from the pause: a follower, and its runs of the failed tasks
	// end within a poll, logged as Failed.
	if err := paused.p.Resume(); err != nil {
		t.Fatal(err)
	}
	poll(t, 5*time.Second, "the resumed node's runs to end", func() bool {
		for _, tk := range p.Items {
			code, body, _ := request(t, "GET", other.url+octopusapi.TaskRawPath(tk.Id), nil)
			ex, _ := octopusapi.ParseTaskLog(bytes.NewReader(body))
			if code != 200 || len(ex) != 1 || ex[0].End.IsZero() {
				return false
			}
			if ex[0].State != octopusapi.TaskFailed {
				t.Fatalf("%s: the resumed node ended its run as %s", tk.Id, ex[0].State)
			}
		}
		return true
	})
	for range 10 {
		if l := paused.leaderSeenBy(t); l == paused.name {
			t.Fatal("the resumed node calls itself leader")
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Kill -9 the current leader.
	cur := byName[other.leaderSeenBy(t)]
	var watcher *taskProc
	for _, n := range nodes {
		if n != cur {
			watcher = n
			break
		}
	}
	if err := cur.p.Kill(context.Background()); err != nil {
		t.Fatal(err)
	}
	killedAt := time.Now()
	took = poll(t, 5*time.Second, "a new leader after the kill", func() bool {
		l := watcher.leaderSeenBy(t)
		return l != "" && l != cur.name
	})
	t.Logf("FIGURE leader killed: new leader %s after %v", watcher.leaderSeenBy(t), took)
	poll(t, 10*time.Second, "the killed node's tasks Failed", func() bool {
		var p octopusapi.Page[octopusapi.Task]
		return watcher.getJSON(t, octopusapi.TaskListQuery([]string{octopusapi.TaskExecuting}, cur.name, nil, 0, 0), &p) && p.TotalResults == 0
	})
	t.Logf("FIGURE leader killed: its tasks Failed %v after the kill", time.Since(killedAt))
}

// The broken control through the real command line: two `octoha node
// --unsafe-task-claim` processes run the same tasks at once.
func TestTaskNodeProcessesUnsafeClaim(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping node processes")
	}
	nodes := startTaskNodes(t, 2, "--unsafe-task-claim")
	a := nodes[0]
	var ids []string
	for range 3 {
		b, _ := json.Marshal(octopusapi.TaskCreate{Name: octopusapi.TaskKindHealth, Arguments: octopusapi.TaskArguments{DurationMs: 500}})
		code, body, _ := request(t, "POST", a.url+octopusapi.TasksPath, bytes.NewReader(b))
		var tk octopusapi.Task
		if code != 201 || json.Unmarshal(body, &tk) != nil {
			t.Fatalf("create: %d %s", code, body)
		}
		ids = append(ids, tk.Id)
	}
	poll(t, 10*time.Second, "every task to finish", func() bool {
		var p octopusapi.Page[octopusapi.Task]
		return a.getJSON(t, octopusapi.TaskListQuery([]string{octopusapi.TaskSuccess}, "", nil, 0, 0), &p) && p.TotalResults == len(ids)
	})
	doubled := 0
	for _, id := range ids {
		_, body, _ := request(t, "GET", a.url+octopusapi.TaskRawPath(id), nil)
		ex, _ := octopusapi.ParseTaskLog(bytes.NewReader(body))
		if len(ex) == 2 && ex[0].Node != ex[1].Node && ex[1].Start.Before(ex[0].End) {
			doubled++
		}
	}
	if doubled == 0 {
		t.Fatal("no task ran on both unsafe nodes at once")
	}
	t.Logf("%d of %d tasks ran twice at once", doubled, len(ids))
}
