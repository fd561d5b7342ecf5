package history

import (
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// A batch into a shared history: every op is written once, in Add order
// with consecutive sequence numbers continuing the recorder's own, ops
// written meanwhile by another command keep unique numbers, and Close
// writes what the timer has not.
func TestBatchWritesEveryOpInOrder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history.jsonl")
	r, _, err := Join(path, "attack", Meta{Scenario: "s"}, Command{})
	if err != nil {
		t.Fatal(err)
	}
	other, _, err := Join(path, "upload", Meta{}, Command{})
	if err != nil {
		t.Fatal(err)
	}
	r.Op(Op{Kind: KindPing, ID: "before"})
	b := NewBatch(r, time.Hour) // only the batch size and Close write
	const n = 2*batchMax + 7
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range 20 {
			other.Op(Op{Kind: KindUpload, ID: "other-" + strconv.Itoa(i)})
		}
	})
	for i := range n {
		b.Add(Op{Kind: KindPing, ID: strconv.Itoa(i), Outcome: OK})
	}
	wg.Wait()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil { // idempotent
		t.Fatal(err)
	}
	r.Close()
	other.Close()
	h, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[uint64]bool{}
	next, batch := 0, 0
	var last uint64
	for _, o := range h.Ops {
		if seen[o.Seq] {
			t.Fatalf("sequence number %d twice", o.Seq)
		}
		seen[o.Seq] = true
		if o.Kind != KindPing || o.ID == "before" {
			continue
		}
		if o.ID != strconv.Itoa(next) || o.Seq <= last || o.Command != r.Command() {
			t.Fatalf("batched op %d: got %+v after seq %d", next, o, last)
		}
		next, last = next+1, o.Seq
		batch++
	}
	if batch != n || len(h.Ops) != n+1+20 {
		t.Fatalf("%d batched ops of %d written, %d ops in all (want %d)", batch, n, len(h.Ops), n+21)
	}
}

// The timer writes a batch without Close.
func TestBatchWritesOnTimer(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history.jsonl")
	r, err := Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b := NewBatch(r, 10*time.Millisecond)
	defer b.Close()
	b.Add(Op{Kind: KindPing, ID: "one"})
	deadline := time.Now().Add(5 * time.Second)
	for {
		h, err := Load(path)
		if err == nil && len(h.Ops) == 1 && h.Ops[0].ID == "one" && h.Ops[0].Seq == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("op not written within 5s of a 10ms batch delay: %v", err)
		}
		time.Sleep(10 * time.Millisecond) // polling the file with a deadline
	}
}

func TestNilBatchDiscards(t *testing.T) {
	var b *Batch
	b.Add(Op{})
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if NewBatch(nil, 0) != nil {
		t.Fatal("a batch over a nil recorder should be nil")
	}
}
