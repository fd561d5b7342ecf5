package rundir

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Create makes the directory and its log; what is logged lands in the
// log, and on the echo when there is one.
func TestCreate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	var echo strings.Builder
	out, log, closeLog, err := Create(dir, &echo)
	if err != nil {
		t.Fatal(err)
	}
	log.Info("hello", "k", 1)
	closeLog()
	if !filepath.IsAbs(out) || out != dir {
		t.Errorf("out = %q, want %q", out, dir)
	}
	b, err := os.ReadFile(filepath.Join(out, LogFile))
	if err != nil || !strings.Contains(string(b), "msg=hello k=1") {
		t.Errorf("log %q, %v", b, err)
	}
	if !strings.Contains(echo.String(), "msg=hello") {
		t.Errorf("echo %q", echo.String())
	}
	if _, _, _, err := Create(filepath.Join(out, LogFile, "x"), nil); err == nil {
		t.Error("a directory under a file was created")
	}
}
