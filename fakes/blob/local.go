package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
)

// local is a Store in a local directory, with plain os calls.
type local struct {
	root string
	log  *slog.Logger
}

func openLocal(ctx context.Context, dir string, o options) (Store, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("blob: open %s: %w", dir, err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("blob: open %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("blob: create root %s: %w", abs, err)
	}
	return &local{root: abs, log: o.logger}, nil
}

func (s *local) String() string { return s.root }

func (s *local) path(name string) string {
	return filepath.Join(s.root, filepath.FromSlash(name))
}

// mapErr turns os errors into the package's sentinel errors (keeping the
// original text) so callers can branch with errors.Is.
func mapErr(op, name string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("blob: %s %s: %w (%v)", op, name, ErrNotExist, err)
	case errors.Is(err, fs.ErrExist):
		return fmt.Errorf("blob: %s %s: %w (%v)", op, name, ErrExist, err)
	default:
		return fmt.Errorf("blob: %s %s: %w", op, name, err)
	}
}

func (s *local) Create(ctx context.Context, name string) (Writer, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("blob: create %s: %w", name, err)
	}
	p := s.path(name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return nil, mapErr("create parent of", name, err)
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, mapErr("create", name, err)
	}
	return &localWriter{ctx: ctx, f: f, name: name}, nil
}

// localWriter writes straight to the file; the context is checked on each
// Write so a cancelled upload stops.
type localWriter struct {
	ctx  context.Context
	f    *os.File
	name string
	// written counts bytes written; hinted is where streamHint last
	// stopped (only Write touches them).
	written, hinted int64

	mu        sync.Mutex
	closed    bool
	committed bool
	removed   bool
}

func (w *localWriter) Write(p []byte) (int, error) {
	if err := w.ctx.Err(); err != nil {
		return 0, fmt.Errorf("blob: write %s: %w", w.name, err)
	}
	n, err := w.f.Write(p)
	if err != nil {
		return n, fmt.Errorf("blob: write %s: %w", w.name, err)
	}
	w.written += int64(n)
	if w.written-w.hinted >= streamWindow {
		streamHint(w.f, w.hinted, w.written-w.hinted)
		w.hinted = w.written
	}
	return n, nil
}

func (w *localWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		if w.committed {
			return nil
		}
		return fmt.Errorf("blob: close %s: already closed without commit", w.name)
	}
	w.closed = true
	if err := w.ctx.Err(); err != nil {
		_ = w.f.Close()
		return fmt.Errorf("blob: close %s: %w", w.name, err)
	}
	if err := w.f.Close(); err != nil {
		return fmt.Errorf("blob: close %s: %w", w.name, err)
	}
	w.committed = true
	return nil
}

func (w *localWriter) Abort() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.committed || w.removed {
		return nil
	}
	if !w.closed {
		w.closed = true
		_ = w.f.Close()
	}
	if err := os.Remove(w.f.Name()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("blob: abort %s: %w", w.name, err)
	}
	w.removed = true
	return nil
}

func (s *local) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("blob: open %s: %w", name, err)
	}
	f, err := os.Open(s.path(name))
	if err != nil {
		return nil, mapErr("open", name, err)
	}
	if st, err := f.Stat(); err != nil || st.IsDir() {
		_ = f.Close()
		if err == nil {
			err = errors.New("is a directory")
		}
		return nil, fmt.Errorf("blob: open %s: %w", name, err)
	}
	return f, nil
}

func (s *local) Stat(ctx context.Context, name string) (Info, error) {
	if err := checkName(name); err != nil {
		return Info{}, err
	}
	if err := ctx.Err(); err != nil {
		return Info{}, fmt.Errorf("blob: stat %s: %w", name, err)
	}
	st, err := os.Stat(s.path(name))
	if err != nil {
		return Info{}, mapErr("stat", name, err)
	}
	return Info{Name: name, Size: st.Size(), ModTime: st.ModTime(), IsDir: st.IsDir()}, nil
}

func (s *local) Publish(ctx context.Context, from, to string, replace bool) error {
	if err := checkName(from); err != nil {
		return err
	}
	if err := checkName(to); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("blob: publish %s: %w", to, err)
	}
	src, dst := s.path(from), s.path(to)
	if _, err := os.Lstat(src); err != nil {
		return mapErr("publish from", from, err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return mapErr("create parent of", to, err)
	}
	if replace {
		return mapErr("publish "+from+" to", to, os.Rename(src, dst))
	}
	// A hard link is an atomic create-if-absent of the complete file.
	err := os.Link(src, dst)
	if err == nil {
		if rerr := os.Remove(src); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			// Published all the same; the caller's temp sweep gets the rest.
			s.log.Warn("blob: published, but the source name could not be removed", "from", from, "to", to, "err", rerr)
		}
		return nil
	}
	if errors.Is(err, fs.ErrExist) || errors.Is(err, fs.ErrNotExist) {
		return mapErr("publish "+from+" to", to, err)
	}
	// No hard links on this file system: rename without replacing, where
	// the kernel offers it.
	if rerr := renameNoReplace(src, dst); rerr != nil {
		if errors.Is(rerr, fs.ErrExist) || errors.Is(rerr, fs.ErrNotExist) {
			return mapErr("publish "+from+" to", to, rerr)
		}
		return fmt.Errorf("blob: publish %s to %s: no atomic no-replace rename here (link: %v; renameat2: %w)", from, to, err, rerr)
	}
	return nil
}

func (s *local) Remove(ctx context.Context, name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("blob: remove %s: %w", name, err)
	}
	if err := os.Remove(s.path(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return mapErr("remove", name, err)
	}
	return nil
}

func (s *local) Walk(ctx context.Context, dir string) ([]Info, error) {
	if err := checkDir(dir); err != nil {
		return nil, err
	}
	var out []Info
	start := s.path(dir)
	err := filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error {
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		if err != nil {
			if p == start && errors.Is(err, fs.ErrNotExist) {
				return fs.SkipAll
			}
			// A file removed while we walk is not an error.
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() {
			return nil
		}
		st, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(s.root, p)
		if err != nil {
			return err
		}
		out = append(out, Info{Name: filepath.ToSlash(rel), Size: st.Size(), ModTime: st.ModTime()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("blob: walk %q: %w", dir, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (s *local) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("blob: ping %s: %w", s.root, err)
	}
	st, err := os.Stat(s.root)
	if err != nil {
		return fmt.Errorf("blob: ping %s: %w", s.root, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("blob: ping %s: not a directory", s.root)
	}
	return nil
}

func (s *local) Close() error { return nil }
