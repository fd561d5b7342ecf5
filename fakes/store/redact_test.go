package store

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
)

func TestRedactDSN(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"postgres://octoha:s3cret@127.0.0.1:5432/octoha?sslmode=disable",
			"postgres://octoha:xxxxx@127.0.0.1:5432/octoha?sslmode=disable"},
		{"postgresql://u:p%40ss@h/db", "postgresql://u:xxxxx@h/db"},
		// Unescaped specials in the password still go.
		{"postgres://u:pa@ss/w:rd@h:1/db", "postgres://u:xxxxx@h:1/db"},
		{"sqlserver://sa:Str0ng!Pass@127.0.0.1:1433?database=octoha", "sqlserver://sa:xxxxx@127.0.0.1:1433?database=octoha"},
		{"sqlserver://127.0.0.1?user+id=sa&password=hunter2&database=x", "sqlserver://127.0.0.1?user+id=sa&password=xxxxx&database=x"},
		{"postgres://h/db?sslmode=disable&PASSWORD=abc", "postgres://h/db?sslmode=disable&PASSWORD=xxxxx"},
		{"host=h user=u password=abc dbname=d", "host=h user=u password=xxxxx dbname=d"},
		{"host=h password='a b c' dbname=d", "host=h password=xxxxx dbname=d"},
		{"server=h;user id=sa;pwd=abc;database=d", "server=h;user id=sa;pwd=xxxxx;database=d"},
		// Nothing to redact.
		{"postgres://u@h/db", "postgres://u@h/db"},
		{"sqlite:/tmp/octoha.db", "sqlite:/tmp/octoha.db"},
		{"sqlite:/tmp/a@b:c.db", "sqlite:/tmp/a@b:c.db"},
		{"", ""},
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
	s := secrets("sqlserver://sa:abc@h?password=defg")
	sort.Strings(s)
	if fmt.Sprint(s) != "[abc defg]" {
		t.Fatalf("secrets = %v", s)
	}
	if e := errors.New("x"); scrub(e, "sqlite:/x") != e {
		t.Fatal("scrub changed an error with nothing to scrub")
	}
}
