package history

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
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

	// shared is the file of a history several commands append to (Join):
	// every write locks it and first reads what others appended since
	// (known is its size after this recorder's last look), so sequence
	// numbers and fault IDs stay unique across commands.
	shared   *os.File
	known    int64
	commands int
	hasMeta  bool
	command  string
}

// Create opens path for appending (creating it if needed).
func Create(path string) (*Recorder, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open history %s: %w", path, err)
	}
	return &Recorder{w: f, closer: f}, nil
}

// Join opens a history that several commands share (one run directory
// for upload, attack, fault, …) and registers this command in it. Under a
// lock on the file it reads how far the history got, so this recorder
// continues the sequence numbers and fault IDs after those already there
// (and after those other commands append meanwhile); it writes meta as the
// history's header only when the file has none yet; and it records a
// Command entry named name-N (N counts the commands in this history, from
// 1), which it returns and which tags every record it writes.
func Join(path, name string, meta Meta, cmd Command) (*Recorder, string, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o644)
	if err != nil {
		return nil, "", fmt.Errorf("open history %s: %w", path, err)
	}
	r := &Recorder{w: f, closer: f, shared: f}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.begin(); err != nil {
		f.Close()
		return nil, "", err
	}
	if !r.hasMeta {
		if meta.Time.IsZero() {
			meta.Time = time.Now()
		}
		r.writeLocked(entry{Meta: &meta})
	}
	cmd.Name = name + "-" + strconv.Itoa(r.commands+1)
	if cmd.Time.IsZero() {
		cmd.Time = time.Now()
	}
	r.command = cmd.Name
	r.writeLocked(entry{Command: &cmd})
	if err := r.end(); err != nil || r.err != nil {
		f.Close()
		return nil, "", errors.Join(err, r.err)
	}
	return r, cmd.Name, nil
}

// Command is the name this recorder's records are tagged with ("" unless
// made by Join).
func (r *Recorder) Command() string {
	if r == nil {
		return ""
	}
	return r.command
}

// begin locks a shared file and reads what other commands appended since
// this recorder last looked. Callers hold r.mu.
func (r *Recorder) begin() error {
	if r.shared == nil {
		return nil
	}
	if err := lockFile(r.shared); err != nil {
		return fmt.Errorf("lock history: %w", err)
	}
	st, err := r.shared.Stat()
	if err != nil {
		unlockFile(r.shared)
		return fmt.Errorf("read history: %w", err)
	}
	if st.Size() == r.known {
		return nil
	}
	sc := bufio.NewScanner(io.NewSectionReader(r.shared, r.known, st.Size()-r.known))
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var e entry
		if json.Unmarshal(sc.Bytes(), &e) != nil {
			continue
		}
		switch {
		case e.Op != nil:
			r.seq = max(r.seq, e.Op.Seq)
		case e.Fault != nil:
			if i := strings.LastIndexByte(e.Fault.ID, '-'); i >= 0 {
				if n, err := strconv.ParseUint(e.Fault.ID[i+1:], 10, 64); err == nil {
					r.faults = max(r.faults, n)
				}
			}
		case e.Meta != nil:
			r.hasMeta = true
		case e.Command != nil:
			r.commands++
		}
	}
	r.known = st.Size()
	return nil
}

// end notes how far the shared file got and unlocks it.
func (r *Recorder) end() error {
	if r.shared == nil {
		return nil
	}
	defer unlockFile(r.shared)
	st, err := r.shared.Stat()
	if err != nil {
		return fmt.Errorf("read history: %w", err)
	}
	r.known = st.Size()
	return nil
}

// locked runs fn with r.mu held and, for a shared history, the file locked
// and caught up.
func (r *Recorder) locked(fn func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.begin(); err != nil {
		if r.err == nil {
			r.err = err
		}
		fn() // still record: a lost lock must not lose the entry
		return
	}
	fn()
	if err := r.end(); err != nil && r.err == nil {
		r.err = err
	}
}

// NewRecorder records into w, which must take each Write whole.
func NewRecorder(w io.Writer) *Recorder { return &Recorder{w: w} }

// Op records a finished operation and returns it with its sequence number.
func (r *Recorder) Op(op Op) Op {
	if r == nil {
		return op
	}
	r.locked(func() {
		r.seq++
		op.Seq = r.seq
		if op.Command == "" {
			op.Command = r.command
		}
		r.writeLocked(entry{Op: &op})
	})
	return op
}

// FaultStart records the start of a fault and returns it with a fresh ID;
// pass it to FaultEnd once the fault is over.
func (r *Recorder) FaultStart(kind, target, detail string) Fault {
	f := Fault{Kind: kind, Target: target, Detail: detail, Start: time.Now()}
	if r == nil {
		return f
	}
	r.locked(func() {
		r.faults++
		f.ID = kind + "-" + strconv.FormatUint(r.faults, 10)
		f.Command = r.command
		r.writeLocked(entry{Fault: &f})
	})
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
	r.locked(func() { r.writeLocked(entry{Fault: &f}) })
	return f
}

// Fault records a complete fault (for faults timed elsewhere).
func (r *Recorder) Fault(f Fault) {
	if r == nil {
		return
	}
	r.locked(func() {
		if f.ID == "" {
			r.faults++
			f.ID = f.Kind + "-" + strconv.FormatUint(r.faults, 10)
		}
		if f.Command == "" {
			f.Command = r.command
		}
		r.writeLocked(entry{Fault: &f})
	})
}

// LB records a load-balancer state observation.
func (r *Recorder) LB(s LBState) {
	if r == nil {
		return
	}
	r.locked(func() {
		if s.Command == "" {
			s.Command = r.command
		}
		r.writeLocked(entry{LB: &s})
	})
}

// Meta records what the run is.
func (r *Recorder) Meta(m Meta) {
	if r == nil {
		return
	}
	if m.Time.IsZero() {
		m.Time = time.Now()
	}
	r.locked(func() { r.writeLocked(entry{Meta: &m}) })
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
		r.shared = nil
	}
	return err
}
