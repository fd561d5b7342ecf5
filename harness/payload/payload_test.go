package payload

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"testing"
	"testing/iotest"
)

func readAll(t *testing.T, r io.Reader) []byte {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSameSeedSameBytes(t *testing.T) {
	a := readAll(t, New(42, 100_003))
	b := readAll(t, New(42, 100_003))
	if len(a) != 100_003 {
		t.Fatalf("len = %d, want 100003", len(a))
	}
	if !bytes.Equal(a, b) {
		t.Fatal("same seed gave different bytes")
	}
}

func TestDifferentSeedsDiffer(t *testing.T) {
	// Nearby seeds must not give shifted copies of one stream either.
	seen := map[string]int64{}
	for seed := int64(-3); seed < 64; seed++ {
		b := readAll(t, New(seed, 64))
		for _, off := range []int{0, 8, 16} {
			k := string(b[off : off+16])
			if prev, ok := seen[k]; ok {
				t.Fatalf("seeds %d and %d share a 16-byte window", prev, seed)
			}
			seen[k] = seed
		}
	}
	a := readAll(t, New(1, 4096))
	b := readAll(t, New(2, 4096))
	same := 0
	for i := range a {
		if a[i] == b[i] {
			same++
		}
	}
	// Independent uniform bytes agree about 1/256 of the time.
	if same > 64 {
		t.Fatalf("seeds 1 and 2 agree on %d of 4096 bytes", same)
	}
}

func TestPrefixProperty(t *testing.T) {
	long := readAll(t, New(7, 10_000))
	short := readAll(t, New(7, 1234))
	if !bytes.Equal(long[:1234], short) {
		t.Fatal("shorter size is not a prefix of the longer stream")
	}
}

func TestReadSizesDoNotMatter(t *testing.T) {
	want := readAll(t, New(9, 50_001))
	// One byte at a time, odd chunk sizes, and iotest's own checks.
	if got := readAll(t, iotest.OneByteReader(New(9, 50_001))); !bytes.Equal(got, want) {
		t.Fatal("one-byte reads differ")
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	r := New(9, 50_001)
	var got []byte
	for {
		buf := make([]byte, 1+rnd.IntN(37))
		n, err := r.Read(buf)
		got = append(got, buf[:n]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(got, want) {
		t.Fatal("odd-sized reads differ")
	}
	if err := iotest.TestReader(New(9, 50_001), want); err != nil {
		t.Fatal(err)
	}
}

func TestReadAtAndSeek(t *testing.T) {
	want := readAll(t, New(5, 4099))
	r := New(5, 4099)
	for _, tc := range []struct{ off, n int }{{0, 10}, {3, 5}, {7, 17}, {4090, 9}, {4095, 10}, {1, 4098}} {
		buf := make([]byte, tc.n)
		n, err := r.ReadAt(buf, int64(tc.off))
		end := min(tc.off+tc.n, len(want))
		if n != end-tc.off {
			t.Fatalf("ReadAt(%d,%d) n = %d", tc.off, tc.n, n)
		}
		if (tc.off+tc.n > len(want)) != (err == io.EOF) {
			t.Fatalf("ReadAt(%d,%d) err = %v", tc.off, tc.n, err)
		}
		if !bytes.Equal(buf[:n], want[tc.off:end]) {
			t.Fatalf("ReadAt(%d,%d) bytes differ", tc.off, tc.n)
		}
	}
	if _, err := r.Seek(-11, io.SeekEnd); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, r); !bytes.Equal(got, want[len(want)-11:]) {
		t.Fatal("bytes after Seek differ")
	}
	if _, err := r.Seek(-1, io.SeekStart); err == nil {
		t.Fatal("negative seek accepted")
	}
}

func TestWriteToMatchesRead(t *testing.T) {
	want := readAll(t, New(11, 700_001))
	var buf bytes.Buffer
	r := New(11, 700_001)
	if _, err := r.Seek(3, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	n, err := r.WriteTo(&buf)
	if err != nil || n != int64(len(want)-3) {
		t.Fatalf("WriteTo = %d, %v", n, err)
	}
	if !bytes.Equal(buf.Bytes(), want[3:]) {
		t.Fatal("WriteTo bytes differ from Read bytes")
	}
}

func TestHash(t *testing.T) {
	sum := sha1.Sum(readAll(t, New(3, 1<<20+5)))
	if got, want := Hash(3, 1<<20+5), hex.EncodeToString(sum[:]); got != want {
		t.Fatalf("Hash = %s, want %s", got, want)
	}
	if Hash(3, 1000) == Hash(4, 1000) {
		t.Fatal("different seeds, same hash")
	}
	if got := Hash(3, 0); got != "da39a3ee5e6b4b0d3255bfef95601890afd80709" {
		t.Fatalf("empty hash = %s", got)
	}
}

func TestBytesLookUniform(t *testing.T) {
	// A cheap sanity check that the mixer is wired in: every byte value
	// appears about equally often in 1 MiB (chi-square, 255 d.o.f.).
	var counts [256]float64
	for _, c := range readAll(t, New(123, 1<<20)) {
		counts[c]++
	}
	exp := float64(1<<20) / 256
	chi := 0.0
	for _, c := range counts {
		chi += (c - exp) * (c - exp) / exp
	}
	if chi > 400 { // p ≈ 1e-8 for 255 d.o.f.
		t.Fatalf("chi-square = %.1f, bytes are not uniform", chi)
	}
}

func TestSpec(t *testing.T) {
	s := Spec{PackageID: "Octoha.Load", Version: "1.42.7", Seed: 1, Size: 10}
	if got := s.FileName(); got != "Octoha.Load.1.42.7.zip" {
		t.Fatalf("FileName = %q", got)
	}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	s.Ext = ".tar.gz"
	if got := s.FileName(); got != "Octoha.Load.1.42.7.tar.gz" {
		t.Fatalf("FileName = %q", got)
	}
	for _, bad := range []Spec{
		{PackageID: "bad id", Version: "1.0.0"},
		{PackageID: "Ok", Version: "x.y"},
		{PackageID: "Ok", Version: "1.0.0", Size: -1},
		{PackageID: "Ok", Version: "1.0.0", Ext: ".exe"},
	} {
		if bad.Validate() == nil {
			t.Errorf("Validate(%+v) accepted", bad)
		}
	}
	if s.Hash() != Hash(1, 10) {
		t.Fatal("Spec.Hash differs from Hash")
	}
}

func TestDeriveSeed(t *testing.T) {
	seen := map[int64]bool{}
	for run := int64(0); run < 20; run++ {
		for i := range 50 {
			s := DeriveSeed(run, i)
			if seen[s] {
				t.Fatalf("DeriveSeed(%d,%d) repeats", run, i)
			}
			seen[s] = true
			if DeriveSeed(run, i) != s {
				t.Fatal("DeriveSeed not deterministic")
			}
		}
	}
}

func TestParseSize(t *testing.T) {
	good := map[string]int64{
		"0": 0, "1024": 1024, "10B": 10, "1KiB": 1024, "64MiB": 64 << 20, "1GiB": 1 << 30,
		"500MB": 500_000_000, "1.5GiB": 3 << 29, "2g": 2 << 30, " 3 mib ": 3 << 20,
		"1kb": 1000, "1TB": 1e12, "0.5KiB": 512,
	}
	for in, want := range good {
		got, err := ParseSize(in)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "-1", "1.2.3GB", "1XB", "0.3B", "99999999999TiB", "1 G B", "."} {
		if got, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) = %d, want an error", in, got)
		}
	}
}

func TestFormatSize(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 3 << 29: "1.5 GiB"} {
		if got := FormatSize(n); got != want {
			t.Errorf("FormatSize(%d) = %q, want %q", n, got, want)
		}
	}
}

func BenchmarkGenerate(b *testing.B) {
	buf := make([]byte, 256<<10)
	r := New(1, 1<<62)
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		if _, err := r.Read(buf); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHash64MiB(b *testing.B) {
	b.SetBytes(64 << 20)
	for b.Loop() {
		_ = Hash(1, 64<<20)
	}
}
