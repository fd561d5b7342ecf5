package store

import (
	"net/url"
	"regexp"
	"strings"
)

// redacted replaces secrets in DSNs.
const redacted = "xxxxx"

// secretParamRE finds password parameters in a URL query or a key=value DSN
// ("host=h password=p", "server=s;password=p").
var secretParamRE = regexp.MustCompile(`(?i)((?:^|[?&;\s])(?:password|pwd|passwd|sslpassword)\s*=\s*)('[^']*'|"[^"]*"|[^&;\s]*)`)

// RedactDSN returns dsn with any password replaced by "xxxxx": the one in
// scheme://user:password@host, and password=/pwd= parameters. It works on
// the text, so passwords with unescaped special characters are caught too
// and the rest of the DSN is unchanged.
func RedactDSN(dsn string) string {
	out := dsn
	if i := strings.Index(out, "://"); i >= 0 {
		rest := out[i+3:]
		authEnd := len(rest)
		if q := strings.IndexByte(rest, '?'); q >= 0 {
			authEnd = q
		}
		// The userinfo ends at the last "@" before the query: a password may
		// hold unescaped "@" or "/".
		if at := strings.LastIndexByte(rest[:authEnd], '@'); at >= 0 {
			if colon := strings.IndexByte(rest[:at], ':'); colon >= 0 {
				rest = rest[:colon+1] + redacted + rest[at:]
			}
		}
		out = out[:i+3] + rest
	}
	return secretParamRE.ReplaceAllString(out, "${1}"+redacted)
}

// secrets returns the passwords in dsn, raw and URL-decoded.
func secrets(dsn string) []string {
	var out []string
	add := func(s string) {
		s = strings.Trim(s, `'"`)
		if len(s) >= 3 { // shorter ones would mangle unrelated text
			out = append(out, s)
			if d, err := url.QueryUnescape(s); err == nil && d != s {
				out = append(out, d)
			}
		}
	}
	if i := strings.Index(dsn, "://"); i >= 0 {
		rest := dsn[i+3:]
		authEnd := len(rest)
		if q := strings.IndexByte(rest, '?'); q >= 0 {
			authEnd = q
		}
		if at := strings.LastIndexByte(rest[:authEnd], '@'); at >= 0 {
			if colon := strings.IndexByte(rest[:at], ':'); colon >= 0 {
				add(rest[colon+1 : at])
			}
		}
	}
	for _, m := range secretParamRE.FindAllStringSubmatch(dsn, -1) {
		add(m[2])
	}
	return out
}

// scrub returns err with dsn's passwords removed from its message (drivers
// may quote their DSN in errors); errors.Is/As still see the original.
func scrub(err error, dsn string) error { return scrubSecrets(err, secrets(dsn)) }

func scrubSecrets(err error, secrets []string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	changed := false
	for _, s := range secrets {
		if strings.Contains(msg, s) {
			msg = strings.ReplaceAll(msg, s, redacted)
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
