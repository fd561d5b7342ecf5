package rundir

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
)

// LogFile is the run's detailed log, at the top of its directory.
const LogFile = "octoha.log"

// Create makes the run directory dir (absolute on return) and its
// octoha.log, returning a logger that writes there, and also to echo when
// it is not nil, and the function that closes the log.
func Create(dir string, echo io.Writer) (string, *slog.Logger, func(), error) {
	out, err := filepath.Abs(dir)
	if err != nil {
		return "", nil, nil, err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return "", nil, nil, fmt.Errorf("create the output directory: %w", err)
	}
	logFile, err := os.Create(filepath.Join(out, LogFile))
	if err != nil {
		return "", nil, nil, fmt.Errorf("create the log: %w", err)
	}
	var logW io.Writer = logFile
	if echo != nil {
		logW = io.MultiWriter(logFile, echo)
	}
	logger := slog.New(slog.NewTextHandler(logW, &slog.HandlerOptions{Level: slog.LevelInfo}))
	return out, logger, func() { logFile.Close() }, nil
}
