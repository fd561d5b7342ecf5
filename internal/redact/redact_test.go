package redact

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// TestDSN covers every DSN form the drivers accept (go-mssqldb: URL, ADO
// and ODBC; pgx: URL and keyword/value; SQLite: paths with a query) and
// the URLs the harness writes.
func TestDSN(t *testing.T) {
	const R = Mark
	for _, tc := range []struct{ name, in, want string }{
		// go-mssqldb, URL form.
		{"mssql url", "sqlserver://sa:Str0ng!Pass@127.0.0.1:1433?database=octoha",
			"sqlserver://sa:" + R + "@127.0.0.1:1433?database=octoha"},
		{"mssql url instance", "sqlserver://sa:p%40ss@host/SQLEXPRESS?database=x&encrypt=disable",
			"sqlserver://sa:" + R + "@host/SQLEXPRESS?database=x&encrypt=disable"},
		{"mssql url query password", "sqlserver://127.0.0.1?user+id=sa&password=hunter2&database=x",
			"sqlserver://127.0.0.1?user+id=sa&password=" + R + "&database=x"},
		{"mssql url query password with ; and space", "sqlserver://h?database=x&connection+timeout=30&Password=a;b c",
			"sqlserver://h?database=x&connection+timeout=30&Password=" + R},
		// go-mssqldb, ADO form.
		{"ado", "server=localhost;user id=sa;password=secret;database=octoha",
			"server=localhost;user id=sa;password=" + R + ";database=octoha"},
		{"ado pwd", "server=h;user id=sa;pwd=abc;database=d", "server=h;user id=sa;pwd=" + R + ";database=d"},
		{"ado spaces in value", "Server=h;User ID=sa;Password=a b c;Database=d",
			"Server=h;User ID=sa;Password=" + R + ";Database=d"},
		{"ado double-quoted", `server=h;password="a;b""c";database=d`, "server=h;password=" + R + ";database=d"},
		{"ado single-quoted", `server=h;password='a;b''c';database=d`, "server=h;password=" + R + ";database=d"},
		// Ambiguous: libpq would read the password "abc;Server=h". Too much
		// is hidden rather than too little.
		{"ado password first", "Password=abc;Server=h", "Password=" + R},
		// go-mssqldb, ODBC form.
		{"odbc", "odbc:server=localhost;user id=sa;password={foo;bar}",
			"odbc:server=localhost;user id=sa;password=" + R},
		{"odbc escaped brace", "odbc:server=h;pwd={a}}b;c};database=d", "odbc:server=h;pwd=" + R + ";database=d"},
		{"odbc password first", "odbc:password=abc;server=h", "odbc:password=" + R + ";server=h"},
		// pgx, URL form.
		{"pg url", "postgres://octoha:s3cret@127.0.0.1:5432/octoha?sslmode=disable",
			"postgres://octoha:" + R + "@127.0.0.1:5432/octoha?sslmode=disable"},
		{"pg url escaped", "postgresql://u:p%40ss@h/db", "postgresql://u:" + R + "@h/db"},
		{"pg url unescaped specials", "postgres://u:pa@ss/w:rd@h:1/db", "postgres://u:" + R + "@h:1/db"},
		{"pg url unescaped ?", "postgres://u:pa?ss@h/db", "postgres://u:" + R + "@h/db"},
		{"pg url sslpassword and password", "postgres://u@h/db?sslpassword=abc&sslmode=verify-full&password=xyz",
			"postgres://u@h/db?sslpassword=" + R + "&sslmode=verify-full&password=" + R},
		{"pg url upper-case key", "postgres://h/db?sslmode=disable&PASSWORD=abc", "postgres://h/db?sslmode=disable&PASSWORD=" + R},
		{"pg url multi-host", "postgres://u:p@h1:5432,h2:5433/db?target_session_attrs=read-write",
			"postgres://u:" + R + "@h1:5432,h2:5433/db?target_session_attrs=read-write"},
		// pgx, keyword/value form.
		{"pg kv", "host=h user=u password=abc dbname=d", "host=h user=u password=" + R + " dbname=d"},
		{"pg kv quoted", "host=h password='a b c' dbname=d", "host=h password=" + R + " dbname=d"},
		{"pg kv escaped quote", `host=h password='it\'s' dbname=d`, "host=h password=" + R + " dbname=d"},
		{"pg kv spaces around =", "host=h password = abc dbname=d", "host=h password = " + R + " dbname=d"},
		{"pg kv sslpassword", "host=h sslkey=/k.pem sslpassword=xyz", "host=h sslkey=/k.pem sslpassword=" + R},
		{"pg kv ; in value", "password=a;b host=h", "password=" + R + " host=h"},
		// SQLite: nothing secret, nothing changed.
		{"sqlite", "sqlite:/tmp/octoha.db", "sqlite:/tmp/octoha.db"},
		{"sqlite odd path", "sqlite:/tmp/a@b:c.db", "sqlite:/tmp/a@b:c.db"},
		{"sqlite file pragma", "file:/tmp/x.db?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)",
			"file:/tmp/x.db?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)"},
		{"sqlite file url", "file:///tmp/a:b@c.db?mode=ro", "file:///tmp/a:b@c.db?mode=ro"},
		{"sqlite memory", "file::memory:?cache=shared", "file::memory:?cache=shared"},
		{"sqlite auth pass", "file:x.db?_auth&_auth_user=admin&_auth_pass=hunter2", "file:x.db?_auth&_auth_user=admin&_auth_pass=" + R},
		// URLs the harness writes.
		{"url apikey", "http://h/?apikey=API-ABCDEFGH", "http://h/?apikey=" + R},
		{"url api-key and userinfo", "https://u:pw@h:8443/api/x?api-key=k1&take=10#f",
			"https://u:" + R + "@h:8443/api/x?api-key=" + R + "&take=10#f"},
		{"url user only", "http://u@h/x", "http://u@h/x"},
		{"url plain", "http://127.0.0.10:8080/api/octopusservernodes/ping", "http://127.0.0.10:8080/api/octopusservernodes/ping"},
		{"url work query", "http://127.0.0.10:8080/api/Spaces-1/work?ms=100&wait=1s", "http://127.0.0.10:8080/api/Spaces-1/work?ms=100&wait=1s"},
		{"empty", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := DSN(tc.in); got != tc.want {
				t.Errorf("DSN(%q)\n got %q\nwant %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestSecrets(t *testing.T) {
	got := Secrets("sqlserver://sa:p%40ss@h?password=defg&database=x")
	for _, want := range []string{"p%40ss", "p@ss", "defg"} {
		if !slices.Contains(got, want) {
			t.Errorf("Secrets: %q missing from %q", want, got)
		}
	}
	got = Secrets("odbc:server=h;pwd={a;b}")
	if !slices.Contains(got, "a;b") {
		t.Errorf("Secrets of an ODBC DSN: %q lacks the unbraced value", got)
	}
	if s := Secrets("sqlite:/tmp/x.db"); len(s) != 0 {
		t.Errorf("Secrets(sqlite) = %q", s)
	}
}

func TestError(t *testing.T) {
	dsn := "postgres://u:p%40ssword@h/db"
	base := errors.New("inner")
	err := Error(fmt.Errorf("connect to postgres://u:p%%40ssword@h/db (pw p@ssword): %w", base), Secrets(dsn))
	if strings.Contains(err.Error(), "ssword") {
		t.Fatalf("scrubbed error still has the password: %v", err)
	}
	if !errors.Is(err, base) {
		t.Fatal("Error broke the error chain")
	}
	if e := errors.New("x"); Error(e, Secrets("sqlite:/x")) != e {
		t.Fatal("Error changed an error with nothing to scrub")
	}
}

func TestText(t *testing.T) {
	for in, want := range map[string]string{
		"GET /api?apikey=API-ABCDEFGHIJKLMNOP&x=1":     "GET /api?apikey=API-(redacted)&x=1",
		"X-Octopus-ApiKey: API-ABCDEFGHIJKLMNOP":       "X-Octopus-ApiKey: API-(redacted)",
		"X-Octopus-ApiKey: some-other-secret":          "X-Octopus-ApiKey: (redacted)",
		"key API-ABCDEFGHIJKLMNOP in a note":           "key API-(redacted) in a note",
		"postgres://octoha:pw@127.0.0.5/db":            "postgres://octoha:(redacted)@127.0.0.5/db",
		"server=s;user id=sa;password=P@ss;database=d": "server=s;user id=sa;password=(redacted);database=d",
		`{"password":"x y"}`:                           `{"password":(redacted)}`,
		"apiKey: (redacted)":                           "apiKey: (redacted)",
		`open "http://u:pa@ss@h/x": refused`:           `open "http://u:(redacted)@h/x": refused`,
		"host=h sslpassword=abc pwd=def":               "host=h sslpassword=(redacted) pwd=(redacted)",
		"nothing to see at http://h:8080/x":            "nothing to see at http://h:8080/x",
	} {
		if got := Text(in); got != want {
			t.Errorf("Text(%q)\n got %q\nwant %q", in, got, want)
		}
	}
}
