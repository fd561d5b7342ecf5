package loaders

import (
	"fmt"
	"time"
)

// Segment is worker Index's part of a run of Count workers: the execution
// segment [Index/Count, (Index+1)/Count) of every quantity the run divides
// (requests per period, packages, concurrency), as k6 splits a test over
// instances. Parts are taken as floor(q·(i+1)/n) − floor(q·i/n), so the
// workers' parts of a quantity add up to it exactly and never overlap.
type Segment struct {
	Index int `json:"index"`
	Count int `json:"count"`
}

// Validate says whether the segment names a worker of the run.
func (s Segment) Validate() error {
	if s.Count < 1 {
		return fmt.Errorf("segment of %d workers: need at least one", s.Count)
	}
	if s.Index < 0 || s.Index >= s.Count {
		return fmt.Errorf("worker index %d is not in 0..%d", s.Index, s.Count-1)
	}
	return nil
}

// String is the segment as k6 writes it, e.g. "1/3:2/3".
func (s Segment) String() string {
	return fmt.Sprintf("%d/%d:%d/%d", s.Index, s.Count, s.Index+1, s.Count)
}

// Range is the worker's part of q items numbered 0..q-1: [first, first+n).
func (s Segment) Range(q int) (first, n int) {
	first = q * s.Index / s.Count
	return first, q*(s.Index+1)/s.Count - first
}

// Part is the worker's part of a quantity q.
func (s Segment) Part(q int) int {
	_, n := s.Range(q)
	return n
}

// Rate is the worker's part of a rate of freq requests per period: freq
// is split as any quantity, the period kept. A worker whose part is zero
// would send nothing, which Run refuses before it starts anyone (see
// SplitRate).
func (s Segment) Rate(freq int, per time.Duration) (int, time.Duration) {
	return s.Part(freq), per
}

// SplitRate checks that every one of count workers gets a non-zero part
// of freq (freq 0, as fast as possible, is split as it is: 0 each).
func SplitRate(freq, count int) error {
	if freq > 0 && freq < count {
		return fmt.Errorf("a rate of %d per period over %d loaders leaves some loader nothing to send: ask for at least %d per period, or fewer loaders", freq, count, count)
	}
	return nil
}
