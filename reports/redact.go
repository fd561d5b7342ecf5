package reports

import "github.com/octoha/octoha/internal/redact"

// Redacted replaces a secret in report text.
const Redacted = redact.Mark

// apiKeyRE finds Octopus API keys in whole files (see redact.APIKeyRE).
var apiKeyRE = redact.APIKeyRE

// Scrub removes anything that looks like a secret from s: API keys,
// password/apikey/token parameters and URL passwords (redact.Text, the
// redactor the store and the harness use too). Reports pass every string
// they got from a run through it, because the files a run leaves behind
// (errors, URLs, notes, specs written by hand) are not all under the
// harness's control.
func Scrub(s string) string { return redact.Text(s) }

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
