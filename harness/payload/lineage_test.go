package payload

import (
	"bytes"
	"io"
	"testing"
)

// Each generation differs from the one before in about the change
// fraction of its blocks, and only there; every other block is the
// previous generation's, byte for byte.
func TestGenerationsChangeAFractionOfBlocks(t *testing.T) {
	const seed, size, change = 42, 200*ChangeBlock + 12345, 0.05
	g0 := readAll(t, NewGeneration(seed, size, change, 0))
	if !bytes.Equal(g0, readAll(t, New(seed, size))) {
		t.Fatal("generation 0 is not New(seed, size)")
	}
	prev := g0
	for gen := 1; gen <= 3; gen++ {
		cur := readAll(t, NewGeneration(seed, size, change, gen))
		if len(cur) != size {
			t.Fatalf("generation %d has %d bytes", gen, len(cur))
		}
		changed := 0
		for b := int64(0); b*ChangeBlock < size; b++ {
			lo, hi := b*ChangeBlock, min((b+1)*ChangeBlock, size)
			same := bytes.Equal(cur[lo:hi], prev[lo:hi])
			if same == Changed(seed, change, gen, b) {
				t.Fatalf("generation %d block %d: same as before %v, Changed says %v", gen, b, same, Changed(seed, change, gen, b))
			}
			if !same {
				changed++
			}
		}
		// 201 blocks at 5%: expect about 10; allow the binomial spread.
		if changed < 3 || changed > 25 {
			t.Fatalf("generation %d changed %d of 201 blocks, want about 5%%", gen, changed)
		}
		prev = cur
	}
	spec := Spec{PackageID: "P", Version: "1.0.3", Seed: seed, Size: size, Gen: 3, Change: change}
	if !bytes.Equal(readAll(t, spec.Reader()), prev) {
		t.Fatal("Spec with Gen 3 does not read generation 3")
	}
	if spec.Hash() == Hash(seed, size) {
		t.Fatal("generation 3 hashes like generation 0")
	}
}

// ReadAt and Seek agree with a sequential read across block boundaries.
func TestGenerationRandomAccess(t *testing.T) {
	r := NewGeneration(7, 10*ChangeBlock, 0.5, 4)
	all := readAll(t, r)
	for _, off := range []int64{0, 1, ChangeBlock - 3, ChangeBlock, 3*ChangeBlock + 17, 10*ChangeBlock - 5} {
		p := make([]byte, 2*ChangeBlock)
		n, _ := r.ReadAt(p, off)
		if !bytes.Equal(p[:n], all[off:off+int64(n)]) {
			t.Fatalf("ReadAt(%d) differs from the sequential read", off)
		}
		if _, err := r.Seek(off, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		q := make([]byte, 1000)
		m, _ := io.ReadFull(r, q)
		if !bytes.Equal(q[:m], all[off:off+int64(m)]) {
			t.Fatalf("Seek(%d)+Read differs from the sequential read", off)
		}
	}
}
