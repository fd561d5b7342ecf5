package history

import (
	"fmt"
	"sync"
	"time"
)

// DefaultBatchDelay is how long a Batch holds an op before writing it.
const DefaultBatchDelay = 100 * time.Millisecond

// batchMax is how many ops a Batch writes at most in one go; reaching it
// wakes the writer early, so memory stays bounded at any request rate.
const batchMax = 1024

// Batch records ops into a Recorder in batches: Add only queues the op
// (no encoding, no lock on the shared file, no system call), and a writer
// goroutine encodes what is queued and appends it with one write under
// one lock every delay or batchMax ops. It is for high-rate streams such
// as attacks, where a write per request would cost the loader as much as
// the request. The price: a crash of the harness loses up to delay's
// worth of ops (a Recorder loses at most one); Close writes the rest.
// Sequence numbers are assigned at write time, in Add order.
//
// A nil *Batch, or one over a nil Recorder, discards everything.
type Batch struct {
	r     *Recorder
	mu    sync.Mutex
	queue []Op
	full  chan struct{} // a batch is ready: write now
	stop  chan struct{}
	done  chan struct{}
}

// NewBatch starts a Batch writing into r every delay (DefaultBatchDelay
// if not positive). Close it to write the last ops and stop its goroutine.
func NewBatch(r *Recorder, delay time.Duration) *Batch {
	if r == nil {
		return nil
	}
	if delay <= 0 {
		delay = DefaultBatchDelay
	}
	b := &Batch{r: r, full: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go b.run(delay)
	return b
}

// Add queues an op; its Seq is assigned when it is written.
func (b *Batch) Add(op Op) {
	if b == nil {
		return
	}
	b.mu.Lock()
	b.queue = append(b.queue, op)
	n := len(b.queue)
	b.mu.Unlock()
	if n >= batchMax {
		select {
		case b.full <- struct{}{}:
		default:
		}
	}
}

func (b *Batch) run(delay time.Duration) {
	defer close(b.done)
	t := time.NewTicker(delay)
	defer t.Stop()
	var spare []Op
	var buf []byte
	for {
		select {
		case <-b.stop:
			b.flush(&spare, &buf)
			return
		case <-t.C:
		case <-b.full:
		}
		b.flush(&spare, &buf)
	}
}

// flush writes what is queued, swapping the queue with spare so Add
// appends into a slice the writer is not reading.
func (b *Batch) flush(spare *[]Op, buf *[]byte) {
	b.mu.Lock()
	ops := b.queue
	b.queue = (*spare)[:0]
	b.mu.Unlock()
	if len(ops) > 0 {
		b.r.ops(ops, buf)
	}
	clear(ops) // drop references to strings for the collector
	*spare = ops
}

// Close writes the queued ops and stops the writer. It returns the
// recorder's first write error, if any.
func (b *Batch) Close() error {
	if b == nil {
		return nil
	}
	select {
	case <-b.stop:
	default:
		close(b.stop)
	}
	<-b.done
	return b.r.Err()
}

// ops appends ops as consecutive entries with one write, under one lock
// of a shared history.
func (r *Recorder) ops(ops []Op, buf *[]byte) {
	r.locked(func() {
		b := (*buf)[:0]
		for i := range ops {
			r.seq++
			ops[i].Seq = r.seq
			if ops[i].Command == "" {
				ops[i].Command = r.command
			}
			mark := len(b)
			var err error
			if b, err = appendOpEntry(b, &ops[i]); err != nil {
				b = b[:mark] // not half an entry
				if r.err == nil {
					r.err = fmt.Errorf("write history: %w", err)
				}
			}
		}
		if _, err := r.w.Write(b); err != nil && r.err == nil {
			r.err = fmt.Errorf("write history: %w", err)
		}
		*buf = b
	})
}
