package history

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"time"
)

// History is a decoded history: operations in sequence order, faults in
// start order (the latest record of each fault wins), LB observations in
// time order.
type History struct {
	Meta   []Meta
	Ops    []Op
	Faults []Fault
	LB     []LBState
	// Commands are the commands that joined a shared history, in order.
	Commands []Command
	// Truncated is set when the last line was incomplete (the writer
	// crashed mid-line); everything before it was read.
	Truncated bool
}

// Load reads a history file.
func Load(path string) (*History, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open history: %w", err)
	}
	defer f.Close()
	h, err := Decode(f)
	if err != nil {
		return nil, fmt.Errorf("read history %s: %w", path, err)
	}
	return h, nil
}

// Decode reads a history from r. A malformed line other than the last one is
// an error; an incomplete last line (no newline) is dropped and reported in
// Truncated.
func Decode(r io.Reader) (*History, error) {
	h := &History{}
	faults := map[string]int{}
	br := bufio.NewReaderSize(r, 64<<10)
	for lineNo := 1; ; lineNo++ {
		line, err := br.ReadBytes('\n')
		if err != nil && err != io.EOF {
			return nil, err
		}
		complete := len(line) > 0 && line[len(line)-1] == '\n'
		if len(bytes.TrimSpace(line)) > 0 {
			var e entry
			if uerr := json.Unmarshal(line, &e); uerr != nil {
				if !complete {
					h.Truncated = true
					break
				}
				return nil, fmt.Errorf("line %d: %w", lineNo, uerr)
			}
			switch {
			case e.Op != nil:
				h.Ops = append(h.Ops, *e.Op)
			case e.Fault != nil:
				if i, ok := faults[e.Fault.ID]; ok && e.Fault.ID != "" {
					h.Faults[i] = *e.Fault
				} else {
					faults[e.Fault.ID] = len(h.Faults)
					h.Faults = append(h.Faults, *e.Fault)
				}
			case e.LB != nil:
				h.LB = append(h.LB, *e.LB)
			case e.Meta != nil:
				h.Meta = append(h.Meta, *e.Meta)
			case e.Command != nil:
				h.Commands = append(h.Commands, *e.Command)
			}
		}
		if err == io.EOF {
			break
		}
	}
	sort.SliceStable(h.Ops, func(i, j int) bool { return h.Ops[i].Seq < h.Ops[j].Seq })
	sort.SliceStable(h.Faults, func(i, j int) bool { return h.Faults[i].Start.Before(h.Faults[j].Start) })
	sort.SliceStable(h.LB, func(i, j int) bool { return h.LB[i].Time.Before(h.LB[j].Time) })
	return h, nil
}

// Merge combines histories (e.g. from several machines) into one, ordering
// operations by start time and renumbering their sequence numbers.
func Merge(hs ...*History) *History {
	out := &History{}
	for _, h := range hs {
		out.Meta = append(out.Meta, h.Meta...)
		out.Ops = append(out.Ops, h.Ops...)
		out.Faults = append(out.Faults, h.Faults...)
		out.LB = append(out.LB, h.LB...)
		out.Commands = append(out.Commands, h.Commands...)
		out.Truncated = out.Truncated || h.Truncated
	}
	sort.SliceStable(out.Ops, func(i, j int) bool { return out.Ops[i].Start.Before(out.Ops[j].Start) })
	for i := range out.Ops {
		out.Ops[i].Seq = uint64(i + 1)
	}
	sort.SliceStable(out.Faults, func(i, j int) bool { return out.Faults[i].Start.Before(out.Faults[j].Start) })
	sort.SliceStable(out.LB, func(i, j int) bool { return out.LB[i].Time.Before(out.LB[j].Time) })
	return out
}

// Span returns the first start and last end over all operations and faults.
func (h *History) Span() (start, end time.Time) {
	upd := func(s, e time.Time) {
		if !s.IsZero() && (start.IsZero() || s.Before(start)) {
			start = s
		}
		if e.After(end) {
			end = e
		}
	}
	for _, o := range h.Ops {
		upd(o.Start, o.End)
	}
	for _, f := range h.Faults {
		upd(f.Start, f.End)
	}
	return start, end
}

// OpsOfKind returns the operations of one kind, in sequence order.
func (h *History) OpsOfKind(kind string) []Op {
	var out []Op
	for _, o := range h.Ops {
		if o.Kind == kind {
			out = append(out, o)
		}
	}
	return out
}

// OpenFault returns the latest fault of one of kinds on target that has not
// ended: a fault injected by one command and still waiting for the command
// that recovers it.
func (h *History) OpenFault(target string, kinds ...string) (Fault, bool) {
	for i := len(h.Faults) - 1; i >= 0; i-- {
		f := h.Faults[i]
		if f.Target == target && f.End.IsZero() && slices.Contains(kinds, f.Kind) {
			return f, true
		}
	}
	return Fault{}, false
}
