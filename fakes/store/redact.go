package store

import "github.com/octoha/octoha/internal/redact"

// RedactDSN returns dsn with any password replaced by redact.Mark, in
// every form the drivers accept (see redact.DSN: the store, the harness
// and the reports share one redactor, so they hide the same things).
func RedactDSN(dsn string) string { return redact.DSN(dsn) }

// secrets returns the passwords in dsn, raw, unquoted and URL-decoded.
func secrets(dsn string) []string { return redact.Secrets(dsn) }

// scrub returns err with dsn's passwords removed from its message (drivers
// may quote their DSN in errors); errors.Is/As still see the original.
func scrub(err error, dsn string) error { return redact.Error(err, redact.Secrets(dsn)) }

func scrubSecrets(err error, secrets []string) error { return redact.Error(err, secrets) }
