package loaders

import (
	"strings"
	"testing"
	"time"

	"github.com/octoha/octoha/harness/traffic"
)

func TestSegmentPartsAddUpAndNeverOverlap(t *testing.T) {
	for _, n := range []int{1, 2, 3, 4, 7} {
		for _, q := range []int{0, 1, 2, 3, 10, 50, 1000, 1001} {
			next, sum := 0, 0
			for i := range n {
				s := Segment{Index: i, Count: n}
				if err := s.Validate(); err != nil {
					t.Fatal(err)
				}
				first, k := s.Range(q)
				if first != next {
					t.Fatalf("q=%d n=%d: worker %d starts at %d, want %d (a gap or an overlap)", q, n, i, first, next)
				}
				if k < q/n || k > q/n+1 {
					t.Fatalf("q=%d n=%d: worker %d gets %d, not an even share", q, n, i, k)
				}
				next, sum = first+k, sum+k
			}
			if sum != q {
				t.Fatalf("q=%d n=%d: parts add up to %d", q, n, sum)
			}
		}
	}
}

func TestSegmentRateAndString(t *testing.T) {
	var got []int
	for i := range 3 {
		f, per := Segment{i, 3}.Rate(50, time.Second)
		if per != time.Second {
			t.Fatalf("period changed to %s", per)
		}
		got = append(got, f)
	}
	if got[0]+got[1]+got[2] != 50 || got[0] != 16 || got[1] != 17 || got[2] != 17 {
		t.Fatalf("50/s over 3 = %v, want [16 17 17]", got)
	}
	if s := (Segment{1, 3}).String(); s != "1/3:2/3" {
		t.Fatalf("String = %q", s)
	}
	if err := SplitRate(2, 3); err == nil || !strings.Contains(err.Error(), "at least 3") {
		t.Fatalf("2/s over 3 loaders: %v", err)
	}
	if err := SplitRate(0, 3); err != nil {
		t.Fatalf("unlimited rate: %v", err)
	}
	for _, bad := range []Segment{{0, 0}, {-1, 2}, {2, 2}} {
		if bad.Validate() == nil {
			t.Fatalf("%+v accepted", bad)
		}
	}
}

func TestJobSplitsUploadsIntoDistinctVersions(t *testing.T) {
	j := UploadJob{URL: "http://127.0.0.1:1", APIKey: testKey, Size: 10, Count: 7, Concurrency: 3, Seed: 42, First: 5}
	seen := map[string]int{}
	total := 0
	for i := range 3 {
		o, ok := j.UploadOptions(Segment{i, 3})
		if !ok || o.Concurrency != 1 {
			t.Fatalf("worker %d: ok=%v concurrency %d", i, ok, o.Concurrency)
		}
		for k := o.First; k < o.First+o.Count; k++ {
			seen[traffic.PackageSpec(o.PackageIDPrefix, o.Seed, k, 0).Version]++
		}
		total += o.Count
		if !strings.HasPrefix(o.ClientName, "loader") {
			t.Fatalf("client %q does not name the loader", o.ClientName)
		}
	}
	if total != 7 || len(seen) != 7 {
		t.Fatalf("7 packages became %d uploads of %d versions", total, len(seen))
	}
	if err := (Job{Kind: KindUpload, Upload: &j}).Validate(8); err == nil {
		t.Fatal("7 packages over 8 loaders accepted")
	}
	if err := (Job{Kind: "tasks"}).Validate(1); err == nil {
		t.Fatal("unknown job kind accepted")
	}
}
