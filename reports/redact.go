package reports

import (
	"regexp"
	"strings"
)

// Redacted replaces a secret in report text.
const Redacted = "(redacted)"

var (
	// apiKeyRE finds Octopus API keys ("API-" and upper-case alphanumerics),
	// wherever they hide: URLs, headers quoted in errors, notes.
	apiKeyRE = regexp.MustCompile(`API-[A-Z0-9]{8,}`)
	// secretParamRE finds key=value and key: value secrets (query strings,
	// key=value DSNs, headers quoted in error messages).
	secretParamRE = regexp.MustCompile(`(?i)((?:password|passwd|pwd|sslpassword|x-octopus-apikey|apikey|api_key|api-key|secret|token)"?\s*[=:]\s*"?)('[^']*'|[^&;,\s"']+)`)
	// userinfoRE finds scheme://user:password@ in URLs and DSNs.
	userinfoRE = regexp.MustCompile(`(://[^/:@\s]*:)([^@\s]+)(@)`)
)

// Scrub removes anything that looks like a secret from s: API keys,
// password/apikey/token parameters and URL passwords. Reports pass every
// string they got from a run through it, because the files a run leaves
// behind (errors, URLs, notes, specs written by hand) are not all under the
// harness's control.
func Scrub(s string) string {
	if s == "" {
		return s
	}
	out := apiKeyRE.ReplaceAllString(s, "API-"+Redacted)
	out = secretParamRE.ReplaceAllStringFunc(out, func(m string) string {
		sub := secretParamRE.FindStringSubmatch(m)
		if sub[2] == Redacted || strings.HasPrefix(sub[2], "API-"+Redacted) {
			return m
		}
		return sub[1] + Redacted
	})
	out = userinfoRE.ReplaceAllString(out, "${1}"+Redacted+"${3}")
	return out
}

// scrubAll scrubs every string of ss into a new slice.
func scrubAll(ss []string) []string {
	if ss == nil {
		return nil
	}
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = Scrub(s)
	}
	return out
}
