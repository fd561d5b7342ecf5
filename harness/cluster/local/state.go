package local

// Tearing down, and the state file through which other octoha processes
// find, watch and stop a cluster they do not own.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/internal/proc"
)

// Down implements cluster.Cluster: everything started is stopped (nodes
// gracefully, then killed), and the run directory is removed.
func (c *Cluster) Down(ctx context.Context) error {
	c.mu.Lock()
	if c.down {
		c.mu.Unlock()
		return nil
	}
	c.down = true
	pkgStore := c.pkgStore
	c.mu.Unlock()
	var errs []error
	if pkgStore != nil {
		_ = pkgStore.Close()
	}
	if c.lb != nil {
		if err := c.lb.Stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop load balancer: %w", err))
		}
	}
	var (
		wg    sync.WaitGroup
		errMu sync.Mutex
	)
	for _, n := range c.nodes {
		if n.p == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := n.p.Stop(ctx, 5*time.Second); err != nil {
				errMu.Lock()
				errs = append(errs, fmt.Errorf("stop node %s: %w", n.info.Name, err))
				errMu.Unlock()
			}
		}()
	}
	wg.Wait()
	for _, n := range c.nodes {
		if n.logf != nil {
			n.logf.Close()
		}
	}
	if c.tp != nil {
		if err := c.tp.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop Toxiproxy: %w", err))
		}
	}
	if c.smb != nil {
		if err := c.smb.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop Samba: %w", err))
		}
	}
	if c.pg != nil {
		if err := c.pg.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop PostgreSQL: %w", err))
		}
	}
	if c.group != nil {
		if err := c.group.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop the PostgreSQL failover group: %w", err))
		}
	}
	if err := os.RemoveAll(c.dir); err != nil {
		errs = append(errs, fmt.Errorf("remove run directory: %w", err))
	}
	return errors.Join(errs...)
}

// PIDs returns the process IDs of every child the cluster started that is
// still running.
func (c *Cluster) PIDs() []int {
	var pids []int
	for _, n := range c.nodes {
		if n.p != nil && !n.p.Exited() {
			pids = append(pids, n.p.PID())
		}
	}
	if c.lb != nil && c.lb.PID() > 0 {
		pids = append(pids, c.lb.PID())
	}
	if c.pg != nil && c.pg.PID() > 0 {
		pids = append(pids, c.pg.PID())
	}
	if c.smb != nil && c.smb.PID() > 0 {
		pids = append(pids, c.smb.PID())
	}
	if c.group != nil {
		pids = append(pids, c.group.PIDs()...)
	}
	if pid := c.tp.PID(); pid > 0 {
		pids = append(pids, pid)
	}
	return pids
}

// State is the run directory's state file: what other octoha processes
// need to show and stop a cluster they did not start. It holds no secrets;
// the API key is in a separate 0600 file.
type State struct {
	Name          string              `json:"name"`
	RunDir        string              `json:"runDir"`
	SupervisorPID int                 `json:"supervisorPid"`
	Ready         bool                `json:"ready"`
	Started       time.Time           `json:"started"`
	LBURL         string              `json:"lbURL"`
	LBKind        string              `json:"lbKind"`
	LBDir         string              `json:"lbDir"`
	Nodes         []cluster.Node      `json:"nodes"`
	Components    []cluster.Component `json:"components"`
	PIDs          []int               `json:"pids"`
	// Starts holds each recorded process's start time (clock ticks since
	// boot), so that a PID the kernel has since given to an unrelated
	// process (pid_max is often 32768) is never taken for ours: not
	// signalled by down, not reported alive by status.
	Starts map[int]uint64 `json:"starts,omitempty"`
	Spec   cluster.Spec   `json:"spec"`
	// ToxiproxySocket is the Toxiproxy API's unix socket (Spec.Toxiproxy).
	ToxiproxySocket string `json:"toxiproxySocket,omitempty"`
}

// APIKeyFile is where the run directory keeps the API key (mode 0600).
const APIKeyFile = "api-key"

