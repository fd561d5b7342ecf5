package octopusapi

import (
	"errors"
	"strings"
	"testing"
)

func TestParseFileName(t *testing.T) {
	good := []struct{ name, id, ver, ext string }{
		{"Foo.1.0.0.zip", "Foo", "1.0.0", ".zip"},
		{"Acme.Web.2.1.zip", "Acme.Web", "2.1", ".zip"},
		{"Acme.Web.1.2.3.4.nupkg", "Acme.Web", "1.2.3.4", ".nupkg"},
		{"my-app_x.10.0.0-beta.1.tar.gz", "my-app_x", "10.0.0-beta.1", ".tar.gz"},
		{"App.1.0.0+build.7.tgz", "App", "1.0.0+build.7", ".tgz"},
		{"App.1.0.0-rc.2+sha.abc.tar.bz2", "App", "1.0.0-rc.2+sha.abc", ".tar.bz2"},
		{"App.1.tar.Z", "App", "1", ".tar.Z"},
		{"App.1.0.JAR", "App", "1.0", ".JAR"},
		{"Web.Api.v2.3.0.0.war", "Web.Api.v2", "3.0.0", ".war"},
	}
	for _, g := range good {
		p, err := ParseFileName(g.name)
		if err != nil {
			t.Errorf("%s: %v", g.name, err)
			continue
		}
		if p.ID != g.id || p.Version != g.ver || p.Extension != g.ext {
			t.Errorf("%s = %+v, want %s %s %s", g.name, p, g.id, g.ver, g.ext)
		}
		if p.FileName() != g.name {
			t.Errorf("%s round-trips to %s", g.name, p.FileName())
		}
		if got := p.StorePath("Spaces-1"); got != "Spaces-1/feeds-builtin/"+g.id+"/"+g.name {
			t.Errorf("store path %s", got)
		}
	}
	bad := map[string]string{
		"":                       IssueInvalidCharactersInFileName,
		"../Foo.1.0.0.zip":       IssueInvalidCharactersInFileName,
		"a/Foo.1.0.0.zip":        IssueInvalidCharactersInFileName,
		`C:\Foo.1.0.0.zip`:       IssueInvalidCharactersInFileName,
		"Foo.1.0.0.exe":          IssueUnsupportedFileExtension,
		"Foo.zip":                IssueInvalidPackageID,
		"Foo.bar.zip":            IssueInvalidVersion,
		"Fo o.1.0.zip":           IssueInvalidPackageID,
		"Foo.1.0\x00.zip":        IssueInvalidCharactersInFileName,
		".1.0.zip":               IssueInvalidPackageID,
		"App.1.tar.z":            IssueUnsupportedFileExtension,
		strings.Repeat("a", 250): IssueFileNameTooLong,
	}
	for name, issue := range bad {
		_, err := ParseFileName(name)
		var fe *FileNameError
		if !errors.As(err, &fe) {
			t.Errorf("%q: err = %v, want a FileNameError", name, err)
			continue
		}
		if fe.Issue != issue {
			t.Errorf("%q: issue %s, want %s (%v)", name, fe.Issue, issue, err)
		}
	}
}

func TestPackageResourceIDRoundTrip(t *testing.T) {
	id := PackageResourceID("Acme.Web", "1.2.3-beta.1")
	if id != "packages-Acme.Web.1.2.3-beta.1" {
		t.Fatal(id)
	}
	pid, ver, ok := SplitPackageResourceID(id)
	if !ok || pid != "Acme.Web" || ver != "1.2.3-beta.1" {
		t.Fatalf("split = %s %s %v", pid, ver, ok)
	}
	if _, _, ok := SplitPackageResourceID("Acme.Web.1.0"); ok {
		t.Fatal("accepted an ID without the packages- prefix")
	}
	if !ValidVersion("1.0.0-rc.1") || ValidVersion("1.0.0.0.0") || ValidVersion("") {
		t.Fatal("ValidVersion")
	}
	if !ValidPackageID("Acme.Web") || ValidPackageID("../x") {
		t.Fatal("ValidPackageID")
	}
}

// FuzzParseFileName: whatever the input, a parsed name never escapes the
// store, round-trips, and parses back to itself.
func FuzzParseFileName(f *testing.F) {
	for _, s := range []string{"Foo.1.0.0.zip", "a.b.c.1.2.3-x.tar.gz", "../x.1.zip", "X.1.0+b.tar.Z", "..", "a..1.zip", "Ünïcode.1.0.zip"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		p, err := ParseFileName(name)
		if err != nil {
			var fe *FileNameError
			if !errors.As(err, &fe) || fe.Issue == "" {
				t.Fatalf("%q: untyped error %v", name, err)
			}
			return
		}
		if p.FileName() != name {
			t.Fatalf("%q round-trips to %q", name, p.FileName())
		}
		sp := p.StorePath("Spaces-1")
		if strings.Contains(sp, "..") || strings.Contains(sp, `\`) || strings.HasPrefix(sp, "/") || strings.Count(sp, "/") != 3 {
			t.Fatalf("%q: store path %q escapes", name, sp)
		}
		q, err := ParseFileName(p.FileName())
		if err != nil || q != p {
			t.Fatalf("%q: reparse %+v %v", name, q, err)
		}
		if !ValidPackageID(p.ID) || !ValidVersion(p.Version) {
			t.Fatalf("%q: parts invalid: %+v", name, p)
		}
	})
}

func TestNormalizeVersion(t *testing.T) {
	for in, want := range map[string]string{
		"1.0.0":              "1.0.0",
		"1.0.0+meta":         "1.0.0",
		"01.0.0":             "1.0.0",
		"1.00.007":           "1.0.7",
		"1.0":                "1.0.0",
		"1":                  "1.0.0",
		"1.0.0.0":            "1.0.0",
		"1.0.0.5":            "1.0.0.5",
		"1.2.3.04":           "1.2.3.4",
		"1.0-Beta.1":         "1.0.0-Beta.1",
		"01.0.0-rc.1+build5": "1.0.0-rc.1",
		"1.0.0-0a":           "1.0.0-0a",
		"1.0.0-beta.01":      "1.0.0-beta.01", // labels are kept as written
		"not a version":      "not a version",
	} {
		if got := NormalizeVersion(in); got != want {
			t.Errorf("NormalizeVersion(%q) = %q, want %q", in, got, want)
		}
		if ValidVersion(in) && !ValidVersion(NormalizeVersion(in)) {
			t.Errorf("NormalizeVersion(%q) = %q is not a valid version", in, NormalizeVersion(in))
		}
	}
}
