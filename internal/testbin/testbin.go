// Package testbin builds the octoha binary once per test process, for tests
// that run nodes as real processes (so a kill is a real kill). It is only
// imported by tests.
package testbin

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

var (
	once sync.Once
	path string
	dir  string
	err  error
)

// Octoha returns the path of a freshly built octoha binary. If $OCTOHA_BIN
// names an executable it is used as is (CI builds once with make build).
func Octoha() (string, error) {
	once.Do(func() {
		if p := os.Getenv("OCTOHA_BIN"); p != "" {
			if st, serr := os.Stat(p); serr == nil && !st.IsDir() {
				path, err = filepath.Abs(p)
				return
			}
		}
		root, rerr := moduleRoot()
		if rerr != nil {
			err = rerr
			return
		}
		dir, err = os.MkdirTemp("", "octoha-testbin-")
		if err != nil {
			return
		}
		path = filepath.Join(dir, "octoha")
		cmd := exec.Command("go", "build", "-o", path, "./cmd/octoha")
		cmd.Dir = root
		out, berr := cmd.CombinedOutput()
		if berr != nil {
			err = fmt.Errorf("build octoha: %v\n%s", berr, out)
		}
	})
	return path, err
}

// Cleanup removes a binary built by Octoha; call it from TestMain.
func Cleanup() {
	if dir != "" {
		_ = os.RemoveAll(dir)
	}
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("not inside the octoha module")
	}
	return filepath.Dir(mod), nil
}
