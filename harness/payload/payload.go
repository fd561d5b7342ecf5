// Package payload owns the content of the packages the harness uploads:
// deterministic pseudo-random bytes generated on the fly from a seed, so a
// 1 GiB package never exists in memory or on disk, its SHA-1 is known
// without storing it, and any run can be replayed byte for byte.
//
// The stream is SplitMix64 used as a counter-based generator: word i of the
// stream is mix(base + (i+1)·γ), where base is derived from the seed. Each
// 8-byte word depends only on its index, so the reader supports ReadAt and
// Seek at no cost, and generation runs at several GB/s.
package payload

import (
	"crypto/sha1"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strings"

	"github.com/octoha/octoha/octopusapi"
)

// DefaultExt is the extension of generated packages. The bytes are not a
// real zip archive; Octopus's built-in feed stores .zip files without
// inspecting them.
const DefaultExt = ".zip"

const gamma = 0x9e3779b97f4a7c15 // SplitMix64's golden-ratio increment

// mix is SplitMix64's output function (Stafford's variant 13).
func mix(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// base maps a seed to a starting point of the sequence. Mixing it first keeps
// streams of nearby seeds (1, 2, 3, …) far apart instead of shifted copies.
func base(seed int64) uint64 { return mix(uint64(seed) ^ 0x6f63746f68612d70) } // "octoha-p"

// Reader produces size pseudo-random bytes derived from a seed. It
// implements io.Reader, io.ReaderAt, io.Seeker and io.WriterTo. It is not
// safe for concurrent use except for ReadAt.
type Reader struct {
	base uint64
	size int64
	off  int64
	lin  *lineage // nil: one stream; else blocks come from generations
}

var (
	_ io.ReadSeeker = (*Reader)(nil)
	_ io.ReaderAt   = (*Reader)(nil)
	_ io.WriterTo   = (*Reader)(nil)
)

// New returns a reader of size bytes generated from seed. The same seed gives
// the same bytes; a shorter size gives a prefix of a longer one.
func New(seed int64, size int64) *Reader {
	if size < 0 {
		size = 0
	}
	return &Reader{base: base(seed), size: size}
}

// Size returns the total number of bytes the reader produces.
func (r *Reader) Size() int64 { return r.size }

// Len returns the number of bytes not yet read.
func (r *Reader) Len() int64 { return r.size - r.off }

// Read fills p with the next bytes of the stream.
func (r *Reader) Read(p []byte) (int, error) {
	if r.off >= r.size {
		return 0, io.EOF
	}
	if rem := r.size - r.off; int64(len(p)) > rem {
		p = p[:rem]
	}
	r.fill(r.off, p)
	r.off += int64(len(p))
	return len(p), nil
}

// fill writes the reader's bytes [off, off+len(p)) into p.
func (r *Reader) fill(off int64, p []byte) {
	if r.lin == nil {
		fill(r.base, off, p)
		return
	}
	r.lin.fill(off, p)
}

// ReadAt fills p with the bytes at offset off, as io.ReaderAt specifies.
func (r *Reader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("payload: negative offset")
	}
	if off >= r.size {
		return 0, io.EOF
	}
	n := len(p)
	var err error
	if rem := r.size - off; int64(n) > rem {
		n = int(rem)
		err = io.EOF
	}
	r.fill(off, p[:n])
	return n, err
}

// Seek sets the offset of the next Read.
func (r *Reader) Seek(offset int64, whence int) (int64, error) {
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = r.off + offset
	case io.SeekEnd:
		abs = r.size + offset
	default:
		return 0, errors.New("payload: invalid whence")
	}
	if abs < 0 {
		return 0, errors.New("payload: negative position")
	}
	r.off = abs
	return abs, nil
}

// chunk is the generation buffer of WriteTo: big enough to amortise calls,
// small enough to stay in L2.
const chunk = 256 << 10

// WriteTo writes the rest of the stream to w through one reused buffer.
func (r *Reader) WriteTo(w io.Writer) (int64, error) {
	buf := make([]byte, min(chunk, max(r.Len(), 0)))
	var total int64
	for r.off < r.size {
		n, _ := r.Read(buf)
		m, err := w.Write(buf[:n])
		total += int64(m)
		if err != nil {
			return total, err
		}
		if m != n {
			return total, io.ErrShortWrite
		}
	}
	return total, nil
}

// fill writes the stream bytes [off, off+len(p)) into p.
func fill(b uint64, off int64, p []byte) {
	word := uint64(off) / 8
	// Leading partial word.
	if skip := int(off % 8); skip != 0 {
		var w [8]byte
		binary.LittleEndian.PutUint64(w[:], mix(b+(word+1)*gamma))
		n := copy(p, w[skip:])
		p = p[n:]
		word++
	}
	// Whole words, four at a time for instruction-level parallelism.
	g := uint64(gamma) // a variable, so multiples wrap mod 2^64 as intended
	x := b + (word+1)*g
	for len(p) >= 32 {
		binary.LittleEndian.PutUint64(p[0:], mix(x))
		binary.LittleEndian.PutUint64(p[8:], mix(x+g))
		binary.LittleEndian.PutUint64(p[16:], mix(x+2*g))
		binary.LittleEndian.PutUint64(p[24:], mix(x+3*g))
		x += 4 * g
		p = p[32:]
	}
	for len(p) >= 8 {
		binary.LittleEndian.PutUint64(p, mix(x))
		x += gamma
		p = p[8:]
	}
	// Trailing partial word.
	if len(p) > 0 {
		var w [8]byte
		binary.LittleEndian.PutUint64(w[:], mix(x))
		copy(p, w[:])
	}
}

