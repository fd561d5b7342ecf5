package payload

import (
	"os"
	"path/filepath"
	"testing"
)

// A hash remembered by one process is known to the next (the on-disk
// cache), and is the hash of the bytes; a corrupt entry is ignored.
func TestHashCache(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(HashCacheEnv, dir)
	s := Spec{PackageID: "P", Version: "1.0.0", Seed: 9_876_543, Size: hashCacheMin + 3}
	if h, ok := KnownHash(s); ok {
		t.Fatalf("unknown spec has a hash: %s", h)
	}
	want := s.Hash()
	if got := s.CachedHash(); got != want {
		t.Fatalf("CachedHash %s, want %s", got, want)
	}
	hashes.Delete(s.key()) // as a new process would start
	if got, ok := KnownHash(s); !ok || got != want {
		t.Fatalf("from disk: %s %v, want %s", got, ok, want)
	}
	// Another generation of the lineage is other bytes: not the same entry.
	g := s
	g.Gen, g.Change = 1, 0.05
	if h, ok := KnownHash(g); ok {
		t.Fatalf("generation 1 took generation 0's hash %s", h)
	}
	// A corrupt file is not a hash.
	hashes.Delete(s.key())
	if err := os.WriteFile(filepath.Join(dir, s.key()), []byte("not a hash"), 0o644); err != nil {
		t.Fatal(err)
	}
	if h, ok := KnownHash(s); ok {
		t.Fatalf("corrupt entry read as %q", h)
	}
	// Off: nothing on disk.
	t.Setenv(HashCacheEnv, "off")
	o := Spec{Seed: 1234, Size: hashCacheMin}
	RememberHash(o, o.Hash())
	hashes.Delete(o.key())
	if _, ok := KnownHash(o); ok {
		t.Fatal("the cache is off, yet a hash came from disk")
	}
}
