package octopusapi

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// MaxFileNameLength is the longest package file name accepted, in bytes.
const MaxFileNameLength = 200

// Extensions Octopus's built-in feed accepts, longest first so that
// ".tar.gz" wins over ".gz"-less matches.
var Extensions = []string{
	".tar.bz2", ".tar.gz", ".tar.bz", ".tar.Z", ".nupkg", ".tbz2", ".tbz",
	".tgz", ".zip", ".jar", ".war", ".ear", ".rar", ".tar",
}

// Validation issue names, as Octopus's validate endpoint reports them.
const (
	IssueEmptyFile                   = "EmptyFile"
	IssueFileNameTooLong             = "FileNameTooLong"
	IssueInvalidCharactersInFileName = "InvalidCharactersInFileName"
	IssueInvalidPackageID            = "InvalidPackageId"
	IssueUnsupportedFileExtension    = "UnsupportedFileExtension"
	IssueInvalidVersion              = "InvalidVersion"
	IssuePackageAlreadyExists        = "PackageAlreadyExists"
)

// FileNameError says why a package file name was refused.
type FileNameError struct {
	Name  string
	Issue string // one of the Issue* constants
	msg   string
}

func (e *FileNameError) Error() string {
	return fmt.Sprintf("package file name %q: %s", e.Name, e.msg)
}

// PackageFile is a parsed built-in feed file name.
type PackageFile struct {
	ID        string // e.g. "Acme.Web"
	Version   string // e.g. "1.2.3-beta.1"
	Extension string // e.g. ".tar.gz"
}

// FileName returns "<ID>.<Version><Extension>".
func (p PackageFile) FileName() string { return p.ID + "." + p.Version + p.Extension }

// StorePath returns where Octopus keeps the file, relative to its Packages
// directory: <SpaceId>/feeds-builtin/<PackageId>/<PackageId>.<Version><ext>,
// with forward slashes.
func (p PackageFile) StorePath(spaceID string) string {
	return spaceID + "/" + BuiltInFeedID + "/" + p.ID + "/" + p.FileName()
}

var (
	// The server's grammar: a lazily matched ID of word segments joined by
	// "_", "." or "-", then a dotted version with optional SemVer pre-release
	// and build metadata, anchored at both ends.
	idVersionRE = regexp.MustCompile(`^(\w+(?:[_.-]\w+)*?)\.(\d+(?:\.\d+){0,3}(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?)$`)
	idRE        = regexp.MustCompile(`^\w+(?:[_.-]\w+)*$`)
	spaceIDRE   = regexp.MustCompile(`^Spaces-[0-9]+$`)
)

// ParseFileName parses a package file name as the built-in feed does. It
// refuses anything that is not a plain base name, so a parsed name can never
// escape the store: no separators, no "..", no control characters.
func ParseFileName(name string) (PackageFile, error) {
	fail := func(issue, msg string) (PackageFile, error) {
		return PackageFile{}, &FileNameError{Name: name, Issue: issue, msg: msg}
	}
	if name == "" {
		return fail(IssueInvalidCharactersInFileName, "empty file name")
	}
	if len(name) > MaxFileNameLength {
		return fail(IssueFileNameTooLong, fmt.Sprintf("longer than %d bytes", MaxFileNameLength))
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || strings.ContainsRune(`/\:*?"<>|`, r) {
			return fail(IssueInvalidCharactersInFileName, fmt.Sprintf("character %q is not allowed", r))
		}
	}
	if strings.Contains(name, "..") {
		return fail(IssueInvalidCharactersInFileName, `".." is not allowed`)
	}
	ext := ""
	for _, e := range Extensions {
		// ".tar.Z" is case-sensitive in Octopus; the rest are not.
		if e == ".tar.Z" {
			if strings.HasSuffix(name, e) {
				ext = e
				break
			}
			continue
		}
		if len(name) > len(e) && strings.EqualFold(name[len(name)-len(e):], e) {
			ext = name[len(name)-len(e):]
			break
		}
	}
	if ext == "" {
		return fail(IssueUnsupportedFileExtension, "unsupported extension (use one of "+strings.Join(Extensions, " ")+")")
	}
	id, ver, err := splitIDVersion(strings.TrimSuffix(name, ext))
	if err != nil {
		var fe *FileNameError
		if errors.As(err, &fe) {
			fe.Name = name
			return PackageFile{}, fe
		}
		return PackageFile{}, err
	}
	return PackageFile{ID: id, Version: ver, Extension: ext}, nil
}

func splitIDVersion(s string) (id, version string, err error) {
	m := idVersionRE.FindStringSubmatch(s)
	if m == nil {
		if !strings.Contains(s, ".") || !idRE.MatchString(strings.SplitN(s, ".", 2)[0]) {
			return "", "", &FileNameError{Name: s, Issue: IssueInvalidPackageID, msg: "expected <PackageId>.<Version>, and a package ID of letters, digits and _ . - separators"}
		}
		return "", "", &FileNameError{Name: s, Issue: IssueInvalidVersion, msg: "no valid version (expected e.g. 1.0.0 or 1.0.0-beta.1)"}
	}
	return m[1], m[2], nil
}

// ValidPackageID reports whether id is a valid built-in feed package ID.
func ValidPackageID(id string) bool {
	return len(id) <= MaxFileNameLength && !strings.Contains(id, "..") && idRE.MatchString(id)
}

// ValidVersion reports whether v is a valid package version.
func ValidVersion(v string) bool {
	_, ver, err := splitIDVersion("x." + v)
	return err == nil && ver == v
}

// ValidSpaceID reports whether id looks like an Octopus space ID.
func ValidSpaceID(id string) bool { return spaceIDRE.MatchString(id) }

// NormalizeVersion returns a valid version in NuGet's normalised form, the
// form Octopus stores: build metadata dropped ("1.0.0+meta" is 1.0.0),
// leading zeros removed ("01.0.0" is 1.0.0), at least three parts ("1.0"
// is 1.0.0), and a fourth part only when it is not 0 ("1.0.0.0" is 1.0.0,
// "1.0.0.5" stays). The pre-release label is kept as written; NuGet
// compares it case-insensitively, and so do the store's lookups. Anything
// that is not a valid version is returned unchanged.
func NormalizeVersion(v string) string {
	if !ValidVersion(v) {
		return v
	}
	if i := strings.IndexByte(v, '+'); i >= 0 {
		v = v[:i]
	}
	pre := ""
	if i := strings.IndexByte(v, '-'); i >= 0 {
		v, pre = v[:i], v[i:]
	}
	parts := strings.Split(v, ".")
	for i, p := range parts {
		if p = strings.TrimLeft(p, "0"); p == "" {
			p = "0"
		}
		parts[i] = p
	}
	for len(parts) < 3 {
		parts = append(parts, "0")
	}
	if len(parts) == 4 && parts[3] == "0" {
		parts = parts[:3]
	}
	return strings.Join(parts, ".") + pre
}
