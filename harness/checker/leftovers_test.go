package checker

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/octoha/octoha/octopusapi"
)

func row(id, ver, ext string, size int64) octopusapi.Package {
	return octopusapi.Package{Id: octopusapi.PackageResourceID(id, ver), PackageId: id, Version: ver, FileExtension: ext, PackageSizeBytes: size}
}

func listing(files ...FileInfo) *FileListing { return &FileListing{Source: "test", Files: files} }

func cleanStore() *Snapshot {
	return &Snapshot{
		SpaceID: "Spaces-1",
		Rows:    []octopusapi.Package{row("Acme.Web", "1.0.0", ".zip", 100), row("Acme.Api", "2.0.0-beta.1", ".tar.gz", 200)},
		Files: listing(
			FileInfo{"Spaces-1/feeds-builtin/Acme.Web/Acme.Web.1.0.0.zip", 100},
			FileInfo{"Spaces-1/feeds-builtin/Acme.Api/Acme.Api.2.0.0-beta.1.tar.gz", 200},
			FileInfo{"Spaces-2/feeds-builtin/Other/Other.1.0.0.zip", 5},
		),
	}
}

func TestNoLeftoversPassesOnConsistentStore(t *testing.T) {
	r := NoLeftovers(cleanStore(), LeftoverOptions{StrictOrphans: true})
	wantStatus(t, r, Pass)
	wantFigure(t, r, "rows", 2)
	wantFigure(t, r, "temp-files", 0)
	wantFigure(t, r, "orphans", 0)
	wantFigure(t, r, "other-files", 1)
}

func TestNoLeftoversFailsOnTempFiles(t *testing.T) {
	s := cleanStore()
	s.Files.Files = append(s.Files.Files,
		FileInfo{".octoha-tmp/upload-7f3a", 4096},
		FileInfo{"Spaces-1/feeds-builtin/Acme.Web/Acme.Web.1.0.1.zip.partial", 12})
	r := NoLeftovers(s, LeftoverOptions{})
	wantStatus(t, r, Fail)
	wantFigure(t, r, "temp-files", 2)
	wantEvidence(t, r, "temporary file left on the share: .octoha-tmp/upload-7f3a (4096 bytes)", "Acme.Web.1.0.1.zip.partial (12 bytes)")
	// Temp files are not counted as orphans too.
	wantFigure(t, r, "orphans", 0)
}

func TestNoLeftoversFailsOnRowWithoutFile(t *testing.T) {
	s := cleanStore()
	s.Rows = append(s.Rows, row("Acme.Db", "3.1.0", ".nupkg", 300))
	r := NoLeftovers(s, LeftoverOptions{})
	wantStatus(t, r, Fail)
	wantFigure(t, r, "rows-without-file", 1)
	wantEvidence(t, r, "package row Acme.Db@3.1.0 (300 bytes) points to Spaces-1/feeds-builtin/Acme.Db/Acme.Db.3.1.0.nupkg, which does not exist")
}

func TestNoLeftoversFailsOnSizeMismatch(t *testing.T) {
	s := cleanStore()
	s.Files.Files[0].Size = 99 // a truncated publish
	r := NoLeftovers(s, LeftoverOptions{})
	wantStatus(t, r, Fail)
	wantFigure(t, r, "size-mismatches", 1)
	wantEvidence(t, r, "package row Acme.Web@1.0.0 says 100 bytes but Spaces-1/feeds-builtin/Acme.Web/Acme.Web.1.0.0.zip has 99")
}

func TestNoLeftoversOrphansFailOnlyWhenStrict(t *testing.T) {
	s := cleanStore()
	s.Files.Files = append(s.Files.Files, FileInfo{"Spaces-1/feeds-builtin/Ghost/Ghost.9.9.9.zip", 7})
	r := NoLeftovers(s, LeftoverOptions{})
	wantStatus(t, r, Pass)
	wantFigure(t, r, "orphans", 1)
	wantEvidence(t, r, "orphan file (no package row points to it): Spaces-1/feeds-builtin/Ghost/Ghost.9.9.9.zip (7 bytes)")
	r = NoLeftovers(s, LeftoverOptions{StrictOrphans: true})
	wantStatus(t, r, Fail)
}

