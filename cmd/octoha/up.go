package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/cluster/local"
)

func runUp(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("up", stderr)
	sf := addSpecFlags(fs)
	runDir := fs.String("run-dir", "", "run directory (default /tmp/octoha-<uid>/<name>)")
	detach := fs.Bool("detach", false, "return once the cluster is ready, leaving it running (stop it with octoha down)")
	timeout := fs.Duration("timeout", 90*time.Second, "how long to wait for the cluster to become ready")
	verbose := fs.Bool("v", false, "verbose progress logs")
	supervise := fs.Bool("supervise", false, "internal: run as the detached cluster's owner")
	supLog := fs.String("supervisor-log", "", "internal: log file to move into the run directory")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := local.Supported(); err != nil {
		return err
	}
	spec, err := sf.spec(fs)
	if err != nil {
		return err
	}
	if spec.Provider != cluster.ProviderLocal {
		return fmt.Errorf("%w: octoha up runs the local provider (spec says %q); scenarios use the others", errUsage, spec.Provider)
	}
	dir := *runDir
	if dir == "" {
		dir = local.DefaultRunDir(spec.Name)
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return err
	}
	level := slog.LevelWarn
	if *verbose || *supervise {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	if *detach {
		return upDetached(ctx, args, dir, *timeout, stdout)
	}
	start := time.Now()
	c, err := local.Up(ctx, spec, local.Options{RunDir: dir, Binary: nodeBinary(), Logger: log, ReadyTimeout: *timeout})
	if err != nil {
		return err
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if err := c.Down(dctx); err != nil {
			fmt.Fprintf(stderr, "octoha up: teardown: %v\n", err)
		}
	}()
	// octoha fault (and certification hooks) reach the nodes through the
	// owner, which alone can start them again.
	ctlCtx, stopCtl := context.WithCancel(context.WithoutCancel(ctx))
	ctlDone := make(chan struct{})
	go func() {
		defer close(ctlDone)
		if err := c.ServeControl(ctlCtx); err != nil {
			log.Warn("control socket unavailable: octoha fault cannot reach this cluster", "err", err)
		}
	}()
	defer func() { stopCtl(); <-ctlDone }()
	if *supervise {
		if *supLog != "" {
			_ = os.MkdirAll(filepath.Join(dir, "logs"), 0o755)
			_ = os.Rename(*supLog, filepath.Join(dir, "logs", "supervisor.log"))
		}
		log.Info("cluster owner running; stop with octoha down", "runDir", dir)
		<-ctx.Done()
		log.Info("stopping cluster")
		return nil
	}
	st, err := local.ReadState(dir)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "cluster %q ready in %.1fs\n\n", spec.Name, time.Since(start).Seconds())
	st.WriteEndpoints(stdout)
	fmt.Fprintf(stdout, "\nRunning in the foreground; Ctrl-C stops everything and removes %s.\n", dir)
	<-ctx.Done()
	fmt.Fprintln(stdout, "\nstopping…")
	return nil
}

// nodeBinary is the executable that runs the nodes: $OCTOHA_BIN if set
// (left to the provider), else this very binary, whatever it is called
// (the provider alone only trusts an executable named "octoha", since
// under go test the current executable is a test binary).
func nodeBinary() string {
	if os.Getenv(local.EnvBinary) != "" {
		return ""
	}
	exe, err := os.Executable()
	if err != nil {
		return "" // the provider then says how to point it at octoha
	}
	return exe
}

// upDetached starts `octoha up --supervise` as a session leader that owns
// the cluster (local.StartOwner), waits until it reports ready, prints the
// endpoints and returns. `octoha down` signals the owner to tear down.
func upDetached(ctx context.Context, args []string, dir string, timeout time.Duration, stdout io.Writer) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own executable: %w", err)
	}
	childArgs := func(logPath string) []string {
		a := []string{"up"}
		for _, arg := range args {
			if arg != "--detach" && arg != "-detach" && arg != "--detach=true" && arg != "-detach=true" {
				a = append(a, arg)
			}
		}
		return append(a, "--run-dir", dir, "--supervise", "--supervisor-log", logPath)
	}
	start := time.Now()
	st, err := local.StartOwner(ctx, local.OwnerOptions{Dir: dir, Path: exe, Args: childArgs, Timeout: timeout})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "cluster %q ready in %.1fs (owner pid %d)\n\n", st.Name, time.Since(start).Seconds(), st.SupervisorPID)
	st.WriteEndpoints(stdout)
	fmt.Fprintf(stdout, "\nStop it with: octoha down --run-dir %s\n", dir)
	return nil
}
