//go:build linux

package blob

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/octoha/octoha/services/samba"
)

// benchSizeEnv overrides the benchmark's file size: bytes, or with a
// K/M/G suffix (powers of 1024; "KiB", "MB" and the like are accepted).
const benchSizeEnv = "OCTOHA_BENCH_SIZE"

func benchSize(b *testing.B) int64 {
	v := strings.TrimSpace(os.Getenv(benchSizeEnv))
	if v == "" {
		return 1 << 30
	}
	num := strings.TrimRight(strings.ToUpper(v), "IB")
	mult := int64(1)
	if n := len(num); n > 0 {
		switch num[n-1] {
		case 'K':
			mult, num = 1<<10, num[:n-1]
		case 'M':
			mult, num = 1<<20, num[:n-1]
		case 'G':
			mult, num = 1<<30, num[:n-1]
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q: want a size such as 1073741824, 256MiB or 1G", benchSizeEnv, v)
	}
	return n * mult
}

// block is the content both writers send, repeated: random, so nothing
// on the way can compress it.
var benchBlock = randomBytes(7, 4<<20)

// writeThroughStore writes size bytes in 32 KiB pieces (what io.Copy
// hands the node's store writer) and returns the elapsed time.
func writeThroughStore(ctx context.Context, b *testing.B, s Store, name string, size int64) time.Duration {
	const piece = 32 << 10
	start := time.Now()
	w, err := s.Create(ctx, name)
	if err != nil {
		b.Fatal(err)
	}
	for off := int64(0); off < size; {
		i := off % int64(len(benchBlock))
		n := min(int64(piece), size-off, int64(len(benchBlock))-i)
		if _, err := w.Write(benchBlock[i : i+n]); err != nil {
			_ = w.Abort()
			b.Fatal(err)
		}
		off += n
	}
	if err := w.Close(); err != nil {
		_ = w.Abort()
		b.Fatal(err)
	}
	return time.Since(start)
}

// smbclientPut uploads local with smbclient (password in PASSWD, not on
// the command line) and returns the elapsed time.
func smbclientPut(ctx context.Context, b *testing.B, srv *samba.Server, local, remote string) time.Duration {
	start := time.Now()
	cmd := exec.CommandContext(ctx, "smbclient", "-p", strconv.Itoa(srv.Port()), "//"+srv.Host()+"/"+srv.Share(),
		"-U", srv.User(), "-c", "put "+local+" "+remote)
	cmd.Env = append(os.Environ(), "PASSWD="+srv.Password())
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("smbclient put: %v\n%s", err, out)
	}
	return time.Since(start)
}

func makeSourceFile(b *testing.B, size int64) string {
	p := filepath.Join(b.TempDir(), "source.bin")
	f, err := os.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	for off := int64(0); off < size; {
		n := min(int64(len(benchBlock)), size-off)
		if _, err := f.Write(benchBlock[:n]); err != nil {
			b.Fatal(err)
		}
		off += n
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	return p
}

func checkSize(b *testing.B, p string, size int64) {
	st, err := os.Stat(p)
	if err != nil || st.Size() != size {
		b.Fatalf("%s: %v, want %d bytes", p, err, size)
	}
}

func mbps(size int64, d time.Duration) float64 { return float64(size) / d.Seconds() / 1e6 }

// BenchmarkSMBWrite1GiB writes the same amount through the blob SMB store
// and with smbclient put into the same Samba share, and reports both rates
// and their ratio (target: blob/smbclient >= 0.8).
func BenchmarkSMBWrite1GiB(b *testing.B) {
	srv := sambaServer(b)
	if _, err := exec.LookPath("smbclient"); err != nil {
		b.Skip("smbclient is not installed (apt-get install smbclient); it is the yardstick")
	}
	size := benchSize(b)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	local := makeSourceFile(b, size)
	s, err := Open(ctx, srv.URL("bench"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	shareDir := filepath.Join(srv.SharePath(), "bench")
	b.SetBytes(size)
	var blobTime, cliTime time.Duration
	for i := 0; b.Loop(); i++ {
		// Each writer starts with no dirty pages of the other's pending.
		unix.Sync()
		blobTime += writeThroughStore(ctx, b, s, "blob.bin", size)
		checkSize(b, filepath.Join(shareDir, "blob.bin"), size)
		unix.Sync()
		cliTime += smbclientPut(ctx, b, srv, local, "bench/smbclient.bin")
		checkSize(b, filepath.Join(shareDir, "smbclient.bin"), size)
		_ = os.Remove(filepath.Join(shareDir, "blob.bin"))
		_ = os.Remove(filepath.Join(shareDir, "smbclient.bin"))
	}
	total := size * int64(b.N)
	blob, cli := mbps(total, blobTime), mbps(total, cliTime)
	b.ReportMetric(blob, "blob-MB/s")
	b.ReportMetric(cli, "smbclient-MB/s")
	b.ReportMetric(blob/cli, "blob/smbclient")
}

// BenchmarkSMBWriteInFlight shows how pipelining (WithWritesInFlight)
// changes the blob store's write rate.
func BenchmarkSMBWriteInFlight(b *testing.B) {
	srv := sambaServer(b)
	size := benchSize(b)
	for _, n := range []int{1, 2, 4, 8} {
		b.Run(fmt.Sprintf("inflight=%d", n), func(b *testing.B) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
			defer cancel()
			s, err := Open(ctx, srv.URL("bench"), WithWritesInFlight(n))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			b.SetBytes(size)
			var d time.Duration
			for b.Loop() {
				unix.Sync()
				d += writeThroughStore(ctx, b, s, fmt.Sprintf("inflight%d.bin", n), size)
			}
			b.ReportMetric(mbps(size*int64(b.N), d), "MB/s")
			_ = s.Remove(ctx, fmt.Sprintf("inflight%d.bin", n))
		})
	}
}

// BenchmarkSMBRead1GiB reads a file back through the blob SMB store (as
// the node's download does, io.CopyBuffer with 32 KiB) and with smbclient
// get, and reports both rates and their ratio.
func BenchmarkSMBRead1GiB(b *testing.B) {
	srv := sambaServer(b)
	if _, err := exec.LookPath("smbclient"); err != nil {
		b.Skip("smbclient is not installed (apt-get install smbclient); it is the yardstick")
	}
	size := benchSize(b)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	s, err := Open(ctx, srv.URL("bench"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	writeThroughStore(ctx, b, s, "read.bin", size)
	defer s.Remove(ctx, "read.bin")
	b.SetBytes(size)
	var blobTime, cliTime time.Duration
	buf := make([]byte, 32<<10)
	for b.Loop() {
		start := time.Now()
		r, err := s.Open(ctx, "read.bin")
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.CopyBuffer(io.Discard, r, buf)
		r.Close()
		if err != nil || n != size {
			b.Fatalf("read %d bytes, %v; want %d", n, err, size)
		}
		blobTime += time.Since(start)

		start = time.Now()
		cmd := exec.CommandContext(ctx, "smbclient", "-p", strconv.Itoa(srv.Port()), "//"+srv.Host()+"/"+srv.Share(),
			"-U", srv.User(), "-c", "get bench/read.bin /dev/null")
		cmd.Env = append(os.Environ(), "PASSWD="+srv.Password())
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("smbclient get: %v\n%s", err, out)
		}
		cliTime += time.Since(start)
	}
	total := size * int64(b.N)
	blob, cli := mbps(total, blobTime), mbps(total, cliTime)
	b.ReportMetric(blob, "blob-MB/s")
	b.ReportMetric(cli, "smbclient-MB/s")
	b.ReportMetric(blob/cli, "blob/smbclient")
}
