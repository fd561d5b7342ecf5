package blob

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// opener returns a fresh, empty store for one (sub)test.
type opener func(t *testing.T) Store

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	for i := n - n%8; i < n; i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}

func writeFile(t *testing.T, s Store, name string, data []byte) {
	t.Helper()
	w, err := s.Create(testCtx(t), name)
	if err != nil {
		t.Fatalf("Create(%q): %v", name, err)
	}
	if _, err := w.Write(data); err != nil {
		_ = w.Abort()
		t.Fatalf("Write(%q): %v", name, err)
	}
	if err := w.Close(); err != nil {
		_ = w.Abort()
		t.Fatalf("Close(%q): %v", name, err)
	}
}

func readFile(t *testing.T, s Store, name string) []byte {
	t.Helper()
	r, err := s.Open(testCtx(t), name)
	if err != nil {
		t.Fatalf("Open(%q): %v", name, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read %q: %v", name, err)
	}
	return b
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: got %v, want %v", what, err, target)
	}
}

// runConformance checks the Store contract; every implementation must pass
// it unchanged.
func runConformance(t *testing.T, open opener) {
	t.Run("WriteReadStat", func(t *testing.T) {
		s := open(t)
		ctx := testCtx(t)
		data := randomBytes(1, 3<<20+12345)
		w, err := s.Create(ctx, "a/b/c.bin")
		if err != nil {
			t.Fatal(err)
		}
		// Uneven pieces cross the writer's chunk boundaries.
		pieces := []int{1, 7777, 65536, 1<<20 + 3, 100}
		for off, i := 0, 0; off < len(data); i++ {
			n := min(pieces[i%len(pieces)], len(data)-off)
			if m, err := w.Write(data[off : off+n]); err != nil || m != n {
				t.Fatalf("Write: %d, %v", m, err)
			}
			off += n
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		info, err := s.Stat(ctx, "a/b/c.bin")
		if err != nil {
			t.Fatal(err)
		}
		if info.Name != "a/b/c.bin" || info.Size != int64(len(data)) || info.IsDir {
			t.Errorf("Stat = %+v", info)
		}
		if d := time.Since(info.ModTime); d < -time.Minute || d > time.Minute {
			t.Errorf("ModTime %v is not recent", info.ModTime)
		}
		if dir, err := s.Stat(ctx, "a/b"); err != nil || !dir.IsDir {
			t.Errorf("Stat(dir) = %+v, %v", dir, err)
		}
		if got := readFile(t, s, "a/b/c.bin"); sha256.Sum256(got) != sha256.Sum256(data) {
			t.Fatalf("read back %d bytes that differ from the %d written", len(got), len(data))
		}
		// io.CopyBuffer with a small buffer, as the node's download does.
		r, err := s.Open(ctx, "a/b/c.bin")
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		n, err := io.CopyBuffer(&buf, r, make([]byte, 32<<10))
		r.Close()
		if err != nil || n != int64(len(data)) || !bytes.Equal(buf.Bytes(), data) {
			t.Fatalf("CopyBuffer: %d, %v", n, err)
		}
	})

	// A delta is patched onto a base read at the offsets its copy
	// commands name, so readers seek.
	t.Run("Seek", func(t *testing.T) {
		s := open(t)
		ctx := testCtx(t)
		data := randomBytes(2, 3<<20+777)
		writeFile(t, s, "seek.bin", data)
		r, err := s.Open(ctx, "seek.bin")
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		rs, ok := r.(io.ReadSeeker)
		if !ok {
			t.Fatalf("%T does not seek", r)
		}
		p := make([]byte, 10)
		if _, err := io.ReadFull(rs, p); err != nil || !bytes.Equal(p, data[:10]) {
			t.Fatalf("first read: %v", err)
		}
		if pos, err := rs.Seek(5, io.SeekCurrent); err != nil || pos != 15 {
			t.Fatalf("Seek(5, cur) = %d, %v; want 15 (the position read to, not read ahead)", pos, err)
		}
		for _, off := range []int64{15, 2<<20 + 3, 1, int64(len(data)) - 4, 1 << 20} {
			if off != 15 {
				if pos, err := rs.Seek(off, io.SeekStart); err != nil || pos != off {
					t.Fatalf("Seek(%d) = %d, %v", off, pos, err)
				}
			}
			q := make([]byte, 4)
			if _, err := io.ReadFull(rs, q); err != nil || !bytes.Equal(q, data[off:off+4]) {
				t.Fatalf("read at %d: %x, %v; want %x", off, q, err, data[off:off+4])
			}
		}
		if end, err := rs.Seek(0, io.SeekEnd); err != nil || end != int64(len(data)) {
			t.Fatalf("Seek(0, end) = %d, %v", end, err)
		}
	})

	t.Run("EmptyFileAndTruncate", func(t *testing.T) {
		s := open(t)
		writeFile(t, s, "e", nil)
		if got := readFile(t, s, "e"); len(got) != 0 {
			t.Errorf("empty file reads %d bytes", len(got))
		}
		writeFile(t, s, "x", bytes.Repeat([]byte("x"), 1000))
		writeFile(t, s, "x", []byte("short"))
		if got := readFile(t, s, "x"); string(got) != "short" {
			t.Errorf("after re-Create: %q", got)
		}
	})

	t.Run("AbortRemoves", func(t *testing.T) {
		s := open(t)
		ctx := testCtx(t)
		w, err := s.Create(ctx, "tmp/x.tmp")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(randomBytes(2, 2<<20+1)); err != nil {
			t.Fatal(err)
		}
		if err := w.Abort(); err != nil {
			t.Fatal(err)
		}
		_, err = s.Stat(ctx, "tmp/x.tmp")
		wantErr(t, "Stat after Abort", err, ErrNotExist)
		if err := w.Abort(); err != nil {
			t.Errorf("second Abort: %v", err)
		}
		if _, err := w.Write([]byte("x")); err == nil {
			t.Error("Write after Abort succeeded")
		}

		// Abort after a successful Close keeps the file (defer w.Abort()).
		w, err = s.Create(ctx, "kept")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte("kept")); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
		if err := w.Abort(); err != nil {
			t.Fatal(err)
		}
		if got := readFile(t, s, "kept"); string(got) != "kept" {
			t.Errorf("after Close+Abort: %q", got)
		}
	})

	t.Run("CancelledContext", func(t *testing.T) {
		s := open(t)
		ctx, cancel := context.WithCancel(testCtx(t))
		w, err := s.Create(ctx, "c/cancelled.tmp")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(randomBytes(3, 1<<20+5)); err != nil {
			t.Fatal(err)
		}
		cancel()
		if _, err := w.Write([]byte("more")); !errors.Is(err, context.Canceled) {
			t.Errorf("Write after cancel: %v", err)
		}
		if err := w.Close(); err == nil {
			t.Error("Close after cancel succeeded")
		}
		if err := w.Abort(); err != nil {
			t.Errorf("Abort after cancel: %v", err)
		}
		_, err = s.Stat(testCtx(t), "c/cancelled.tmp")
		wantErr(t, "Stat after cancelled upload", err, ErrNotExist)
		if _, err := s.Create(ctx, "c/never"); err == nil {
			t.Error("Create with a cancelled context succeeded")
		}
	})

	t.Run("Missing", func(t *testing.T) {
		s := open(t)
		ctx := testCtx(t)
		_, err := s.Open(ctx, "nope")
		wantErr(t, "Open", err, ErrNotExist)
		_, err = s.Stat(ctx, "no/such/file")
		wantErr(t, "Stat", err, ErrNotExist)
		if err := s.Remove(ctx, "nope"); err != nil {
			t.Errorf("Remove missing: %v", err)
		}
		if err := s.Remove(ctx, "no/dir/nope"); err != nil {
			t.Errorf("Remove missing in missing dir: %v", err)
		}
		writeFile(t, s, "gone", []byte("x"))
		if err := s.Remove(ctx, "gone"); err != nil {
			t.Fatal(err)
		}
		_, err = s.Stat(ctx, "gone")
		wantErr(t, "Stat after Remove", err, ErrNotExist)
	})

	t.Run("Publish", func(t *testing.T) {
		s := open(t)
		ctx := testCtx(t)
		writeFile(t, s, "tmp/1.tmp", []byte("first"))
		if err := s.Publish(ctx, "tmp/1.tmp", "pkgs/Spaces-1/p.1.0.zip", false); err != nil {
			t.Fatal(err)
		}
		_, err := s.Stat(ctx, "tmp/1.tmp")
		wantErr(t, "source after Publish", err, ErrNotExist)
		if got := readFile(t, s, "pkgs/Spaces-1/p.1.0.zip"); string(got) != "first" {
			t.Errorf("published: %q", got)
		}

		writeFile(t, s, "tmp/2.tmp", []byte("second"))
		err = s.Publish(ctx, "tmp/2.tmp", "pkgs/Spaces-1/p.1.0.zip", false)
		wantErr(t, "Publish onto existing without replace", err, ErrExist)
		if got := readFile(t, s, "pkgs/Spaces-1/p.1.0.zip"); string(got) != "first" {
			t.Errorf("target changed by a refused Publish: %q", got)
		}
		if got := readFile(t, s, "tmp/2.tmp"); string(got) != "second" {
			t.Errorf("source changed by a refused Publish: %q", got)
		}

		if err := s.Publish(ctx, "tmp/2.tmp", "pkgs/Spaces-1/p.1.0.zip", true); err != nil {
			t.Fatal(err)
		}
		if got := readFile(t, s, "pkgs/Spaces-1/p.1.0.zip"); string(got) != "second" {
			t.Errorf("after replace: %q", got)
		}
		_, err = s.Stat(ctx, "tmp/2.tmp")
		wantErr(t, "source after replacing Publish", err, ErrNotExist)

		for _, replace := range []bool{false, true} {
			err = s.Publish(ctx, "tmp/missing", "pkgs/m", replace)
			wantErr(t, fmt.Sprintf("Publish missing source (replace=%v)", replace), err, ErrNotExist)
		}
		_, err = s.Stat(ctx, "pkgs/m")
		wantErr(t, "target of a failed Publish", err, ErrNotExist)
	})

	t.Run("ConcurrentPublishers", func(t *testing.T) {
		s := open(t)
		ctx := testCtx(t)
		const publishers = 6
		for round := range 4 {
			target := fmt.Sprintf("pkgs/race%d.zip", round)
			for i := range publishers {
				writeFile(t, s, fmt.Sprintf("tmp/r%d-%d.tmp", round, i), []byte(fmt.Sprintf("publisher %d", i)))
			}
			errs := make([]error, publishers)
			var start, done sync.WaitGroup
			start.Add(1)
			for i := range publishers {
				done.Add(1)
				go func() {
					defer done.Done()
					start.Wait()
					errs[i] = s.Publish(ctx, fmt.Sprintf("tmp/r%d-%d.tmp", round, i), target, false)
				}()
			}
			start.Done()
			done.Wait()
			winner := -1
			for i, err := range errs {
				switch {
				case err == nil && winner >= 0:
					t.Fatalf("round %d: publishers %d and %d both won", round, winner, i)
				case err == nil:
					winner = i
				case !errors.Is(err, ErrExist):
					t.Fatalf("round %d: publisher %d: %v", round, i, err)
				}
			}
			if winner < 0 {
				t.Fatalf("round %d: nobody won", round)
			}
			if got := readFile(t, s, target); string(got) != fmt.Sprintf("publisher %d", winner) {
				t.Fatalf("round %d: target holds %q, winner was %d", round, got, winner)
			}
		}
	})

	t.Run("Walk", func(t *testing.T) {
		s := open(t)
		ctx := testCtx(t)
		files := map[string]int{"w/a": 1, "w/b/c": 22, "w/b/d/e": 333, "other/x": 4}
		for name, n := range files {
			writeFile(t, s, name, bytes.Repeat([]byte("z"), n))
		}
		got, err := s.Walk(ctx, "w")
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, i := range got {
			names = append(names, i.Name)
			if i.IsDir || i.Size != int64(files[i.Name]) {
				t.Errorf("Walk entry %+v", i)
			}
		}
		if strings.Join(names, ",") != "w/a,w/b/c,w/b/d/e" {
			t.Errorf("Walk(w) = %v", names)
		}
		all, err := s.Walk(ctx, "")
		if err != nil || len(all) != len(files) {
			t.Errorf("Walk(root) = %v, %v", all, err)
		}
		none, err := s.Walk(ctx, "no/such/dir")
		if err != nil || len(none) != 0 {
			t.Errorf("Walk(missing) = %v, %v", none, err)
		}
	})

	t.Run("BadNames", func(t *testing.T) {
		s := open(t)
		ctx := testCtx(t)
		writeFile(t, s, "ok", []byte("ok"))
		for _, name := range []string{"", "/etc/passwd", "..", "../x", "a/../../x", "a/./b", "./a", "a//b", "a/", `a\b`, `..\x`, "a:b", "a\x00b", "a\nb", "*"} {
			_, err := s.Create(ctx, name)
			wantErr(t, fmt.Sprintf("Create(%q)", name), err, ErrBadName)
			_, err = s.Open(ctx, name)
			wantErr(t, fmt.Sprintf("Open(%q)", name), err, ErrBadName)
			_, err = s.Stat(ctx, name)
			wantErr(t, fmt.Sprintf("Stat(%q)", name), err, ErrBadName)
			wantErr(t, fmt.Sprintf("Remove(%q)", name), s.Remove(ctx, name), ErrBadName)
			wantErr(t, fmt.Sprintf("Publish(ok, %q)", name), s.Publish(ctx, "ok", name, true), ErrBadName)
			wantErr(t, fmt.Sprintf("Publish(%q, x)", name), s.Publish(ctx, name, "x", false), ErrBadName)
			if name != "" {
				_, err = s.Walk(ctx, name)
				wantErr(t, fmt.Sprintf("Walk(%q)", name), err, ErrBadName)
			}
		}
		if got := readFile(t, s, "ok"); string(got) != "ok" {
			t.Errorf("ok changed: %q", got)
		}
	})

	t.Run("Ping", func(t *testing.T) {
		s := open(t)
		if err := s.Ping(testCtx(t)); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := s.Ping(ctx); err == nil {
			t.Error("Ping with a cancelled context succeeded")
		}
	})
}

