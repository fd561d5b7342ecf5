package apiclient_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/octoha/octoha/octopusapi"
)

// TestKeyOnlySentByAPIClient: apiclient is the one way the harness sends
// the API key (it goes only to the cluster's origins, never after a
// cross-origin redirect). It scans every non-test Go file of the module
// outside fakes/ (the fake Octopus reads the key) and this package, and
// fails on anything that puts the key into a request by hand: a
// Set/Add of the key header or of an apikey query parameter, an index
// assignment or a composite-literal entry keyed by the header.
func TestKeyOnlySentByAPIClient(t *testing.T) {
	root := moduleRoot(t)
	self := filepath.Join(root, "harness", "apiclient")
	var files int
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch {
			case p == filepath.Join(root, "fakes"), p == self, strings.HasPrefix(d.Name(), ".") && p != root, d.Name() == "testdata", d.Name() == "vendor":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		files++
		for _, f := range keySetters(t, p) {
			rel, _ := filepath.Rel(root, p)
			t.Errorf("%s:%s sets the API key by hand; send it through harness/apiclient (a client from apiclient.New, or its Transport)", rel, f)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 50 {
		t.Fatalf("scanned only %d files under %s: is the module root right?", files, root)
	}
}

// TestKeySetterScan: the scan finds each way of setting the key by hand
// (so that TestKeyOnlySentByAPIClient cannot pass by finding nothing).
func TestKeySetterScan(t *testing.T) {
	src := `package p
import ("net/http"; "net/url"; "github.com/octoha/octoha/octopusapi")
func f(r *http.Request, h http.Header, q url.Values, k string) {
	r.Header.Set(octopusapi.HeaderAPIKey, k)
	h.Add("X-Octopus-ApiKey", k)
	h[octopusapi.HeaderAPIKey] = []string{k}
	_ = http.Header{octopusapi.HeaderAPIKey: {k}}
	q.Set("apikey", k)
	_ = r.Header.Get(octopusapi.HeaderAPIKey) // reading is not sending
}`
	p := filepath.Join(t.TempDir(), "p.go")
	if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	got := keySetters(t, p)
	if len(got) != 5 {
		t.Errorf("found %v, want the 5 setters on lines 4-8", got)
	}
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// keySetters returns the line:column of each place in the file that puts
// the key into a request.
func keySetters(t *testing.T, path string) []string {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	var out []string
	at := func(n ast.Node) {
		pos := fset.Position(n.Pos())
		out = append(out, strconv.Itoa(pos.Line)+":"+strconv.Itoa(pos.Column))
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.CallExpr:
			sel, ok := n.Fun.(*ast.SelectorExpr)
			if ok && (sel.Sel.Name == "Set" || sel.Sel.Name == "Add") && len(n.Args) >= 1 && (isKeyHeader(n.Args[0]) || isKeyParam(n.Args[0])) {
				at(n)
			}
		case *ast.AssignStmt:
			for _, l := range n.Lhs {
				if ix, ok := l.(*ast.IndexExpr); ok && isKeyHeader(ix.Index) {
					at(l)
				}
			}
		case *ast.KeyValueExpr:
			if isKeyHeader(n.Key) {
				at(n)
			}
		}
		return true
	})
	return out
}

// isKeyHeader: octopusapi.HeaderAPIKey (through any import name) or its literal.
func isKeyHeader(e ast.Expr) bool {
	switch e := e.(type) {
	case *ast.SelectorExpr:
		return e.Sel.Name == "HeaderAPIKey"
	case *ast.BasicLit:
		s, err := strconv.Unquote(e.Value)
		return err == nil && strings.EqualFold(s, octopusapi.HeaderAPIKey)
	}
	return false
}

// isKeyParam: the apikey query parameter Octopus also takes.
func isKeyParam(e ast.Expr) bool {
	lit, ok := e.(*ast.BasicLit)
	if !ok {
		return false
	}
	s, err := strconv.Unquote(lit.Value)
	return err == nil && strings.EqualFold(s, "apikey")
}
