package store

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/octoha/octoha/internal/redact"
)

// The forms themselves are table-tested in internal/redact; this checks
// that the store uses that redactor, on the forms it accepts.
func TestRedactDSN(t *testing.T) {
	const R = redact.Mark
	for _, tc := range []struct{ in, want string }{
		{"postgres://octoha:s3cret@127.0.0.1:5432/octoha?sslmode=disable&sslpassword=abc",
			"postgres://octoha:" + R + "@127.0.0.1:5432/octoha?sslmode=disable&sslpassword=" + R},
		{"sqlserver://sa:Str0ng!Pass@127.0.0.1:1433?database=octoha&password=xyz",
			"sqlserver://sa:" + R + "@127.0.0.1:1433?database=octoha&password=" + R},
		{"postgres://u:pa?ss@h/db", "postgres://u:" + R + "@h/db"},
		{"sqlite:/tmp/a@b:c.db", "sqlite:/tmp/a@b:c.db"},
	} {
		if got := RedactDSN(tc.in); got != tc.want {
			t.Errorf("RedactDSN(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestScrub(t *testing.T) {
	dsn := "postgres://u:p%40ssword@h/db"
	base := errors.New("inner")
	err := scrub(fmt.Errorf("connect to postgres://u:p%%40ssword@h/db (pw p@ssword): %w", base), dsn)
	if strings.Contains(err.Error(), "ssword") {
		t.Fatalf("scrubbed error still has the password: %v", err)
	}
	if !errors.Is(err, base) {
		t.Fatal("scrub broke the error chain")
	}
	if e := errors.New("x"); scrub(e, "sqlite:/x") != e {
		t.Fatal("scrub changed an error with nothing to scrub")
	}
}