func TestLocalConformance(t *testing.T) {
	runConformance(t, func(t *testing.T) Store {
		s, err := Open(testCtx(t), filepath.Join(t.TempDir(), "root"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestLocalOpen(t *testing.T) {
	ctx := testCtx(t)
	dir := filepath.Join(t.TempDir(), "made", "by", "open")
	s, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if s.String() != dir {
		t.Errorf("String() = %q", s.String())
	}
	writeFile(t, s, "f", []byte("x"))
	s2, err := Open(ctx, "file://"+dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, s2, "f"); string(got) != "x" {
		t.Errorf("file:// store reads %q", got)
	}
	for _, bad := range []string{"", "ftp://u:hunter2@h/x", `\\server\share`, "file://remote/x"} {
		_, err := Open(ctx, bad)
		if err == nil {
			t.Errorf("Open(%q) succeeded", bad)
		} else if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Open(%q) error shows the password: %v", bad, err)
		}
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"/var/octopus/Packages":                "/var/octopus/Packages",
		"smb://octoha@127.0.0.6:445/share/dir": "smb://octoha@127.0.0.6:445/share/dir",
		"smb://octoha:pw@127.0.0.6/share/dir":  "smb://octoha:(redacted)@127.0.0.6/share/dir",
		"smb://u:p%40ss@h/s":                   "smb://u:(redacted)@h/s",
		"smb://u:p@ss@h/s":                     "smb://u:(redacted)@h/s",
		"smb://u:pa/ss@h/s":                    "smb://u:(redacted)@h/s",
		"smb://u:pa?ss@h/s":                    "smb://u:(redacted)@h/s",
		"SMB://u:secret@h:bad/s":               "SMB://u:(redacted)@h:bad/s",
		"smb://u:@h/s":                         "smb://u:@h/s", // no password to hide
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCheckName(t *testing.T) {
	for _, ok := range []string{"a", "a/b", "Spaces-1/Octopus.Client.1.2.3.nupkg", "a b/c-d_e.f", "ünï/cødé"} {
		if err := checkName(ok); err != nil {
			t.Errorf("checkName(%q) = %v", ok, err)
		}
	}
	if err := checkDir(""); err != nil {
		t.Errorf("checkDir(\"\") = %v", err)
	}
	if err := checkName(""); !errors.Is(err, ErrBadName) {
		t.Errorf("checkName(\"\") = %v", err)
	}
}
