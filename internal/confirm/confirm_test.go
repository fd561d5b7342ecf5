package confirm

import (
	"context"
	"os"
	"strings"
	"testing"
)

// --yes proceeds after showing the plan; without a terminal (a file
// here) nothing is asked and the answer is no.
func TestTerminal(t *testing.T) {
	var out strings.Builder
	if err := Terminal(true, &out, os.Stdin)(context.Background(), "kill Node2\n"); err != nil {
		t.Fatalf("--yes: %v", err)
	}
	if !strings.Contains(out.String(), "kill Node2\n  (--yes: proceeding)") {
		t.Errorf("--yes printed %q", out.String())
	}
	f, err := os.CreateTemp(t.TempDir(), "stdin")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.WriteString("y\n")
	f.Seek(0, 0)
	out.Reset()
	err = Terminal(false, &out, f)(context.Background(), "kill Node2\n")
	if err == nil || !strings.Contains(err.Error(), "need confirmation") {
		t.Errorf("no terminal: err = %v, want a refusal", err)
	}
	if strings.Contains(out.String(), "Proceed?") {
		t.Errorf("asked without a terminal: %q", out.String())
	}
}
