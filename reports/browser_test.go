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
// OCTOHA_DOCS_SCREENSHOT=$PWD/docs/report-screenshot.png go test ./reports -run ReportInChromium
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
		chromedp.WindowSize(1400, 1000), chromedp.UserDataDir(t.TempDir()),
		// Chromium puts its singleton socket in TMPDIR and leaves it.
		chromedp.Env("TMPDIR="+shortTempDir(t)))
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

// newBrowser starts headless Chromium for the life of the test and returns
// a context bounded by timeout for its steps; it skips the test without
// Chromium or with -short.
func newBrowser(t *testing.T, timeout time.Duration) context.Context {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: starts Chromium")
	}
	path := chromiumPath()
	if path == "" {
		t.Skip("chromium not installed (make deps installs it)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.Headless,
		chromedp.WindowSize(1400, 1000), chromedp.UserDataDir(t.TempDir()),
		// Chromium puts its singleton socket in TMPDIR and leaves it.
		chromedp.Env("TMPDIR="+shortTempDir(t)))
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	cctx, ccancel := context.WithTimeout(ctx, timeout)
	t.Cleanup(ccancel)
	return cctx
}

// screenshot saves the whole page as name in $OCTOHA_ARTIFACTS_DIR (or a
// temporary directory) and returns its path.
func screenshot(t *testing.T, ctx context.Context, name string) string {
	t.Helper()
	b, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	dir := os.Getenv(artifactsEnv)
	if dir == "" {
		dir = t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", p)
	return p
}

// redInPassedJS lists what is drawn in the failure red (#e03131, the
// CSS's --fail) inside a passed scenario's row or section, which must be
// nothing: expected failures and failures inside fault windows are not
// red. SVG plots are left out (a 5xx point is red whatever the verdict).
const redInPassedJS = `Array.from(document.querySelectorAll("tr.row-passed *, section.scenario.passed *"))
  .filter(e => !e.closest("svg") && !e.closest(".legend") && e.childElementCount === 0 && e.textContent.trim() !== "")
  .filter(e => getComputedStyle(e).color === "rgb(224, 49, 49)")
  .map(e => (e.closest("section, tr").id || e.closest("tr")?.className || "") + ": " + e.textContent.trim())`

// overlapsJS lists the upload plots' labels that overlap a bar they do
// not belong inside, or the lane's name and count.
const overlapsJS = `(() => {
  const out = [];
  const hit = (a, b) => a.left < b.right - 0.5 && b.left < a.right - 0.5 && a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5;
  document.querySelectorAll('.plot[data-plot="uploads"] svg').forEach(svg => {
    const id = svg.closest("section").id;
    const bars = Array.from(svg.querySelectorAll("rect.bar")).map(e => e.getBoundingClientRect());
    const outside = Array.from(svg.querySelectorAll("text.bar-label:not(.inside)"));
    const lane = Array.from(svg.querySelectorAll("text.lane-name, text.lane-count"));
    outside.forEach(l => bars.forEach(b => { if (hit(l.getBoundingClientRect(), b)) out.push(id + ": label '" + l.textContent + "' over a bar"); }));
    lane.forEach(l => bars.concat(outside.map(o => o.getBoundingClientRect())).forEach(b => { if (hit(l.getBoundingClientRect(), b)) out.push(id + ": lane label '" + l.textContent + "' overlaps"); }));
    svg.querySelectorAll("text.bar-label.inside").forEach(l => {
      const r = l.getBoundingClientRect();
      if (!bars.some(b => r.left >= b.left - 0.5 && r.right <= b.right + 0.5)) out.push(id + ": label '" + l.textContent + "' sticks out of its bar");
    });
  });
  return out;
})()`

func TestReportExpectedFailureAndComparisonInChromium(t *testing.T) {
	ctx := newBrowser(t, 90*time.Second)

	// A run with plots, a failed scenario and a passed one whose check
	// fails as it must (the broken-cluster control).
	dir := copyFixture(t)
	control := filepath.Join(expectedFailureRun(t, false), ScenariosDir, "broken-cluster-control")
	if err := os.CopyFS(filepath.Join(dir, ScenariosDir, "broken-cluster-control"), os.DirFS(control)); err != nil {
		t.Fatal(err)
	}
	if _, err := Write(context.Background(), dir, Options{}); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate("file://"+filepath.Join(dir, HTMLFile)), chromedp.WaitReady("body")); err != nil {
		t.Fatal(err)
	}
	expected, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](
		`Array.from(document.querySelectorAll(".verdict.expected")).filter(e => e.offsetParent !== null).map(e => e.textContent + " " + getComputedStyle(e).color)`))
	if err != nil {
		t.Fatal(err)
	}
	if len(expected) != 1 || expected[0] != "failed as expected ✓ rgb(47, 158, 68)" {
		t.Errorf("expected-failure verdicts on the page: %q, want one, in the pass green", expected)
	}
	red, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](redInPassedJS))
	if err != nil {
		t.Fatal(err)
	}
	if len(red) > 0 {
		t.Errorf("red marks in passed scenarios:\n%s", strings.Join(red, "\n"))
	}
	overlaps, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](overlapsJS))
	if err != nil {
		t.Fatal(err)
	}
	if len(overlaps) > 0 {
		t.Errorf("upload plot labels overlap:\n%s", strings.Join(overlaps, "\n"))
	}
	inFaults, err := chromedp.Run(ctx, chromedp.Evaluate[string](
		`document.querySelector("#s-kill-node-during-uploads .ops-line").textContent`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(inFaults, "4 failed or unknown inside fault windows (expected") || !strings.Contains(inFaults, "0 unexpected") {
		t.Errorf("the kill scenario's operations line: %q", inFaults)
	}
	screenshot(t, ctx, "report-expected-failure.png")

	// The comparison of the two fixture runs, with its regressions.
	page := filepath.Join(t.TempDir(), "compare.html")
	if _, err := Compare(context.Background(), compareBefore, compareAfter, CompareOptions{Tolerance: DefaultTolerance, HTML: page}); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate("file://"+page), chromedp.WaitReady("body")); err != nil {
		t.Fatal(err)
	}
	got, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[
	  document.querySelector("header .badge").textContent,
	  String(document.querySelectorAll("tr.fig-regression").length),
	  String(document.querySelectorAll("tr.fig-improvement").length),
	  getComputedStyle(document.querySelector("tr.fig-regression td.change")).color,
	]`))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 || got[0] != "REGRESSED" || got[1] == "0" || got[2] == "0" || got[3] != "rgb(224, 49, 49)" {
		t.Errorf("comparison page: badge, regressed rows, improved rows, change colour = %q", got)
	}
	screenshot(t, ctx, "compare-screenshot.png")
	visible, err := chromedp.Run(ctx, chromedp.Evaluate[int](toggleJS))
	if err != nil {
		t.Fatal(err)
	}
	if visible != 1 {
		t.Errorf("%d scenario sections visible with 'regressed only', want 1", visible)
	}
}

// shortTempDir is a temporary directory removed after the test, with a path
// short enough for Chromium's singleton socket (t.TempDir's is too long).
func shortTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "octoha-chr")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}
