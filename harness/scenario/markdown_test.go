package scenario

import (
	"os"
	"testing"
)

// docs/catalogue.md is generated from the catalogue: this fails when the
// two differ, and OCTOHA_UPDATE_DOCS=1 (`make docs`) rewrites the page.
func TestCatalogueDocIsGenerated(t *testing.T) {
	const path = "../../docs/catalogue.md"
	want := Markdown(Catalogue())
	if os.Getenv("OCTOHA_UPDATE_DOCS") == "1" {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading the generated catalogue page: %v (run `make docs`)", err)
	}
	if string(got) != want {
		t.Errorf("%s differs from the catalogue in harness/scenario: run `make docs` and commit the page", path)
	}
}
