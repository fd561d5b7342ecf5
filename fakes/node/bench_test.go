package node_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/octoha/octoha/octopusapi"
)

// benchSize is the upload size: $OCTOHA_BENCH_SIZE bytes (suffixes KiB, MiB,
// GiB), default 1 GiB.
func benchSize(b *testing.B) int64 {
	s := os.Getenv("OCTOHA_BENCH_SIZE")
	if s == "" {
		return 1 << 30
	}
	mult := int64(1)
	for suf, m := range map[string]int64{"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30} {
		if strings.HasSuffix(s, suf) {
			mult, s = m, strings.TrimSuffix(s, suf)
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		b.Fatalf("OCTOHA_BENCH_SIZE=%q: want bytes or a KiB/MiB/GiB size", os.Getenv("OCTOHA_BENCH_SIZE"))
	}
	return n * mult
}

// patternReader yields size bytes without holding them in memory: a 1 MiB
// random block repeated, each copy stamped with its offset so no two are
// equal. It costs the client almost no CPU, which on a 2-core machine
// would otherwise be taken from the node being measured.
type patternReader struct{ left, off int64 }

var patternBlock = func() []byte {
	b := make([]byte, 1<<20)
	x := uint64(0x9E3779B97F4A7C15)
	for i := range b {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b[i] = byte(x)
	}
	return b
}()

func (r *patternReader) Read(p []byte) (int, error) {
	if r.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n := 0
	for n < len(p) {
		pos := (r.off + int64(n)) % int64(len(patternBlock))
		c := copy(p[n:], patternBlock[pos:])
		if pos == 0 && c >= 8 {
			binary.LittleEndian.PutUint64(p[n:], uint64(r.off+int64(n)))
		}
		n += c
	}
	r.off += int64(n)
	r.left -= int64(n)
	return n, nil
}

// rssKiB reads a process's resident set size.
func rssKiB(pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return 0
}

// uploadStream streams one chunked multipart upload of size bytes to a
// node and samples the node's RSS meanwhile; it returns the duration and
// the peak RSS growth over the node's RSS before the upload.
func uploadStream(b *testing.B, n *nodeProc, file string, size int64) (time.Duration, int64) {
	b.Helper()
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		fw, err := mw.CreateFormFile("file", file)
		if err == nil {
			buf := make([]byte, 1<<20)
			_, err = io.CopyBuffer(fw, &patternReader{left: size}, buf)
		}
		if err == nil {
			err = mw.Close()
		}
		pw.CloseWithError(err)
	}()
	req, _ := http.NewRequest(http.MethodPost, n.url+octopusapi.UploadPath("Spaces-1", octopusapi.OverwriteExisting), pr)
	req.Header.Set(octopusapi.HeaderAPIKey, procKey)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	base := rssKiB(n.p.PID())
	var peak atomic.Int64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			if r := rssKiB(n.p.PID()); r > peak.Load() {
				peak.Store(r)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	d := time.Since(start)
	close(stop)
	<-sampled
	if err != nil {
		b.Fatalf("upload: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		b.Fatalf("upload answered %d %s", resp.StatusCode, body)
	}
	return d, (peak.Load() - base) * 1024
}

// BenchmarkNodeUploadLocal: one 1 GiB upload into a node process storing
// into a local directory; reports throughput and the node's peak memory
// growth (target: at most 64 MiB).
func BenchmarkNodeUploadLocal(b *testing.B) {
	size := benchSize(b)
	bk := sqliteLocal(b)
	port := freePortOnBoth(b, "127.0.0.11")
	n := startNode(b, bk, 1, port)
	for i := 0; b.Loop(); i++ {
		d, grow := uploadStream(b, n, fmt.Sprintf("Bench.Local.1.0.%d.zip", i), size)
		b.ReportMetric(float64(size)/d.Seconds()/1e6, "MB/s")
		b.ReportMetric(float64(grow)/(1<<20), "MiB-rss-growth")
	}
}

// BenchmarkNodeUploadSMB: the same upload into a node storing on a Samba
// share, against `smbclient put` of a file of the same size into the same
// share, in the same run (target: node ≥ 0.8 × smbclient).
func BenchmarkNodeUploadSMB(b *testing.B) {
	if _, err := exec.LookPath("smbclient"); err != nil {
		b.Skip("smbclient not installed (make deps installs it)")
	}
	size := benchSize(b)
	bk, smb := postgresSambaWithServer(b)
	port := freePortOnBoth(b, "127.0.0.11")
	n := startNode(b, bk, 1, port)

	// The reference file for smbclient, written once.
	src := filepath.Join(b.TempDir(), "ref.bin")
	f, err := os.Create(src)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.Copy(f, &patternReader{left: size}); err != nil {
		b.Fatal(err)
	}
	f.Close()
	// Page-cache state swings single runs by 3x on this VM: alternate which
	// side goes first, delete what each round wrote, and take medians.
	const rounds = 3
	smbclient := func(args ...string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "smbclient", append([]string{"-p", strconv.Itoa(smb.Port()), "//" + smb.Host() + "/" + smb.Share(), "-U", smb.User(), "-m", "SMB3", "-c"}, args...)...)
		cmd.Env = append(os.Environ(), "PASSWD="+smb.Password())
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("smbclient %v: %v\n%s", args, err, out)
		}
		return nil
	}
	for i := 0; b.Loop(); i++ {
		var nodeRates, refRates []float64
		var growth int64
		for r := range rounds {
			runRef := func() {
				start := time.Now()
				if err := smbclient(fmt.Sprintf("put %s ref.bin", src)); err != nil {
					b.Fatal(err)
				}
				refRates = append(refRates, float64(size)/time.Since(start).Seconds()/1e6)
				if err := smbclient("del ref.bin"); err != nil {
					b.Fatal(err)
				}
			}
			runNode := func() {
				name := fmt.Sprintf("Bench.SMB.1.%d.%d.zip", i, r)
				d, grow := uploadStream(b, n, name, size)
				nodeRates = append(nodeRates, float64(size)/d.Seconds()/1e6)
				growth = max(growth, grow)
				id := "packages-" + strings.TrimSuffix(name, ".zip")
				if code, body, _ := request(b, http.MethodDelete, n.url+octopusapi.PackagePath("Spaces-1", id), nil); code != http.StatusOK {
					b.Fatalf("delete %s: %d %s", id, code, body)
				}
			}
			if r%2 == 0 {
				runRef()
				runNode()
			} else {
				runNode()
				runRef()
			}
		}
		nodeMBs, refMBs := median(nodeRates), median(refRates)
		b.ReportMetric(nodeMBs, "node-MB/s")
		b.ReportMetric(refMBs, "smbclient-MB/s")
		b.ReportMetric(nodeMBs/refMBs, "node/smbclient")
		b.ReportMetric(float64(growth)/(1<<20), "MiB-rss-growth")
	}
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}
