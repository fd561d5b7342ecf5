package store

import (
	"math/rand/v2"
	"slices"
	"testing"
)

func TestCompareVersions(t *testing.T) {
	// Ascending.
	ordered := []string{
		"0.9", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
		"1.0.0-beta.11", "1.0.0-rc.1", "1.0", "1.0.0", "1.0.0+build.5", "1.0.0.0", "1.0.1", "1.2", "1.9.0",
		"1.10.0", "2.0.0.1", "10.0.0", "99999999999999999999.0",
	}
	for i := range ordered {
		for j := range ordered {
			got := CompareVersions(ordered[i], ordered[j])
			want := 0
			switch {
			case i < j:
				want = -1
			case i > j:
				want = 1
			}
			if got != want {
				t.Errorf("CompareVersions(%q, %q) = %d, want %d", ordered[i], ordered[j], got, want)
			}
		}
	}
	shuffled := slices.Clone(ordered)
	rand.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	slices.SortFunc(shuffled, CompareVersions)
	if !slices.Equal(shuffled, ordered) {
		t.Fatalf("sorted = %v", shuffled)
	}
}