func TestNoLeftoversMatchesCaseInsensitively(t *testing.T) {
	s := cleanStore()
	s.Files.Files[0].Name = "Spaces-1/feeds-builtin/acme.web/acme.web.1.0.0.zip" // a Windows share
	wantStatus(t, NoLeftovers(s, LeftoverOptions{StrictOrphans: true}), Pass)
}

func TestNoLeftoversFailsWhenRowsUnreadable(t *testing.T) {
	s := cleanStore()
	s.RowsError = "list packages (page 2): HTTP 503"
	r := NoLeftovers(s, LeftoverOptions{})
	wantStatus(t, r, Fail)
	wantEvidence(t, r, "HTTP 503")
}

func TestNoLeftoversSkipsWithoutListing(t *testing.T) {
	s := cleanStore()
	s.Files = nil
	r := NoLeftovers(s, LeftoverOptions{})
	wantStatus(t, r, Skip)
	if r.Summary == "" {
		t.Fatal("a skip must say why")
	}
	// An empty store is a listing, not a missing one.
	s.Files, s.Rows = listing(), nil
	wantStatus(t, NoLeftovers(s, LeftoverOptions{}), Pass)
}

func TestIsTempFile(t *testing.T) {
	for name, want := range map[string]bool{
		".octoha-tmp/abc":  true,
		".octoha-tmp":      true,
		"/.octoha-tmp/x/y": true,
		`.octoha-tmp\win`:  true,
		"Spaces-1/feeds-builtin/A/A.1.0.0.zip.tmp":          true,
		"Spaces-1/feeds-builtin/A/A.1.0.0.zip.PARTIAL":      true,
		"Spaces-1/feeds-builtin/A/A.1.0.0.zip":              false,
		"Spaces-1/.octoha-tmp/not-at-root-but-not-temp.zip": false,
		"Spaces-1/feeds-builtin/tmp/tmp.1.0.0.zip":          false,
	} {
		if got := IsTempFile(name); got != want {
			t.Errorf("IsTempFile(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestListDir(t *testing.T) {
	root := t.TempDir()
	for name, data := range map[string]string{
		"Spaces-1/feeds-builtin/A/A.1.0.0.zip": "hello",
		".octoha-tmp/partial":                  "xy",
	} {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	l, err := ListDir(root)
	if err != nil {
		t.Fatal(err)
	}
	want := []FileInfo{{".octoha-tmp/partial", 2}, {"Spaces-1/feeds-builtin/A/A.1.0.0.zip", 5}}
	if !reflect.DeepEqual(l.Files, want) {
		t.Fatalf("files = %v, want %v", l.Files, want)
	}
	if _, err := ListDir(filepath.Join(root, "nope")); err == nil {
		t.Fatal("listing a missing directory must fail")
	}
	empty, err := ListDir(t.TempDir())
	if err != nil || empty == nil || empty.Files == nil || len(empty.Files) != 0 {
		t.Fatalf("empty dir: %+v, %v", empty, err)
	}
}

// A node's Octodiff signature cache next to a package belongs with the
// file whose SHA-1 its name carries; one of a deleted or replaced file is
// an orphan.
func TestNoLeftoversSignatureCaches(t *testing.T) {
	s := cleanStore()
	s.Rows[0].Hash = "ABCDEF0123"
	web := "Spaces-1/feeds-builtin/Acme.Web/Acme.Web.1.0.0.zip"
	s.Files.Files = append(s.Files.Files, FileInfo{octopusapi.SignatureCachePath(web, "abcdef0123"), 26})
	r := NoLeftovers(s, LeftoverOptions{StrictOrphans: true})
	wantStatus(t, r, Pass)
	wantFigure(t, r, "signature-caches", 1)
	wantFigure(t, r, "orphans", 0)

	stale := octopusapi.SignatureCachePath(web, "0000000000")
	s.Files.Files = append(s.Files.Files, FileInfo{stale, 26})
	r = NoLeftovers(s, LeftoverOptions{StrictOrphans: true})
	wantStatus(t, r, Fail)
	wantFigure(t, r, "orphans", 1)
	wantEvidence(t, r, "orphan file (no package row points to it): "+stale)
}
