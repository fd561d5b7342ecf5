package local

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/octoha/octoha/harness/cluster"
)

// Issue 11 item 5: state.json (the spec with its DSN, the PIDs) was
// written 0644, and its DSN redaction missed query-string passwords.
func TestStateFileIsPrivateAndRedacted(t *testing.T) {
	spec := cluster.Defaults()
	spec.APIKey = "API-STATEFILEKEY12345"
	spec.DB.DSN = "postgres://octoha:pw12345@127.0.0.5/octoha?sslpassword=abcdef"
	dir := t.TempDir()
	c := &Cluster{spec: spec, dir: dir}
	if err := c.writeState(false); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, StateFile)
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && st.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", StateFile, st.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"pw12345", "abcdef", spec.APIKey} {
		if strings.Contains(string(b), secret) {
			t.Errorf("%s holds %q:\n%s", StateFile, secret, b)
		}
	}
}
