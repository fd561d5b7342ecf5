// Package redact is the one place that knows what a secret looks like in
// the strings octoha writes: database DSNs (every form go-mssqldb, pgx and
// SQLite accept), URLs (user info and query keys such as apikey=) and free
// text (errors, notes, specs). The fake node, the store, the harness and
// the reports all use it, so they hide the same things; it imports only
// the standard library so that fakes may use it without importing harness.
package redact

import (
	"net/url"
	"regexp"
	"sort"
	"strings"
)

// Mark replaces every secret.
const Mark = "(redacted)"

// secretKeys are the parameter names whose values are secrets, in DSNs,
// query strings and key=value text: go-mssqldb's password/pwd, pgx's
// password/sslpassword, mattn-style SQLite _auth_pass, and the spellings of
// an Octopus API key (Octopus accepts ?apikey=).
const secretKeys = `password|passwd|pwd|sslpassword|_auth_pass|x-octopus-apikey|apikey|api_key|api-key|secret|token`

var (
	// schemeRE is a URL scheme followed by "://".
	schemeRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*://`)
	// queryKeyRE finds secret parameters in a URL query. A value ends at
	// "&" or "#" only: an unescaped ";" or space inside a password must not
	// leave its tail visible.
	queryKeyRE = regexp.MustCompile(`(?i)((?:^|[?&;#])\s*(?:` + secretKeys + `)\s*=)([^&#]*)`)
	// pgKeyRE finds secrets in libpq/pgx keyword/value DSNs ("host=h
	// password='a b'"): values are single-quoted (with backslash escapes) or
	// end at whitespace.
	pgKeyRE = regexp.MustCompile(`(?i)((?:^|\s)(?:` + secretKeys + `)\s*=\s*)('(?:[^'\\]|\\.)*'?|\S*)`)
	// adoKeyRE finds secrets in ADO and ODBC connection strings
	// ("server=h;user id=sa;password=a b c", "pwd={a;b}"): values are
	// double- or single-quoted (quotes doubled inside), braced (ODBC, "}}"
	// inside) or run to the next ";".
	adoKeyRE = regexp.MustCompile(`(?i)((?:^|;)\s*(?:` + secretKeys + `)\s*=\s*)("(?:[^"]|"")*"?|'(?:[^']|'')*'?|\{(?:[^}]|\}\})*\}?|[^;]*)`)

	// textKeyRE finds key=value and key: value secrets in free text (query
	// strings, DSNs and headers quoted in errors, JSON, YAML).
	textKeyRE = regexp.MustCompile(`(?i)((?:` + secretKeys + `)"?\s*[=:]\s*)("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[^&;,\s"'<>]+)`)
	// textUserinfoRE finds scheme://user:password@ in free text; the
	// password runs to the last "@" before whitespace or a quote, since an
	// unescaped "@" or "/" may be part of it.
	textUserinfoRE = regexp.MustCompile(`(://[^/:@\s"'<>]*:)([^\s"'<>]*)(@)`)
)

// APIKeyRE finds Octopus API keys ("API-" and upper-case alphanumerics)
// wherever they hide; Text replaces them with "API-" + Mark.
var APIKeyRE = regexp.MustCompile(`API-[A-Z0-9]{8,}`)

// DSN returns s with every password and key replaced by Mark, whatever the
// form: a URL (sqlserver://user:pass@host?database=x&password=…,
// postgres://u:p@h/db?sslpassword=…, http://u:p@h/?apikey=…), a path with a
// query (file:x.db?_pragma=…, sqlite:/p?…), an ODBC string
// (odbc:server=…;pwd={…}), an ADO string (server=…;user id=…;password=…) or
// libpq keyword/value pairs (host=… password=… sslpassword=…). It works on
// the text, so malformed strings (a password with an unescaped "@", "/" or
// "?") are redacted too, and the rest of s is unchanged. Where the form is
// ambiguous it hides too much rather than too little.
func DSN(s string) string { return walk(s, func(string) string { return Mark }) }

// URL is DSN: a URL is one of the forms it knows. It is the name to use
// where a URL is written (histories, results, logs, error messages).
func URL(s string) string { return DSN(s) }

// Secrets returns the secrets DSN would hide in s, as written and, where
// different, unquoted and URL-decoded, to be scrubbed from messages that
// quote them out of context (drivers' errors). Values shorter than three
// characters are left out: replacing them would mangle unrelated text.
func Secrets(s string) []string {
	var out []string
	add := func(v string) {
		if len(v) >= 3 {
			out = append(out, v)
		}
	}
	walk(s, func(v string) string {
		add(v)
		if u := unquote(v); u != v {
			add(u)
		}
		if d, err := url.PathUnescape(v); err == nil && d != v {
			add(d)
		}
		if d, err := url.QueryUnescape(v); err == nil && d != v {
			add(d)
		}
		return v
	})
	return out
}

