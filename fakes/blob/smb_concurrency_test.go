package blob

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
)

// A node reads several task logs at once, each reader and writer over a
// session of its own. Every session set-up must stand alone: many
// goroutines opening, reading, writing and listing small files through one
// store (and a second store, another node, reading what the first wrote)
// must see no error at all. Sessions set up concurrently once shared
// go-smb2's stateful NTLM initiator, which failed such set-ups ("packet
// failed signature verification", STATUS_ACCESS_DENIED, a nil dereference).
func TestSMBConcurrentStreams(t *testing.T) {
	srv := sambaServer(t)
	const (
		workers = 12
		rounds  = 8
	)

	// errs gathers every failure so the test reports how many there were.
	type errs struct {
		mu   sync.Mutex
		list []string
	}
	record := func(e *errs, format string, args ...any) {
		e.mu.Lock()
		e.list = append(e.list, fmt.Sprintf(format, args...))
		e.mu.Unlock()
	}
	report := func(t *testing.T, e *errs, ops int) {
		t.Helper()
		if len(e.list) == 0 {
			return
		}
		shown := e.list
		if len(shown) > 8 {
			shown = shown[:8]
		}
		t.Fatalf("%d of %d operations failed; first ones:\n%s", len(e.list), ops, strings.Join(shown, "\n"))
	}
	content := func(w, r int) []byte {
		return bytes.Repeat([]byte(fmt.Sprintf("worker %d round %d\n", w, r)), 50+w)
	}
	write := func(ctx context.Context, s Store, name string, data []byte) error {
		wr, err := s.Create(ctx, name)
		if err != nil {
			return err
		}
		if _, err := wr.Write(data); err != nil {
			_ = wr.Abort()
			return err
		}
		return wr.Close()
	}
	read := func(ctx context.Context, s Store, name string, want []byte) error {
		rd, err := s.Open(ctx, name)
		if err != nil {
			return err
		}
		got, err := io.ReadAll(rd)
		rd.Close()
		if err != nil {
			return err
		}
		if !bytes.Equal(got, want) {
			return fmt.Errorf("read %d bytes, want %d", len(got), len(want))
		}
		return nil
	}

	t.Run("one store", func(t *testing.T) {
		ctx := testCtx(t)
		s := openSMBStore(t, srv, freshDir(t))
		var e errs
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for r := range rounds {
					name := fmt.Sprintf("tasks/w%d/r%d.log", w, r)
					data := content(w, r)
					if err := write(ctx, s, name, data); err != nil {
						record(&e, "write %s: %v", name, err)
						continue
					}
					if err := read(ctx, s, name, data); err != nil {
						record(&e, "read %s: %v", name, err)
					}
					if _, err := s.Stat(ctx, name); err != nil {
						record(&e, "stat %s: %v", name, err)
					}
					if _, err := s.Walk(ctx, fmt.Sprintf("tasks/w%d", w)); err != nil {
						record(&e, "walk: %v", err)
					}
				}
			})
		}
		wg.Wait()
		report(t, &e, workers*rounds*4)
	})

	// Two nodes on one share: one writes task logs while the other reads
	// them back, both with many streams open at once.
	t.Run("two stores", func(t *testing.T) {
		ctx := testCtx(t)
		dir := freshDir(t)
		a := openSMBStore(t, srv, dir)
		b := openSMBStore(t, srv, dir)
		var e errs
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				wrote := false // the previous round's log is there
				for r := range rounds {
					name := fmt.Sprintf("w%d/r%d.log", w, r)
					data := content(w, r)
					prev := wrote
					wrote = false
					if err := write(ctx, a, name, data); err != nil {
						record(&e, "write on a %s: %v", name, err)
						continue
					}
					wrote = true
					if err := read(ctx, b, name, data); err != nil {
						record(&e, "read on b %s: %v", name, err)
					}
					// The reader's node also reads a log the writer's node
					// wrote a round earlier, as GET /raw of an older task.
					if prev {
						old := fmt.Sprintf("w%d/r%d.log", w, r-1)
						if err := read(ctx, a, old, content(w, r-1)); err != nil {
							record(&e, "read on a %s: %v", old, err)
						}
					}
				}
			})
		}
		wg.Wait()
		report(t, &e, workers*rounds*3)
	})

	// A store just opened (a node just restarted) whose first operations all
	// arrive at once: the metadata connection and every stream's session
	// are set up concurrently.
	t.Run("fresh store", func(t *testing.T) {
		ctx := testCtx(t)
		dir := freshDir(t)
		seed := openSMBStore(t, srv, dir)
		for w := range workers {
			if err := write(ctx, seed, fmt.Sprintf("f%d.log", w), content(w, 0)); err != nil {
				t.Fatal(err)
			}
		}
		var e errs
		for r := range rounds {
			s, err := Open(ctx, srv.URL(dir), WithLazyConnect())
			if err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			for w := range workers {
				wg.Go(func() {
					name := fmt.Sprintf("f%d.log", w)
					if w%2 == 0 {
						if err := s.Ping(ctx); err != nil {
							record(&e, "round %d ping: %v", r, err)
						}
					}
					if err := read(ctx, s, name, content(w, 0)); err != nil {
						record(&e, "round %d read %s: %v", r, name, err)
					}
				})
			}
			wg.Wait()
			s.Close()
		}
		report(t, &e, rounds*(workers+workers/2))
	})
}
