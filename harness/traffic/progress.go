package traffic

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/octoha/octoha/harness/payload"
)

// Package states in the tracker.
const (
	statePending int32 = iota
	stateRunning
	stateOK
	stateNotOK
)

// tracker holds upload progress as atomics the workers update and a
// reporter samples, so progress costs the upload path one atomic add per
// block.
type tracker struct {
	name  func(i int) string // label of package i
	size  int64
	cur   []atomic.Int64 // payload bytes of each package's current attempt
	state []atomic.Int32
	prev  atomic.Int64 // payload bytes of abandoned attempts
}

func newTracker(count int, size int64, name func(int) string) *tracker {
	return &tracker{name: name, size: size, cur: make([]atomic.Int64, count), state: make([]atomic.Int32, count)}
}

func (t *tracker) counter(i int) *atomic.Int64 { return &t.cur[i] }
func (t *tracker) begin(i int)                 { t.state[i].Store(stateRunning) }
func (t *tracker) retry(i int)                 { t.prev.Add(t.cur[i].Swap(0)) }
func (t *tracker) end(i int, ok bool) {
	if ok {
		t.state[i].Store(stateOK)
	} else {
		t.state[i].Store(stateNotOK)
	}
}

// snapshot is one sample of the tracker.
type snapshot struct {
	sent          int64 // payload bytes over all attempts
	inFlight      int64 // payload bytes of running packages' current attempts
	ok, notOK     int
	running       int
	total         int64 // payload bytes of all packages
	count         int
	remainingWork int64 // bytes still to send for packages not yet ok
	progress      int64 // bytes of ok packages plus running attempts
}

func (t *tracker) sample() snapshot {
	s := snapshot{sent: t.prev.Load(), count: len(t.cur), total: t.size * int64(len(t.cur))}
	var okBytes int64
	for i := range t.cur {
		c := t.cur[i].Load()
		s.sent += c
		switch t.state[i].Load() {
		case stateOK:
			s.ok++
			okBytes += t.size
		case stateNotOK:
			s.notOK++
		case stateRunning:
			s.running++
			s.inFlight += c
		}
	}
	// Failed packages are not sent again, so they drop out of the work.
	s.remainingWork = max(s.total-okBytes-s.inFlight-int64(s.notOK)*t.size, 0)
	s.progress = okBytes + s.inFlight
	return s
}

// startProgress starts the reporter chosen by w (bars on a terminal, lines
// otherwise, nothing for nil) and returns the function that stops it after
// a final update.
func startProgress(ctx context.Context, w io.Writer, interval time.Duration, t *tracker) func() {
	if w == nil {
		return func() {}
	}
	if f, ok := w.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
		return startBars(ctx, f, t)
	}
	return startLines(ctx, w, interval, t)
}

// startLines prints a progress line every interval and a last one at stop.
func startLines(ctx context.Context, w io.Writer, interval time.Duration, t *tracker) func() {
	done := make(chan struct{})
	var wg sync.WaitGroup
	began := time.Now()
	line := func(now time.Time, last snapshot, lastT time.Time, final bool) snapshot {
		s := t.sample()
		rate := 0.0
		if dt := now.Sub(lastT).Seconds(); dt > 0 {
			rate = float64(s.sent-last.sent) / dt
		}
		if final {
			if el := now.Sub(began).Seconds(); el > 0 {
				rate = float64(s.sent) / el
			}
		}
		eta := "?"
		if rate > 0 {
			eta = (time.Duration(float64(s.remainingWork)/rate*1e9) / time.Second * time.Second).String()
		}
		label := "ETA " + eta
		if final {
			label = "in " + now.Sub(began).Round(100*time.Millisecond).String()
		}
		fmt.Fprintf(w, "upload: %d/%d done (%d not ok), %d running, %s of %s, %s sent, %.1f MB/s, %s\n",
			s.ok+s.notOK, s.count, s.notOK, s.running, payload.FormatSize(s.progress),
			payload.FormatSize(s.total), payload.FormatSize(s.sent), rate/1e6, label)
		return s
	}
	wg.Go(func() {
		tk := time.NewTicker(interval)
		defer tk.Stop()
		var last snapshot
		lastT := began
		for {
			select {
			case <-done:
				line(time.Now(), last, lastT, true)
				return
			case <-ctx.Done():
				<-done
				line(time.Now(), last, lastT, true)
				return
			case now := <-tk.C:
				last, lastT = line(now, last, lastT, false), now
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// startBars shows one mpb bar per running upload and a total bar.
func startBars(ctx context.Context, w io.Writer, t *tracker) func() {
	pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	p := mpb.NewWithContext(pctx, mpb.WithOutput(w), mpb.WithWidth(32), mpb.WithRefreshRate(200*time.Millisecond))
	count := len(t.cur)
	total := p.AddBar(max(t.size*int64(count), 1),
		mpb.BarPriority(1<<30), // stays at the bottom
		mpb.PrependDecorators(
			decor.Name(fmt.Sprintf("total (%d)", count), decor.WC{C: decor.DindentRight | decor.DextraSpace}),
			decor.CountersKibiByte("% .1f / % .1f"),
		),
		mpb.AppendDecorators(
			decor.EwmaSpeed(decor.SizeB1024(0), "% .1f", 30), decor.Name(" ETA "),
			decor.EwmaETA(decor.ET_STYLE_GO, 30),
		),
	)
	bars := make(map[int]*mpb.Bar)
	done := make(chan struct{})
	var wg sync.WaitGroup
	update := func(dt time.Duration) {
		s := t.sample()
		for i := range t.cur {
			st := t.state[i].Load()
			b, has := bars[i]
			if !has && st == stateRunning && t.size > 0 {
				b = p.AddBar(t.size, mpb.BarRemoveOnComplete(), mpb.BarPriority(i),
					mpb.PrependDecorators(decor.Name(t.name(i), decor.WC{C: decor.DindentRight | decor.DextraSpace}),
						decor.CountersKibiByte("% .1f / % .1f")),
					mpb.AppendDecorators(decor.EwmaSpeed(decor.SizeB1024(0), "% .1f", 30), decor.Name(" ETA "),
						decor.EwmaETA(decor.ET_STYLE_GO, 30)))
				bars[i] = b
			}
			if b == nil {
				continue
			}
			c := t.cur[i].Load()
			if c < b.Current() {
				b.SetCurrent(c) // a retry started over
			} else {
				b.EwmaSetCurrent(c, dt)
			}
			switch st {
			case stateOK:
				b.SetTotal(-1, true)
				delete(bars, i)
			case stateNotOK:
				b.Abort(true)
				delete(bars, i)
			}
		}
		if c := s.progress; c < total.Current() {
			total.SetCurrent(c)
		} else {
			total.EwmaSetCurrent(c, dt)
		}
	}
	wg.Go(func() {
		tk := time.NewTicker(200 * time.Millisecond)
		defer tk.Stop()
		last := time.Now()
		for {
			select {
			case <-done:
				update(time.Since(last))
				for _, b := range bars {
					b.Abort(true)
				}
				if s := t.sample(); s.notOK == 0 {
					total.SetTotal(-1, true)
				} else {
					total.Abort(false)
				}
				return
			case now := <-tk.C:
				update(now.Sub(last))
				last = now
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
		p.Wait()
		cancel()
	}
}
