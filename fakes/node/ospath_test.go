package node

import (
	"errors"
	"net/http"
	"strings"
	"testing"
)

func TestOSPathForms(t *testing.T) {
	rel := "Spaces-1/Acme.Web/Acme.Web.1.0.0.zip"
	win := storedPath(OSWindows, rel)
	if want := `C:\Octopus\Packages\Spaces-1\Acme.Web\Acme.Web.1.0.0.zip`; win != want {
		t.Fatalf("Windows form %q, want %q", win, want)
	}
	if got := storedPath(OSLinux, rel); got != rel {
		t.Fatalf("Linux form %q changed from the relative form %q", got, rel)
	}
	for _, c := range []struct{ os, stored string }{{OSWindows, win}, {OSLinux, rel}} {
		got, err := resolvePath(c.os, c.stored)
		if err != nil || got != rel {
			t.Errorf("resolvePath(%s, %q) = %q, %v; want %q", c.os, c.stored, got, err, rel)
		}
	}
	for _, c := range []struct{ os, stored, form string }{
		{OSWindows, rel, OSLinux},
		{OSLinux, win, OSWindows},
		{OSLinux, `\\share\Packages\x.zip`, OSWindows},
	} {
		_, err := resolvePath(c.os, c.stored)
		var pe *OSPathError
		if !errors.As(err, &pe) || pe.PathOS != c.form || !strings.Contains(err.Error(), "cannot be mixed") {
			t.Errorf("resolvePath(%s, %q) = %v; want an OSPathError naming the %s form", c.os, c.stored, err, c.form)
		}
	}
	if _, err := resolvePath(OSWindows, `D:\Elsewhere\x.zip`); err == nil {
		t.Error("a Windows path outside the Packages root resolved")
	}
	if _, err := New(Config{ID: "a", Name: "b", OS: "macos"}); err == nil {
		t.Error("New accepted OS macos")
	}
}

// A package uploaded through a node of one OS downloads through nodes of
// that OS only; the other answers 500 naming the path's form.
func TestMixedOSNodesCannotResolveEachOthersPaths(t *testing.T) {
	win := newTestNode(t, nil, func(c *Config) { c.OS = OSWindows })
	lin := newTestNode(t, win)
	for _, c := range []struct {
		up, other *testNode
		file      string
		form      string
	}{{win, lin, "Win.App.1.0.0.zip", "Windows form"}, {lin, win, "Lin.App.1.0.0.zip", "Linux container form"}} {
		res, body := c.up.upload(t, "", c.file, []byte("payload of "+c.file))
		if res.StatusCode != http.StatusCreated {
			t.Fatalf("upload %s: %d %s", c.file, res.StatusCode, body)
		}
		id := "packages-" + strings.TrimSuffix(c.file, ".1.0.0.zip") + ".1.0.0"
		raw := "/api/Spaces-1/packages/" + id + "/raw"
		if res, body := c.up.do(t, "GET", raw, nil, nil); res.StatusCode != http.StatusOK || string(body) != "payload of "+c.file {
			t.Errorf("download %s through the uploading node: %d %q", c.file, res.StatusCode, body)
		}
		res, body = c.other.do(t, "GET", raw, nil, nil)
		if res.StatusCode != http.StatusInternalServerError || !strings.Contains(string(body), c.form) {
			t.Errorf("download %s through the other OS's node: %d %s; want 500 naming the %s", c.file, res.StatusCode, body, c.form)
		}
		// Metadata is a database read: every node serves it.
		if res, _ := c.other.do(t, "GET", "/api/Spaces-1/packages/"+id, nil, nil); res.StatusCode != http.StatusOK {
			t.Errorf("metadata of %s through the other node: %d", c.file, res.StatusCode)
		}
	}
	row, err := win.db.Package(t.Context(), "Spaces-1", "Win.App", "1.0.0")
	if err != nil || !strings.HasPrefix(row.Path, WindowsPackagesRoot+`\`) {
		t.Errorf("the Windows node recorded %q (%v), want a path under %s", row.Path, err, WindowsPackagesRoot)
	}
}
