package reports

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// artifactsEnv names the directory where tests leave artefacts for CI to
// keep (the browser test's screenshot).
const artifactsEnv = "OCTOHA_ARTIFACTS_DIR"

// docsScreenshotEnv, when set, makes the browser test also write the
// README's screenshot (failed scenarios only, top of the page) there:
// OCTOHA_DOCS_SCREENSHOT=$PWD/docs/report-screenshot.png go test ./reports -run Chromium
const docsScreenshotEnv = "OCTOHA_DOCS_SCREENSHOT"

// chromiumPath finds Debian's chromium (or another Chromium/Chrome binary).
func chromiumPath() string {
	if st, err := os.Stat("/usr/bin/chromium"); err == nil && !st.IsDir() {
		return "/usr/bin/chromium"
	}
	for _, n := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	return ""
}

// plotStat is what the page says about one plot.
type plotStat struct {
	Section string  `json:"section"`
	Plot    string  `json:"plot"`
	Marks   int     `json:"marks"`  // data: points, rings, areas, bars
	Shapes  int     `json:"shapes"` // every circle, rect, path and line
	Width   float64 `json:"width"`
	Height  float64 `json:"height"`
}

const plotStatsJS = `Array.from(document.querySelectorAll(".plot")).map(p => {
  const svg = p.querySelector("svg");
  const r = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
  return {
    section: p.closest("section").id,
    plot: p.dataset.plot,
    marks: p.querySelectorAll("svg circle, svg path.pts, svg path.area-ok, svg path.area-bad, svg rect.bar").length,
    shapes: p.querySelectorAll("svg circle, svg rect, svg path, svg line").length,
    width: r.width, height: r.height,
  };
})`

// hoverJS moves the mouse over the middle of the first plot, returns what
// the tooltip says, and moves it away again.
const hoverJS = `(() => {
  const svg = document.querySelector(".plot svg");
  const r = svg.getBoundingClientRect();
  svg.dispatchEvent(new MouseEvent("mousemove", {clientX: r.left + r.width / 2, clientY: r.top + r.height / 2, bubbles: true}));
  const tip = document.getElementById("tip");
  const text = tip.hidden ? "" : tip.textContent;
  svg.dispatchEvent(new MouseEvent("mouseleave"));
  return tip.hidden ? text : "tooltip stays after mouseleave: " + text;
})()`

// toggleJS ticks "show failed scenarios only" and returns how many scenario
// sections stay visible.
const toggleJS = `(() => {
  const box = document.getElementById("only-failed");
  box.click();
  return Array.from(document.querySelectorAll("section.scenario")).filter(s => s.offsetParent !== null).length;
})()`

func TestReportInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: starts Chromium")
	}
	path := chromiumPath()
	if path == "" {
		t.Skip("chromium not installed (make deps installs it)")
	}
	dir := copyFixture(t)
	if _, err := Write(context.Background(), dir, Options{}); err != nil {
		t.Fatal(err)
	}
	page := filepath.Join(dir, HTMLFile)

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.Headless,
		chromedp.WindowSize(1400, 1000), chromedp.UserDataDir(t.TempDir()))
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(cancel)
	start := time.Now()
	// The first run starts the browser for the life of ctx, so it gets no
	// timeout; every later step is bounded by cctx.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	cctx, ccancel := context.WithTimeout(ctx, 60*time.Second)
	defer ccancel()
	messages := chromedp.Console(cctx)

	if err := chromedp.Do(cctx, chromedp.Navigate("file://"+page), chromedp.WaitReady("body")); err != nil {
		t.Fatalf("open %s: %v", page, err)
	}
	stats, err := chromedp.Run(cctx, chromedp.Evaluate[[]plotStat](plotStatsJS))
	if err != nil {
		t.Fatal(err)
	}
	// Two scenarios have histories, each with a timeline, a throughput plot
	// and uploads; the skipped one has no plots.
	if len(stats) != 6 {
		t.Errorf("%d plots, want 6: %+v", len(stats), stats)
	}
	for _, s := range stats {
		if s.Marks == 0 || s.Shapes == 0 || s.Width < 100 || s.Height < 50 {
			t.Errorf("plot %s/%s drew nothing visible: %+v", s.Section, s.Plot, s)
		}
	}
	tip, err := chromedp.Run(cctx, chromedp.Evaluate[string](hoverJS))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tip, "t+") {
		t.Errorf("hovering a plot shows %q, want a time", tip)
	}

	full, err := chromedp.Run(cctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	artefacts := os.Getenv(artifactsEnv)
	if artefacts == "" {
		artefacts = t.TempDir()
	}
	shot := filepath.Join(artefacts, "report-screenshot-full.png")
	if err := os.MkdirAll(artefacts, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(shot, full, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("full-page screenshot: %s", shot)

	visible, err := chromedp.Run(cctx, chromedp.Evaluate[int](toggleJS))
	if err != nil {
		t.Fatal(err)
	}
	if visible != 1 {
		t.Errorf("%d scenario sections visible with 'failed only', want 1", visible)
	}
	if p := os.Getenv(docsScreenshotEnv); p != "" {
		b, err := chromedp.Run(cctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := writeCropped(p, b, 2300); err != nil {
			t.Fatal(err)
		}
		t.Logf("docs screenshot: %s", p)
	}

	// A marker message ends the console stream: everything before it is
	// what the page logged.
	if _, err := chromedp.Run(cctx, chromedp.Evaluate[any](`console.log("octoha-test-done")`)); err != nil {
		t.Fatal(err)
	}
	for m, err := range messages {
		if err != nil {
			t.Fatalf("reading the console: %v", err)
		}
		if m.Text == "octoha-test-done" {
			break
		}
		switch m.Type {
		case chromedp.ConsoleError, chromedp.ConsoleException:
			t.Errorf("console %s (%s:%d)", m, m.URL, m.Line)
		default:
			t.Logf("console %s", m)
		}
	}
	t.Logf("browser test took %v", time.Since(start).Round(time.Millisecond))
}

// writeCropped writes the top height pixels of a PNG.
func writeCropped(path string, b []byte, height int) error {
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("decode screenshot: %w", err)
	}
	r := img.Bounds()
	if r.Dy() > height {
		r.Max.Y = r.Min.Y + height
	}
	sub, ok := img.(interface {
		SubImage(image.Rectangle) image.Image
	})
	if !ok {
		return fmt.Errorf("screenshot image %T cannot be cropped", img)
	}
	var out bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	if err := enc.Encode(&out, sub.SubImage(r)); err != nil {
		return fmt.Errorf("encode screenshot: %w", err)
	}
	return os.WriteFile(path, out.Bytes(), 0o644)
}
