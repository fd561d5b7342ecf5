package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Issue 11 item 4: --url 'http://h/?apikey=…' was rejected with the key in
// the error, and a user:password in --url went verbatim into
// history.jsonl, the results files and the console.
func TestTrafficCommandsKeepURLSecretsOut(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir()) // no cluster named default here
	const key, password = "API-CMDLINEKEY123456", "hunter2cmdline"
	srv := newTrafficTestServer(t)

	var stdout, stderr bytes.Buffer
	err := runAttack(t.Context(), []string{"--url", srv.URL + "/?apikey=" + key, "--duration", "100ms"}, &stdout, &stderr)
	if !errors.Is(err, errUsage) || strings.Contains(err.Error(), key) || strings.Contains(stderr.String(), key) {
		t.Errorf("attack with ?apikey=: err %v, stderr %q", err, &stderr)
	}

	withUser := strings.Replace(srv.URL, "http://", "http://octo:"+password+"@", 1)
	dir := t.TempDir()
	stdout.Reset()
	stderr.Reset()
	if err := runAttack(t.Context(), []string{"--url", withUser, "--rate", "20/s", "--duration", "200ms", "--out", dir}, &stdout, &stderr); err != nil {
		t.Fatalf("attack: %v\n%s", err, &stderr)
	}
	t.Setenv(trafficAPIKeyEnv, key)
	if err := runUpload(t.Context(), []string{"--url", withUser, "--size", "1KiB", "--count", "1", "--out", dir}, &stdout, &stderr); err != nil {
		t.Fatalf("upload: %v\n%s", err, &stderr)
	}
	if strings.Contains(stdout.String()+stderr.String(), password) {
		t.Errorf("the console shows the password:\n%s\n%s", &stdout, &stderr)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	if len(files) < 3 {
		t.Fatalf("run directory holds %q", files)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // a directory or a lock
		}
		if bytes.Contains(b, []byte(password)) || bytes.Contains(b, []byte(key)) {
			t.Errorf("%s holds a secret", filepath.Base(f))
		}
	}
}