// Hash returns the lower-case hex SHA-1 of the size bytes generated from
// seed, computed by generating them (about a second per GiB here).
func Hash(seed, size int64) string {
	h := sha1.New()
	if _, err := New(seed, size).WriteTo(h); err != nil {
		panic("payload: sha1 write failed: " + err.Error()) // hash.Hash never fails
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Spec describes one generated package: its Octopus identity and the seed
// and size its bytes come from.
type Spec struct {
	PackageID string
	Version   string
	Ext       string // e.g. ".zip"; empty means DefaultExt
	Seed      int64
	Size      int64
	// Gen > 0 with Change > 0 makes the bytes generation Gen of a lineage
	// rooted at Seed: each generation is the one before with a Change
	// fraction of its blocks rewritten (see NewGeneration), as successive
	// versions of a package are for delta uploads.
	Gen    int     `json:",omitempty"`
	Change float64 `json:",omitempty"`
}

// FileName returns "<PackageID>.<Version><Ext>", the name the package is
// uploaded under.
func (s Spec) FileName() string {
	ext := s.Ext
	if ext == "" {
		ext = DefaultExt
	}
	return s.PackageID + "." + s.Version + ext
}

// Reader returns a fresh reader of the package's bytes.
func (s Spec) Reader() *Reader {
	if s.Gen > 0 && s.Change > 0 {
		return NewGeneration(s.Seed, s.Size, s.Change, s.Gen)
	}
	return New(s.Seed, s.Size)
}

// Hash returns the SHA-1 of the package's bytes (by generating them).
func (s Spec) Hash() string {
	h := sha1.New()
	if _, err := s.Reader().WriteTo(h); err != nil {
		panic("payload: sha1 write failed: " + err.Error()) // hash.Hash never fails
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Validate checks that the spec names a package Octopus would accept.
func (s Spec) Validate() error {
	if !octopusapi.ValidPackageID(s.PackageID) {
		return fmt.Errorf("package ID %q is not valid (letters, digits and _ . - separators)", s.PackageID)
	}
	if !octopusapi.ValidVersion(s.Version) {
		return fmt.Errorf("version %q is not valid", s.Version)
	}
	if s.Size < 0 {
		return fmt.Errorf("size %d is negative", s.Size)
	}
	pf, err := octopusapi.ParseFileName(s.FileName())
	if err != nil {
		return err
	}
	if pf.ID != s.PackageID || pf.Version != s.Version {
		return fmt.Errorf("file name %q parses as %s %s, not %s %s", s.FileName(), pf.ID, pf.Version, s.PackageID, s.Version)
	}
	return nil
}

// DeriveSeed returns the content seed of the index-th package of a run with
// the given run seed, so packages of one run differ and a run can be replayed.
func DeriveSeed(runSeed int64, index int) int64 {
	return int64(mix(uint64(runSeed)*gamma ^ mix(uint64(index)+0x51ed27)))
}

// ParseSize parses a byte size such as "1024", "64KiB", "64MiB", "1GiB",
// "500MB", "1.5GB" or "2g" (single letters are binary units). Sizes must be
// whole bytes and non-negative.
func ParseSize(s string) (int64, error) {
	in := strings.TrimSpace(s)
	if in == "" {
		return 0, errors.New("empty size")
	}
	i := 0
	for i < len(in) && (in[i] >= '0' && in[i] <= '9' || in[i] == '.') {
		i++
	}
	num, unit := in[:i], strings.TrimSpace(in[i:])
	if num == "" || strings.Count(num, ".") > 1 || num == "." {
		return 0, fmt.Errorf("size %q: expected a number followed by an optional unit (B, KB, MB, GB, KiB, MiB, GiB, TiB)", s)
	}
	var mult int64
	switch strings.ToLower(unit) {
	case "", "b":
		mult = 1
	case "k", "kib":
		mult = 1 << 10
	case "m", "mib":
		mult = 1 << 20
	case "g", "gib":
		mult = 1 << 30
	case "t", "tib":
		mult = 1 << 40
	case "kb":
		mult = 1e3
	case "mb":
		mult = 1e6
	case "gb":
		mult = 1e9
	case "tb":
		mult = 1e12
	default:
		return 0, fmt.Errorf("size %q: unknown unit %q (use B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)", s, unit)
	}
	// Exact rational arithmetic, so "1.5GiB" is exact and "0.3B" is refused
	// rather than silently rounded.
	r, ok := new(big.Rat).SetString(num)
	if !ok {
		return 0, fmt.Errorf("size %q: %q is not a number", s, num)
	}
	r.Mul(r, new(big.Rat).SetInt64(mult))
	if !r.IsInt() {
		return 0, fmt.Errorf("size %q is not a whole number of bytes", s)
	}
	if !r.Num().IsInt64() {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return r.Num().Int64(), nil
}

// FormatSize renders n bytes with a binary unit, e.g. "1.0 GiB".
func FormatSize(n int64) string {
	const units = "KMGTPE"
	if n < 1024 && n > -1024 {
		return fmt.Sprintf("%d B", n)
	}
	v := float64(n)
	i := -1
	for (v >= 1024 || v <= -1024) && i < len(units)-1 {
		v /= 1024
		i++
	}
	return fmt.Sprintf("%.1f %ciB", v, units[i])
}