// walk calls repl on every secret value in s and returns s with each one
// replaced by what repl returned.
func walk(s string, repl func(string) string) string {
	if s == "" {
		return s
	}
	if m := schemeRE.FindStringIndex(s); m != nil {
		return s[:m[1]] + walkURLRest(s[m[1]:], repl)
	}
	if q := strings.IndexAny(s, "?#"); q >= 0 && !strings.ContainsAny(s[:q], "= \t;") {
		// A path and a query: file:x.db?_pragma=…, sqlite:/p?…
		return s[:q] + replaceValues(s[q:], repl, queryKeyRE)
	}
	if len(s) >= 5 && strings.EqualFold(s[:5], "odbc:") {
		return s[:5] + replaceValues(s[5:], repl, adoKeyRE)
	}
	if strings.IndexByte(s, ';') >= 0 {
		// ADO ("server=h;password=a b c") or libpq with a ";" in a value
		// ("password=a;b host=h")? Both readings are valid: hide the
		// union of what each would call the value.
		return replaceValues(s, repl, adoKeyRE, pgKeyRE)
	}
	return replaceValues(s, repl, pgKeyRE)
}

// walkURLRest redacts what follows "scheme://": the password of the user
// info, then the query.
func walkURLRest(rest string, repl func(string) string) string {
	// The user info is "user:password@". The user holds no ":", "/", "?",
	// "#" or "@"; the password ends at the LAST "@", since it may hold an
	// unescaped "@", "/" or "?". A "host:port/…@…" (an "@" later in the
	// path or query) is then hidden too: too much rather than too little.
	head := ""
	if colon := strings.IndexAny(rest, ":/?#@"); colon >= 0 && rest[colon] == ':' {
		if at := strings.LastIndexByte(rest, '@'); at > colon {
			pw := rest[colon+1 : at]
			head = rest[:colon+1] + pw
			if pw != "" {
				head = rest[:colon+1] + repl(pw)
			}
			head += "@"
			rest = rest[at+1:]
		}
	}
	if q := strings.IndexAny(rest, "?#"); q >= 0 {
		rest = rest[:q] + replaceValues(rest[q:], repl, queryKeyRE)
	}
	return head + rest
}

// replaceValues replaces the values after secret keys (group 2 of each
// match of any of res) with repl(value). Overlapping values found by
// different expressions are merged into one; empty values are left alone.
func replaceValues(s string, repl func(string) string, res ...*regexp.Regexp) string {
	type span struct{ start, end int }
	var spans []span
	for _, re := range res {
		for _, m := range re.FindAllStringSubmatchIndex(s, -1) {
			if m[4] < m[5] {
				spans = append(spans, span{m[4], m[5]})
			}
		}
	}
	if len(spans) == 0 {
		return s
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].start < spans[j].start })
	merged := spans[:1]
	for _, sp := range spans[1:] {
		if last := &merged[len(merged)-1]; sp.start < last.end {
			last.end = max(last.end, sp.end)
		} else {
			merged = append(merged, sp)
		}
	}
	var b strings.Builder
	last := 0
	for _, sp := range merged {
		b.WriteString(s[last:sp.start])
		b.WriteString(repl(s[sp.start:sp.end]))
		last = sp.end
	}
	b.WriteString(s[last:])
	return b.String()
}

// unquote strips the quotes or braces around a keyword value.
func unquote(v string) string {
	if len(v) >= 2 {
		switch {
		case v[0] == '\'' && v[len(v)-1] == '\'':
			return strings.ReplaceAll(strings.ReplaceAll(v[1:len(v)-1], `\'`, `'`), `''`, `'`)
		case v[0] == '"' && v[len(v)-1] == '"':
			return strings.ReplaceAll(v[1:len(v)-1], `""`, `"`)
		case v[0] == '{' && v[len(v)-1] == '}':
			return strings.ReplaceAll(v[1:len(v)-1], `}}`, `}`)
		}
	}
	return v
}

// Text removes anything that looks like a secret from free text: Octopus
// API keys, password/apikey/token parameters (key=value and key: value)
// and URL passwords. It is for strings whose shape is unknown (errors,
// notes, hand-written specs in reports); for a string known to be a DSN or
// a URL, DSN is exact where Text guesses.
func Text(s string) string {
	if s == "" {
		return s
	}
	out := APIKeyRE.ReplaceAllString(s, "API-"+Mark)
	out = textKeyRE.ReplaceAllStringFunc(out, func(m string) string {
		sub := textKeyRE.FindStringSubmatch(m)
		if sub[2] == Mark || strings.HasPrefix(sub[2], "API-"+Mark) {
			return m
		}
		return sub[1] + Mark
	})
	return textUserinfoRE.ReplaceAllString(out, "${1}"+Mark+"${3}")
}

// Error returns err with every one of secrets replaced by Mark in its
// message (drivers may quote their DSN in errors); errors.Is and errors.As
// still see the original. err itself is returned when nothing matched.
func Error(err error, secrets []string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	changed := false
	// Longest first, so that a secret holding another is hidden whole.
	secrets = append([]string(nil), secrets...)
	sort.SliceStable(secrets, func(i, j int) bool { return len(secrets[i]) > len(secrets[j]) })
	for _, s := range secrets {
		if s != "" && strings.Contains(msg, s) {
			msg = strings.ReplaceAll(msg, s, Mark)
			changed = true
		}
	}
	if !changed {
		return err
	}
	return &scrubbedError{msg: msg, err: err}
}

type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }
