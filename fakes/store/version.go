package store

import "strings"

// CompareVersions orders package versions by SemVer precedence, extended to
// Octopus's 1–4 numeric parts: numeric parts compare as numbers (missing
// ones count as 0), a release outranks its pre-releases, pre-release
// identifiers compare numerically when both are numbers and as text
// otherwise (numbers first), and build metadata is ignored. Versions equal
// by precedence are ordered by their text so the result is total. It
// returns -1, 0 or +1.
func CompareVersions(a, b string) int {
	if c := comparePrecedence(a, b); c != 0 {
		return c
	}
	return strings.Compare(a, b)
}

// ComparePrecedence is CompareVersions without the text tie-break: 0 for
// versions of equal precedence ("1.0" and "1.0.0", or differing only in
// build metadata), as version ranges compare them.
func ComparePrecedence(a, b string) int { return comparePrecedence(a, b) }

func comparePrecedence(a, b string) int {
	an, apre := splitVersion(a)
	bn, bpre := splitVersion(b)
	for i := 0; i < max(len(an), len(bn)); i++ {
		if c := compareNumeric(part(an, i), part(bn, i)); c != 0 {
			return c
		}
	}
	switch {
	case apre == "" && bpre == "":
		return 0
	case apre == "":
		return 1
	case bpre == "":
		return -1
	}
	ai, bi := strings.Split(apre, "."), strings.Split(bpre, ".")
	for i := 0; i < min(len(ai), len(bi)); i++ {
		if c := compareIdent(ai[i], bi[i]); c != 0 {
			return c
		}
	}
	return cmpInt(len(ai), len(bi))
}

// splitVersion returns the numeric parts and the pre-release of v.
func splitVersion(v string) (nums []string, pre string) {
	if i := strings.IndexByte(v, '+'); i >= 0 {
		v = v[:i]
	}
	if i := strings.IndexByte(v, '-'); i >= 0 {
		v, pre = v[:i], v[i+1:]
	}
	return strings.Split(v, "."), pre
}

func part(p []string, i int) string {
	if i < len(p) {
		return p[i]
	}
	return "0"
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// compareNumeric compares digit strings of any length as numbers; a
// non-numeric part sorts after numbers, then by text.
func compareNumeric(a, b string) int {
	ad, bd := isDigits(a), isDigits(b)
	switch {
	case ad && bd:
		a, b = strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
		if c := cmpInt(len(a), len(b)); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	case ad:
		return -1
	case bd:
		return 1
	}
	return strings.Compare(a, b)
}

func compareIdent(a, b string) int {
	if isDigits(a) || isDigits(b) {
		return compareNumeric(a, b)
	}
	return strings.Compare(strings.ToLower(a), strings.ToLower(b))
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
