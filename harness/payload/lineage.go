package payload

// ChangeBlock is the granularity of the changes between generations of a
// lineage: a generation rewrites whole blocks of this many bytes, as a new
// build of a package rewrites some of the files inside it.
const ChangeBlock = 64 << 10

// lineage makes generation gen of a package: block b holds the bytes of
// the latest generation g ≤ gen that rewrote it (generation 0 wrote them
// all), taken at the same offsets of generation g's own stream. Whether
// generation g rewrites block b is a pure function of (root, g, b), so any
// byte of any generation is computed in O(gen) without the ones before.
type lineage struct {
	root   uint64
	gen    int
	thresh uint64   // generation g rewrites block b when h(g,b) < thresh
	bases  []uint64 // stream base of each generation
}

// NewGeneration returns a reader of generation gen (0 is New(seed, size))
// of the lineage rooted at seed in which each generation rewrites a
// change fraction (0..1] of the blocks of the one before, chosen
// deterministically and independently per block, so about change of the
// blocks differ between consecutive generations.
func NewGeneration(seed, size int64, change float64, gen int) *Reader {
	r := New(seed, size)
	if gen <= 0 || change <= 0 {
		return r
	}
	change = min(change, 1)
	l := &lineage{root: base(seed), gen: gen, bases: make([]uint64, gen+1)}
	if change >= 1 {
		l.thresh = ^uint64(0)
	} else {
		l.thresh = uint64(change * (1 << 63) * 2)
	}
	l.bases[0] = r.base
	for g := 1; g <= gen; g++ {
		l.bases[g] = base(DeriveSeed(seed, g))
	}
	r.lin = l
	return r
}

// source is the stream base that block b of the lineage's generation
// comes from.
func (l *lineage) source(b int64) uint64 {
	for g := l.gen; g >= 1; g-- {
		if l.changed(g, b) {
			return l.bases[g]
		}
	}
	return l.bases[0]
}

func (l *lineage) changed(g int, b int64) bool {
	return mix(l.root^uint64(g)*gamma^mix(uint64(b)+0x5bd1e995)) < l.thresh
}

// Changed reports whether generation gen of the lineage rooted at seed
// rewrote block b (of ChangeBlock bytes) relative to generation gen-1.
func Changed(seed int64, change float64, gen int, b int64) bool {
	r := NewGeneration(seed, 1, change, gen)
	if r.lin == nil {
		return false
	}
	return r.lin.changed(gen, b)
}

func (l *lineage) fill(off int64, p []byte) {
	for len(p) > 0 {
		b := off / ChangeBlock
		n := min(int64(len(p)), (b+1)*ChangeBlock-off)
		fill(l.source(b), off, p[:n])
		p, off = p[n:], off+n
	}
}
