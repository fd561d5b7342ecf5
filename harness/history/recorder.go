package history

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"time"
)

// Recorder appends entries to a history. It is safe for concurrent use. Each
// entry is written with a single write call on an O_APPEND file, so a crash
// of the harness loses at most the entry being written, and several
// processes may append to the same file.
//
// A nil *Recorder discards everything, so callers need not check.
type Recorder struct {
	mu     sync.Mutex
	w      io.Writer
	closer io.Closer
	seq    uint64
	faults uint64
	err    error // first write error, reported by Close
}

// Create opens path for appending (creating it if needed).
func Create(path string) (*Recorder, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open history %s: %w", path, err)
	}
	return &Recorder{w: f, closer: f}, nil
}

// NewRecorder records into w, which must take each Write whole.
func NewRecorder(w io.Writer) *Recorder { return &Recorder{w: w} }

// Op records a finished operation and returns it with its sequence number.
func (r *Recorder) Op(op Op) Op {
	if r == nil {
		return op
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seq++
	op.Seq = r.seq
	r.writeLocked(entry{Op: &op})
	return op
}

// FaultStart records the start of a fault and returns it with a fresh ID;
// pass it to FaultEnd once the fault is over.
func (r *Recorder) FaultStart(kind, target, detail string) Fault {
	f := Fault{Kind: kind, Target: target, Detail: detail, Start: time.Now()}
	if r == nil {
		return f
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.faults++
	f.ID = kind + "-" + strconv.FormatUint(r.faults, 10)
	r.writeLocked(entry{Fault: &f})
	return f
}

// FaultEnd records the end of a fault started by FaultStart. A non-nil err
// says the recovery failed.
func (r *Recorder) FaultEnd(f Fault, err error) Fault {
	f.End = time.Now()
	if err != nil {
		f.Error = err.Error()
	}
	if r == nil {
		return f
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writeLocked(entry{Fault: &f})
	return f
}

// Fault records a complete fault (for faults timed elsewhere).
func (r *Recorder) Fault(f Fault) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if f.ID == "" {
		r.faults++
		f.ID = f.Kind + "-" + strconv.FormatUint(r.faults, 10)
	}
	r.writeLocked(entry{Fault: &f})
}

// LB records a load-balancer state observation.
func (r *Recorder) LB(s LBState) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writeLocked(entry{LB: &s})
}

// Meta records what the run is.
func (r *Recorder) Meta(m Meta) {
	if r == nil {
		return
	}
	if m.Time.IsZero() {
		m.Time = time.Now()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writeLocked(entry{Meta: &m})
}

func (r *Recorder) writeLocked(e entry) {
	b, err := json.Marshal(e)
	if err == nil {
		b = append(b, '\n')
		_, err = r.w.Write(b)
	}
	if err != nil && r.err == nil {
		r.err = fmt.Errorf("write history: %w", err)
	}
}

// Err returns the first write error, if any.
func (r *Recorder) Err() error {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// Close closes the underlying file and returns the first write error.
func (r *Recorder) Close() error {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	err := r.err
	if r.closer != nil {
		if cerr := r.closer.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("close history: %w", cerr)
		}
		r.closer = nil
	}
	return err
}