func (c *Cluster) writeState(ready bool) error {
	st := State{
		Name: c.spec.Name, RunDir: c.dir, SupervisorPID: os.Getpid(), Ready: ready, Started: time.Now().UTC(),
		LBURL: c.URL(), LBKind: c.spec.LB.Kind, LBDir: filepath.Join(c.dir, "lb"),
		Nodes: c.Nodes(), Components: c.Components(), PIDs: c.PIDs(), Spec: c.spec.Redacted(),
		Starts: map[int]uint64{},
	}
	if c.tp != nil {
		st.ToxiproxySocket = c.tp.Addr()
	}
	pids := append([]int{st.SupervisorPID}, st.PIDs...)
	for _, comp := range st.Components {
		pids = append(pids, comp.PID)
	}
	for _, pid := range pids {
		if t, ok := procStart(pid); ok {
			st.Starts[pid] = t
		}
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFile(filepath.Join(c.dir, APIKeyFile), []byte(c.spec.APIKey+"\n"), 0o600); err != nil {
		return fmt.Errorf("write API key file: %w", err)
	}
	tmp := filepath.Join(c.dir, StateFile+".tmp")
	if err := writeFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	return os.Rename(tmp, filepath.Join(c.dir, StateFile))
}

// ReadState reads a run directory's state file. It refuses (ErrUnsafeRunDir)
// a run directory, base directory or state file that is a symbolic link,
// someone else's, or writable by others: whoever could write the state
// file could make down and up signal any process.
func ReadState(dir string) (*State, error) {
	if err := CheckRunDir(dir); err != nil {
		return nil, err
	}
	b, err := readFile(filepath.Join(dir, StateFile))
	if err != nil {
		return nil, err
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("parse %s: %w", filepath.Join(dir, StateFile), err)
	}
	return &st, nil
}

// Alive reports whether the process that owns the cluster is running.
func (st *State) Alive() bool { return st.Running(st.SupervisorPID) }

// Running reports whether pid is alive and still the process the state
// file recorded (same start time), not a later process that reused the PID.
// A PID without a recorded start time, or whose start time cannot be read,
// is never taken for the run's.
func (st *State) Running(pid int) bool {
	want, recorded := st.Starts[pid]
	if !recorded || !proc.Alive(pid) {
		return false
	}
	got, ok := procStart(pid)
	return ok && got == want
}

// unverifiableOwner is an error when the recorded owner's PID is in use but
// the state file holds no start time to tell whether it is still the owner
// (a state file from an older octoha, or not from octoha at all): nothing
// is signalled, the user decides.
func (st *State) unverifiableOwner() error {
	if _, recorded := st.Starts[st.SupervisorPID]; recorded || st.SupervisorPID == os.Getpid() || !proc.Alive(st.SupervisorPID) {
		return nil
	}
	return fmt.Errorf("the state file in %s names pid %d as the cluster's owner but records no start time, so octoha cannot tell "+
		"whether that process is the owner or an unrelated one and signals nothing; if it is the owner, stop it yourself, then run octoha down again",
		st.RunDir, st.SupervisorPID)
}

// killAll kills every recorded child still running (after the owner died):
// only PIDs whose start time was recorded and matches (Running).
func (st *State) killAll() {
	for _, pid := range st.PIDs {
		if st.Running(pid) {
			_ = proc.KillPID(pid)
			continue
		}
		// A child that died before us (its owner was SIGKILLed, and
		// Pdeathsig took it) may have left its own children in the group
		// we created for it: nginx workers outlive their master.
		if start, ok := st.Starts[pid]; ok {
			_, _ = proc.KillOrphanedGroup(pid, start)
		}
	}
}

// procStart reads a process's start time (proc.StartTime); ok is false
// when it cannot be read.
func procStart(pid int) (uint64, bool) { return proc.StartTime(pid) }

// ReadAPIKey reads the run directory's API key.
func ReadAPIKey(dir string) (string, error) {
	if err := CheckRunDir(dir); err != nil {
		return "", fmt.Errorf("read API key: %w", err)
	}
	b, err := readFile(filepath.Join(dir, APIKeyFile))
	if err != nil {
		return "", fmt.Errorf("read API key: %w", err)
	}
	return string(trimNL(b)), nil
}

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// DownDir stops the cluster owned by another process: it signals the owner
// (which tears down), waits for it, kills any child that survived, and
// removes the run directory.
func DownDir(ctx context.Context, dir string) error {
	st, err := ReadState(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("no cluster in %s (no %s)", dir, StateFile)
		}
		return err
	}
	if err := st.unverifiableOwner(); err != nil {
		return err
	}
	if st.Alive() && st.SupervisorPID != os.Getpid() {
		_ = proc.SignalPID(st.SupervisorPID, syscall.SIGTERM)
		for st.Alive() {
			select {
			case <-ctx.Done():
				_ = proc.KillPID(st.SupervisorPID)
				return fmt.Errorf("cluster owner (pid %d) did not stop: %w", st.SupervisorPID, ctx.Err())
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	// Re-read: the owner may have restarted nodes since.
	if st2, err := ReadState(dir); err == nil {
		st = st2
	}
	st.killAll()
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove run directory: %w", err)
	}
	return nil
}
