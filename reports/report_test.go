package reports

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"html"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/octoha/octoha/harness/checker"
	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/history"
)

// update regenerates the fixture's vegeta results file and the golden
// summaries: go test ./reports -run ReportGolden -update
var update = flag.Bool("update", false, "regenerate testdata/run's vegeta results and the golden summary.json and summary.md")

const (
	fixtureRun     = "testdata/run"
	fixtureResults = "testdata/run/scenarios/kill-node-during-uploads/attack.results.gob"
)

// copyFixture copies the fixture run into a temporary directory, so tests
// write their reports there and not into testdata.
func copyFixture(t *testing.T) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "20261125-181500")
	if err := os.CopyFS(dst, os.DirFS(fixtureRun)); err != nil {
		t.Fatalf("copy fixture: %v", err)
	}
	return dst
}

// writeFixtureResults writes the kill scenario's ping ops as vegeta
// results, as harness/traffic's Attack would have recorded them.
func writeFixtureResults(t *testing.T) {
	t.Helper()
	h, err := history.Load(filepath.Join(filepath.Dir(fixtureResults), HistoryFile))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	enc := vegeta.NewEncoder(&buf)
	for _, o := range h.OpsOfKind(history.KindPing) {
		r := vegeta.Result{Attack: "ping", Seq: o.Seq, Code: uint16(o.Status), Timestamp: o.Start, Latency: o.Duration(),
			BytesIn: 180, Error: o.Error, Method: "GET", URL: o.URL}
		if err := enc.Encode(&r); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(fixtureResults, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestReportGoldenSummaries(t *testing.T) {
	if *update {
		writeFixtureResults(t)
	}
	dir := copyFixture(t)
	sum, err := Write(context.Background(), dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{JSONFile, MarkdownFile} {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		// The run directory's name is the temp copy's; the golden has it.
		golden := filepath.Join("testdata", "golden", name)
		if *update {
			if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(golden, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%v (run with -update to create it)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from %s (run with -update after checking the change):\n%s", name, golden, firstDiff(string(want), string(got)))
		}
	}

	// What the goldens encode, asserted directly so a bad -update is caught.
	if sum.Run.Passed || sum.Run.Totals != (Totals{Scenarios: 3, Passed: 1, Failed: 1, Skipped: 1}) {
		t.Errorf("run = %+v", sum.Run)
	}
	byName := map[string]ScenarioSummary{}
	for _, s := range sum.Scenarios {
		byName[s.Slug] = s
	}
	failed := byName["unsafe-ack-loses-uploads"]
	if failed.Failure == nil || failed.Failure.Check != "durability" || len(failed.Failure.Evidence) == 0 ||
		!strings.Contains(failed.Failure.Evidence[0], "Acme.Api@2.0.3 LOST") {
		t.Errorf("failure = %+v", failed.Failure)
	}
	if failed.Checks[0].Status != "fail" {
		t.Errorf("failed checks are not listed first: %+v", failed.Checks[0])
	}
	if !containsSub(failed.Warnings, "cut off") {
		t.Errorf("truncated history not warned about: %q", failed.Warnings)
	}
	passed := byName["kill-node-during-uploads"]
	var fromVegeta, fromHistory *LatencySummary
	for i, l := range passed.Latency {
		switch {
		case l.Source == SourceVegeta:
			fromVegeta = &passed.Latency[i]
		case l.Kind == history.KindPing:
			fromHistory = &passed.Latency[i]
		}
	}
	if fromVegeta == nil || fromHistory == nil {
		t.Fatalf("latency rows = %+v", passed.Latency)
	}
	// The results file holds the same pings, so vegeta's figures and the
	// history's must agree: both go through vegeta's Metrics.
	if fromVegeta.Count != fromHistory.Count || fromVegeta.P99Ms != fromHistory.P99Ms || fromVegeta.MaxMs != fromHistory.MaxMs {
		t.Errorf("vegeta %+v and history %+v disagree", *fromVegeta, *fromHistory)
	}
	if len(passed.Faults) != 1 || passed.Faults[0].EndOffset == nil || passed.Faults[0].Target != "Node2" {
		t.Errorf("faults = %+v", passed.Faults)
	}
	skipped := byName["database-outage-postgres"]
	if skipped.State != StateSkipped || skipped.SkipReason == "" || len(skipped.Warnings) != 0 {
		t.Errorf("skipped = %+v", skipped)
	}
}

func firstDiff(want, got string) string {
	wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := range max(len(wl), len(gl)) {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			return fmt.Sprintf("line %d:\nwant: %s\ngot:  %s", i+1, w, g)
		}
	}
	return "(same lines, different bytes)"
}

func containsSub(ss []string, sub string) bool {
	for _, s := range ss {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

func TestReportHTMLShowsWhyAScenarioFailed(t *testing.T) {
	dir := copyFixture(t)
	if _, err := Write(context.Background(), dir, Options{}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, HTMLFile))
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	for _, want := range []string{
		"Why the run failed",
		"First failed check: <b>durability</b>",
		"Acme.Api@2.0.3 LOST",
		"OCTOHA_SEED=7",
		"EMBEDDED",
		`class="blame"`,               // the lost upload's op is ringed on the timeline
		"the history&#39;s last line", // truncation warning
		"attack.results.gob",
		`href="scenarios/unsafe-ack-loses-uploads/logs/Node1.log"`,
		"⚡ kill Node2",
		">DOWN<",
		// Title over Name, the claim beneath it; Name without a title.
		`</span> Kill mid-upload</h2>
  <p class="claim">Killing a node fails only the uploads it was receiving;`,
		"</span> unsafe node acknowledges before storing</h2>",
		// The skipped scenario, with its reason, and the counts.
		"Database outage — PostgreSQL",
		"⏭ Skipped: needs PostgreSQL: initdb not found",
		`<span class="c-passed">1 passed</span>,`,
		`<span class="c-skipped">1 skipped</span>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
	// Offline: nothing is fetched from elsewhere.
	for _, bad := range []string{"http://", "https://", "<link", "src="} {
		for _, line := range strings.Split(page, "\n") {
			if strings.Contains(line, bad) && !strings.Contains(line, "www.w3.org/2000/svg") && !strings.Contains(line, "127.0.0.") {
				t.Errorf("HTML references something external (%q): %.200s", bad, line)
			}
		}
	}
}

func TestReportWriteSingleScenarioDirAndOut(t *testing.T) {
	dir := copyFixture(t)
	sc := filepath.Join(dir, ScenariosDir, "unsafe-ack-loses-uploads")
	out := filepath.Join(t.TempDir(), "elsewhere", "report.html")
	sum, err := Write(context.Background(), sc, Options{HTML: out})
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.Scenarios) != 1 || sum.Scenarios[0].Slug != "unsafe-ack-loses-uploads" {
		t.Fatalf("scenarios = %+v", sum.Scenarios)
	}
	if _, err := os.Stat(out); err != nil {
		t.Errorf("not written: %v", err)
	}
	// Only the HTML report was asked for: nothing is written beside it
	// (an earlier call's summaries there stay as they were).
	for _, p := range []string{filepath.Join(filepath.Dir(out), JSONFile), filepath.Join(filepath.Dir(out), MarkdownFile)} {
		if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s written beside the HTML report though not asked for: %v", filepath.Base(p), err)
		}
	}
	if _, err := os.Stat(filepath.Join(sc, HTMLFile)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("wrote into the scenario directory despite --out: %v", err)
	}
	// Log links are relative to where the HTML went.
	b, _ := os.ReadFile(out)
	rel, _ := filepath.Rel(filepath.Dir(out), filepath.Join(sc, "logs", "Node1.log"))
	if !strings.Contains(string(b), `href="`+filepath.ToSlash(rel)+`"`) {
		t.Errorf("log link to %s missing", rel)
	}
}

func TestReportBadInputIsAClearError(t *testing.T) {
	ctx := context.Background()
	empty := t.TempDir()
	corruptScenario := t.TempDir()
	writeFile(t, filepath.Join(corruptScenario, ScenarioFile), "{not json")
	corruptHistory := t.TempDir()
	writeFile(t, filepath.Join(corruptHistory, ScenarioFile), `{"name":"x","state":"passed"}`)
	writeFile(t, filepath.Join(corruptHistory, HistoryFile), "{\"op\":{\"seq\":1,\"kind\":\"ping\"}}\ngarbage\n{\"op\":{\"seq\":2,\"kind\":\"ping\"}}\n")
	badState := t.TempDir()
	writeFile(t, filepath.Join(badState, ScenarioFile), `{"name":"x","state":"exploded"}`)
	badResults := t.TempDir()
	writeFile(t, filepath.Join(badResults, ScenarioFile), `{"name":"x","state":"passed"}`)
	writeFile(t, filepath.Join(badResults, "attack"+ResultsSuffix), "this is not gob, JSON or CSV\x00\x01")

	for _, tc := range []struct {
		name, dir, want string
	}{
		{"missing directory", filepath.Join(empty, "nope"), "no such file"},
		{"no scenarios", empty, "no scenarios in"},
		{"corrupt scenario.json", corruptScenario, ScenarioFile},
		{"corrupt history", corruptHistory, "line 2"},
		{"unknown state", badState, "unknown state"},
		{"corrupt results", badResults, "not a vegeta results file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Write(ctx, tc.dir, Options{})
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, ErrBadInput) {
				t.Errorf("error %v does not match ErrBadInput", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
		})
	}
}

func TestInterruptedScenarioIsReportedIncomplete(t *testing.T) {
	dir := t.TempDir()
	sc := filepath.Join(dir, ScenariosDir, "half-done")
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := os.MkdirAll(sc, 0o755); err != nil {
		t.Fatal(err)
	}
	r, err := history.Create(filepath.Join(sc, HistoryFile))
	if err != nil {
		t.Fatal(err)
	}
	r.Op(history.Op{Kind: history.KindPing, Start: t0, End: t0.Add(time.Millisecond), Outcome: history.OK, Status: 200, Node: "Node1"})
	r.FaultStart("kill", "Node1", "")
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	sum, err := Write(context.Background(), dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := sum.Scenarios[0]
	if s.State != StateIncomplete || sum.Run.Passed || sum.Run.Totals.Incomplete != 1 || s.Failure == nil {
		t.Fatalf("summary = %+v", sum)
	}
	if len(s.Faults) != 1 || s.Faults[0].EndOffset != nil {
		t.Errorf("open fault = %+v", s.Faults)
	}
	md, _ := os.ReadFile(filepath.Join(dir, MarkdownFile))
	if !strings.Contains(string(md), "⚠️") || !strings.Contains(string(md), "did not finish") {
		t.Errorf("markdown does not flag the interrupted scenario:\n%s", md)
	}
}

func TestReportSecretsNeverAppear(t *testing.T) {
	const (
		key      = "API-ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
		key2     = "API-ZZZZZZZZZZZZZZZZZZZZ9999"
		password = "hunter2hunter2"
	)
	dir := t.TempDir()
	sc := filepath.Join(dir, ScenariosDir, "leaky")
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := os.MkdirAll(sc, 0o755); err != nil {
		t.Fatal(err)
	}
	r, err := history.Create(filepath.Join(sc, HistoryFile))
	if err != nil {
		t.Fatal(err)
	}
	// Keys and passwords where they do not belong: request URLs, errors
	// quoting headers, notes, fault details.
	r.Op(history.Op{Kind: history.KindPing, Start: t0, End: t0.Add(time.Millisecond), Outcome: history.OK, Status: 200, Node: "Node1",
		URL: "http://127.0.0.10:8080/api/octopusservernodes/ping?apikey=" + key})
	r.Op(history.Op{Kind: history.KindUpload, Start: t0, End: t0.Add(time.Second), Outcome: history.Failed, Status: 401, Node: "Node2",
		PackageID: "Pkg", Version: "1.0.0", Error: "401: X-Octopus-ApiKey: " + key2 + " rejected", Note: "retried with " + key})
	r.Op(history.Op{Kind: history.KindPing, Start: t0, End: t0.Add(time.Second), Outcome: history.Unknown,
		Error: "dial postgres://octoha:" + password + "@127.0.0.5/db: refused"})
	f := r.FaultStart("db-outage", "database", "dsn=postgres://u:"+password+"@127.0.0.5/x")
	r.FaultEnd(f, fmt.Errorf("restart: password=%s rejected", password))
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	sp := cluster.Defaults()
	sp.APIKey = key
	sp.DB.Kind = cluster.DBPostgres
	sp.DB.DSN = "postgres://octoha:" + password + "@127.0.0.5:5432/octopus"
	sp.External = &cluster.ExternalSpec{Hooks: map[string]string{"kill": "ssh admin@{node} --password=" + password}}
	s := Scenario{
		Name: "leaky", Slug: "leaky", State: StateFailed, Seed: 1, Start: t0, End: t0.Add(2 * time.Second), Spec: &sp,
		Labels:  []string{"chaos"},
		Failure: "expected 200, got 401 with header X-Octopus-ApiKey: " + key + " and password=" + password,
		Notes:   []string{"the key was " + key},
		Components: []cluster.Component{{Part: "database", Description: "PostgreSQL",
			Location: "postgres://octoha:" + password + "@127.0.0.5:5432/octopus"}},
		Checks: &checker.Report{Results: []checker.Result{{Name: "error-window", Status: checker.Fail, Summary: "401 with " + key,
			Evidence: []string{"op #2 upload failed: X-Octopus-ApiKey: " + key2}}}},
		Figures: []checker.Figure{{Name: "x", Value: 1}},
	}
	// scenario.json written by hand, unredacted, as a careless suite might.
	s.Replay = "OCTOHA_API_KEY=" + key + " make chaos"
	writeJSON(t, filepath.Join(sc, ScenarioFile), s)
	// A vegeta results file whose URL, headers and error carry the key.
	var buf bytes.Buffer
	enc := vegeta.NewEncoder(&buf)
	if err := enc.Encode(&vegeta.Result{Attack: "ping", Code: 401, Timestamp: t0, Latency: time.Millisecond,
		URL: "http://127.0.0.10:8080/api?apikey=" + key, Error: "bad key " + key2, Headers: map[string][]string{"X-Octopus-ApiKey": {key}}}); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(sc, "attack"+ResultsSuffix), buf.String())

	if _, err := Write(context.Background(), dir, Options{}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{HTMLFile, JSONFile, MarkdownFile} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		for _, secret := range []string{key, key2, password, "API-ABCDEFGH", "API-ZZZZ"} {
			if bytes.Contains(b, []byte(secret)) {
				i := bytes.Index(b, []byte(secret))
				t.Errorf("%s leaks %q: …%s…", name, secret, b[max(0, i-80):min(len(b), i+40)])
			}
		}
	}
	page, _ := os.ReadFile(filepath.Join(dir, HTMLFile))
	if !bytes.Contains(page, []byte("apiKey: (redacted)")) {
		t.Error("the cluster spec is not shown redacted")
	}
	for _, e := range Entries(s) {
		if strings.Contains(e.Value, key) || strings.Contains(e.Value, key2) || strings.Contains(e.Value, password) {
			t.Errorf("entry %q leaks a secret: %s", e.Name, e.Value)
		}
	}
}

func TestReportScrub(t *testing.T) {
	for in, want := range map[string]string{
		"GET /api?apikey=API-ABCDEFGHIJKLMNOP&x=1":     "GET /api?apikey=API-(redacted)&x=1",
		"X-Octopus-ApiKey: API-ABCDEFGHIJKLMNOP":       "X-Octopus-ApiKey: API-(redacted)",
		"X-Octopus-ApiKey: some-other-secret":          "X-Octopus-ApiKey: (redacted)",
		"key API-ABCDEFGHIJKLMNOP in a note":           "key API-(redacted) in a note",
		"postgres://octoha:pw@127.0.0.5/db":            "postgres://octoha:(redacted)@127.0.0.5/db",
		"server=s;user id=sa;password=P@ss;database=d": "server=s;user id=sa;password=(redacted);database=d",
		`{"password":"x y"}`:                           `{"password":(redacted)}`,
		"apiKey: (redacted)":                           "apiKey: (redacted)",
		"op #12 upload Acme@1.0.0 ok HTTP 201 via lb":  "op #12 upload Acme@1.0.0 ok HTTP 201 via lb",
		"API-short stays (not a key)":                  "API-short stays (not a key)",
		"http://127.0.0.10:8080/api/Spaces-1/packages": "http://127.0.0.10:8080/api/Spaces-1/packages",
	} {
		if got := Scrub(in); got != want {
			t.Errorf("Scrub(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestReportReplayCommand(t *testing.T) {
	s := Scenario{Labels: []string{"chaos", "fault:kill"}, Seed: 42}
	if got, want := s.ReplayCommand(), "make chaos LABELS='chaos && fault:kill' OCTOHA_SEED=42"; got != want {
		t.Errorf("ReplayCommand = %q, want %q", got, want)
	}
	s.Replay = "make chaos FOCUS=x OCTOHA_SEED=42"
	if s.ReplayCommand() != s.Replay {
		t.Errorf("Replay not used: %q", s.ReplayCommand())
	}
}

func TestReportEntries(t *testing.T) {
	s, err := ReadScenario(filepath.Join(fixtureRun, ScenariosDir, "unsafe-ack-loses-uploads"))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, e := range Entries(*s) {
		if _, dup := got[e.Name]; dup && e.Name != "note" {
			t.Errorf("entry %q appears twice", e.Name)
		}
		got[e.Name] = e.Value
	}
	for name, want := range map[string]string{
		"state":                   "failed",
		"seed":                    "7",
		"replay":                  "make chaos LABELS='chaos && fault:pause && checker-proof' OCTOHA_SEED=7",
		"figure lost-packages":    "2 packages",
		"durability.missing":      "2 packages",
		"check durability":        "fail: uploads lost",
		"first failed check":      "durability: uploads lost",
		"embedded components":     "load balancer, database, share",
		"convergence.f1.eject-lb": "0.6 s",
	} {
		if !strings.HasPrefix(got[name], want) {
			t.Errorf("entry %q = %q, want prefix %q", name, got[name], want)
		}
	}
}

// TestLargeRunStaysSmall builds a 100k-op history and checks that the
// HTML stays a reasonable size, says it downsampled, and keeps failures.
func TestReportLargeRunStaysSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds a 100k-op history")
	}
	dir := t.TempDir()
	sc := filepath.Join(dir, ScenariosDir, "big")
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var b strings.Builder
	const n = 100_000
	for i := range n {
		start := t0.Add(time.Duration(i) * 600 * time.Microsecond) // 60 s
		// Latencies spread over three decades so points do not merge.
		lat := time.Duration(200+(i*7919)%200_000) * time.Microsecond
		node, status, outcome := fmt.Sprintf("Node%d", i%3+1), 200, "ok"
		if i%997 == 0 {
			node, status, outcome = "", 503, "failed"
		}
		fmt.Fprintf(&b, `{"op":{"seq":%d,"kind":"ping","start":%q,"end":%q,"outcome":%q,"status":%d,"node":%q}}`+"\n",
			i+1, start.Format(time.RFC3339Nano), start.Add(lat).Format(time.RFC3339Nano), outcome, status, node)
	}
	fmt.Fprintf(&b, `{"fault":{"id":"f1","kind":"kill","target":"Node2","start":%q,"end":%q}}`+"\n",
		t0.Add(20*time.Second).Format(time.RFC3339Nano), t0.Add(30*time.Second).Format(time.RFC3339Nano))
	writeFile(t, filepath.Join(sc, HistoryFile), b.String())
	writeJSON(t, filepath.Join(sc, ScenarioFile), Scenario{Name: "big", Slug: "big", State: StatePassed, Start: t0, End: t0.Add(time.Minute)})

	start := time.Now()
	sum, err := Write(context.Background(), dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("100k ops reported in %v", time.Since(start).Round(time.Millisecond))
	if sum.Scenarios[0].Traffic.Ops != n {
		t.Fatalf("ops = %d", sum.Scenarios[0].Traffic.Ops)
	}
	st, err := os.Stat(filepath.Join(dir, HTMLFile))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("HTML: %d bytes", st.Size())
	if st.Size() > 2<<20 {
		t.Errorf("HTML is %d bytes for 100k ops, want under 2 MiB", st.Size())
	}
	page, _ := os.ReadFile(filepath.Join(dir, HTMLFile))
	if !bytes.Contains(page, []byte("downsampled")) {
		t.Error("the plot does not say it was downsampled")
	}
	// Every failure (n/997+1 of them, in the no-node lane) is drawn.
	if got, want := bytes.Count(page, []byte(`class="pt-5xx"`)), n/997+1; got != want {
		t.Errorf("%d failed requests drawn, want %d", got, want)
	}
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeJSON writes a scenario file as-is (unlike WriteScenario, which
// redacts), to test what reports do with careless inputs.
func writeJSON(t *testing.T, path string, s Scenario) {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, string(b))
}

// TestHistoryWithoutOps reports a scenario whose history holds only a
// fault and load-balancer samples (the traffic never started).
func TestReportHistoryWithoutOps(t *testing.T) {
	dir := t.TempDir()
	sc := filepath.Join(dir, ScenariosDir, "quiet")
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	writeFile(t, filepath.Join(sc, HistoryFile), fmt.Sprintf(
		`{"lb":{"time":%q,"server":"Node1","state":"UP"}}`+"\n"+
			`{"fault":{"id":"f1","kind":"kill","target":"Node1","start":%q,"end":%q}}`+"\n"+
			`{"lb":{"time":%q,"server":"Node1","state":"DOWN"}}`+"\n",
		t0.Format(time.RFC3339Nano), t0.Add(time.Second).Format(time.RFC3339Nano), t0.Add(3*time.Second).Format(time.RFC3339Nano),
		t0.Add(1500*time.Millisecond).Format(time.RFC3339Nano)))
	writeJSON(t, filepath.Join(sc, ScenarioFile), Scenario{Name: "quiet", State: StateFailed, Failure: "no traffic", Start: t0, End: t0.Add(4 * time.Second)})
	sum, err := Write(context.Background(), dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s := sum.Scenarios[0]; s.Traffic.Ops != 0 || len(s.Faults) != 1 || s.Failure == nil || s.Failure.Message != "no traffic" {
		t.Fatalf("summary = %+v", s)
	}
	page, _ := os.ReadFile(filepath.Join(dir, HTMLFile))
	for _, want := range []string{`class="fault"`, ">DOWN<", "⚡ kill Node1", `<details open><summary>Assertion message`} {
		if !bytes.Contains(page, []byte(want)) {
			t.Errorf("HTML lacks %q", want)
		}
	}
}

// expectedFailureRun writes a run directory through WriteScenario, as the
// runner does: "broken-cluster-control" passed, its durability check
// failing as the scenario declared it must; with failed, also
// "lb-misconfigured", which failed on an unexpected error-window failure
// after a check that failed as expected.
func expectedFailureRun(t *testing.T, failed bool) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "20261126-090000")
	t0 := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	control := Scenario{
		Name:  "Broken cluster control",
		Title: "Broken cluster control",
		Claim: "The durability check catches a node that acknowledges an upload before storing it and is killed: the check must fail, naming the lost package.",
		Slug:  "broken-cluster-control", Labels: []string{"chaos", "control"}, Seed: 11, Provider: "local",
		Start: t0, End: t0.Add(5 * time.Second), State: StatePassed,
		Checks: &checker.Report{Results: []checker.Result{
			{Name: "history", Status: checker.Pass, Summary: "40 ops"},
			{Name: "durability", Status: checker.Fail, ExpectedFailure: true, Summary: "uploads lost: 1 missing (of 5 acknowledged)",
				Evidence: []string{"Acme.Api@1.0.4 LOST: absent via lb, Node1, Node2 (acknowledged by op #9)"},
				Figures:  []checker.Figure{{Name: "missing", Value: 1, Unit: "packages"}}},
			{Name: "convergence", Status: checker.Pass, Summary: "ejected within 0.5s"},
			{Name: "no-leftovers", Status: checker.Skip, Summary: "no listing"},
		}},
	}
	if err := WriteScenario(filepath.Join(dir, ScenariosDir, control.Slug), control); err != nil {
		t.Fatal(err)
	}
	if failed {
		lb := Scenario{
			Name: "LB misconfigured", Title: "LB misconfigured", Claim: "The harness catches a load balancer without health checks.",
			Slug: "lb-misconfigured", Seed: 12, Start: t0.Add(6 * time.Second), End: t0.Add(9 * time.Second), State: StateFailed,
			Failure: "error-window: 3 failures outside fault windows",
			Checks: &checker.Report{Results: []checker.Result{
				{Name: "convergence", Status: checker.Fail, ExpectedFailure: true, Summary: "Node1 never ejected"},
				{Name: "history", Status: checker.Pass, Summary: "30 ops"},
				{Name: "error-window", Status: checker.Fail, Summary: "3 failures outside fault windows", Evidence: []string{"op #4 ping failed"}},
			}},
		}
		if err := WriteScenario(filepath.Join(dir, ScenariosDir, lb.Slug), lb); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestReportExpectedFailureIsNotARedMark(t *testing.T) {
	dir := expectedFailureRun(t, false)
	sum, err := Write(context.Background(), dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !sum.Run.Passed || sum.Run.Totals != (Totals{Scenarios: 1, Passed: 1}) {
		t.Errorf("run = %+v", sum.Run)
	}

	// summary.json, read as a reader without the Go types would.
	var raw struct {
		Scenarios []struct {
			Title, Claim, State string
			Failure             any
			Checks              []struct {
				Name            string
				Status          string
				ExpectedFailure *bool `json:"expectedFailure"`
			}
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, JSONFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	sc := raw.Scenarios[0]
	if sc.State != StatePassed || sc.Failure != nil || sc.Title != "Broken cluster control" || !strings.HasPrefix(sc.Claim, "The durability check catches") {
		t.Errorf("scenario = %+v", sc)
	}
	var names []string
	for _, c := range sc.Checks {
		names = append(names, c.Name)
		if c.ExpectedFailure == nil {
			t.Errorf("check %s has no expectedFailure field", c.Name)
			continue
		}
		if want := c.Name == "durability"; *c.ExpectedFailure != want || (want && c.Status != "fail") {
			t.Errorf("check %s: status %s, expectedFailure %v", c.Name, c.Status, *c.ExpectedFailure)
		}
	}
	if got := strings.Join(names, " "); got != "durability history convergence no-leftovers" {
		t.Errorf("checks in order %s, want the expected failure first, then passed, then skipped", got)
	}

	page, err := os.ReadFile(filepath.Join(dir, HTMLFile))
	if err != nil {
		t.Fatal(err)
	}
	html := string(page)
	for _, want := range []string{
		"Broken cluster control",
		`<p class="claim">The durability check catches a node`,
		`<span class="verdict expected">failed as expected ✓</span>`,
		`<tr class="check-expected">`,
		`<span class="c-expected" title="failed as expected">✓1 expected</span>`,
		`<div class="box expected">✓ <b>durability</b> failed as expected`,
		"all checks passed; <b>durability</b> failed as expected ✓",
		"Acme.Api@1.0.4 LOST", // the control's evidence is still there to read
	} {
		if !strings.Contains(html, want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
	// Nothing red: no fail verdict, row, box, badge or count; the page's
	// own stylesheet is the only place the classes are named.
	for _, bad := range []string{`"verdict fail"`, `"check-fail"`, `"c-failed"`, `"box fail"`, `badge failed`, `run failed`, "Why the run failed", `class="blame"`} {
		if strings.Contains(html, bad) {
			i := strings.Index(html, bad)
			t.Errorf("HTML marks the expected failure red with %s: …%s…", bad, html[max(0, i-120):min(len(html), i+80)])
		}
	}

	md, err := os.ReadFile(filepath.Join(dir, MarkdownFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"## octoha run 20261126-090000: ✅ passed",
		"1 scenarios: 1 passed, 0 failed, 0 skipped",
		"| ✅ | **Broken cluster control**<br>*The durability check catches a node",
		"| 2 of 4 checks passed, durability failed as expected ✓, 1 skipped |",
	} {
		if !strings.Contains(string(md), want) {
			t.Errorf("Markdown lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(string(md), "❌") {
		t.Errorf("Markdown marks the expected failure red:\n%s", md)
	}

	got := map[string]string{}
	s, err := ReadScenario(filepath.Join(dir, ScenariosDir, "broken-cluster-control"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range Entries(*s) {
		got[e.Name] = e.Value
	}
	if got["check durability"] != "failed as expected: uploads lost: 1 missing (of 5 acknowledged)" || got["first failed check"] != "" ||
		!strings.HasPrefix(got["claim"], "The durability check catches") {
		t.Errorf("entries = %q", got)
	}
}

func TestReportFailureSkipsExpectedFailures(t *testing.T) {
	dir := expectedFailureRun(t, true)
	sum, err := Write(context.Background(), dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Run.Passed || sum.Run.Totals != (Totals{Scenarios: 2, Passed: 1, Failed: 1}) {
		t.Errorf("run = %+v", sum.Run)
	}
	lb := sum.Scenarios[1]
	if lb.Failure == nil || lb.Failure.Check != "error-window" {
		t.Fatalf("failure = %+v, want the unexpected error-window failure, not the expected convergence one", lb.Failure)
	}
	if lb.Checks[0].Name != "error-window" || lb.Checks[1].Name != "convergence" || !lb.Checks[1].ExpectedFailure {
		t.Errorf("checks = %+v, want the unexpected failure first", lb.Checks)
	}
	if n := lb.CountChecks(); n != (CheckCounts{Pass: 1, Expected: 1, Fail: 1}) {
		t.Errorf("counts = %+v", n)
	}
	md, _ := os.ReadFile(filepath.Join(dir, MarkdownFile))
	for _, want := range []string{
		"### ❌ LB misconfigured\n\n*The harness catches a load balancer without health checks.*\n",
		"**error-window** failed: 3 failures outside fault windows",
		"**convergence** failed as expected ✓ (the scenario declares it must): Node1 never ejected",
	} {
		if !strings.Contains(string(md), want) {
			t.Errorf("Markdown lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(string(md), "**convergence** failed:") {
		t.Errorf("Markdown lists the expected failure as a failure:\n%s", md)
	}
	page, _ := os.ReadFile(filepath.Join(dir, HTMLFile))
	for _, want := range []string{
		"First failed check: <b>error-window</b>",
		`<span class="c-expected" title="failed as expected">✓1 expected</span> <span class="c-failed" title="failed">✗1</span>`,
	} {
		if !bytes.Contains(page, []byte(want)) {
			t.Errorf("HTML lacks %q", want)
		}
	}
	if bytes.Contains(page, []byte("First failed check: <b>convergence</b>")) {
		t.Error("HTML names the expected failure as the first failed check")
	}
}

// splitRun writes a one-scenario run whose history has a fault from t+2s
// to t+4s and failures before it, inside it, in its grace, after the
// grace, after a short grace, and one the scenario's error-window check
// does not count.
func splitRun(t *testing.T, grace *float64) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "20261126-100000")
	sc := filepath.Join(dir, ScenariosDir, "split")
	t0 := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	at := func(s float64) string {
		return t0.Add(time.Duration(s * float64(time.Second))).Format(time.RFC3339Nano)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `{"meta":{"time":%q,"scenario":"split","seed":1}}`+"\n", at(0))
	seq := 0
	op := func(kind string, start, end float64, outcome string, status int) {
		seq++
		fmt.Fprintf(&b, `{"op":{"seq":%d,"kind":%q,"start":%q,"end":%q,"outcome":%q,"status":%d,"node":"Node1"}}`+"\n", seq, kind, at(start), at(end), outcome, status)
	}
	op("ping", 0, 0.1, "ok", 200)
	op("ping", 1, 1.1, "failed", 500)    // before the fault: unexpected
	op("ping", 1.95, 2.05, "unknown", 0) // ends inside: expected
	op("upload", 3, 3.5, "failed", 503)  // inside: expected
	op("ping", 5.5, 5.6, "failed", 503)  // in a 2s grace, not in a 1s one
	op("ping", 7, 7.1, "failed", 413)    // outside a 1s or 2s grace: accepted by the check below
	op("upload", 8, 9, "ok", 201)
	fmt.Fprintf(&b, `{"fault":{"id":"f1","kind":"kill","target":"Node1","start":%q,"end":%q}}`+"\n", at(2), at(4))
	writeFile(t, filepath.Join(sc, HistoryFile), b.String())
	s := Scenario{Name: "split", Slug: "split", Seed: 1, Start: t0, End: t0.Add(10 * time.Second), State: StatePassed}
	if grace != nil {
		outside := 2.0 // the check counts the 500 and, with a 1s grace, the 503 at t+5.5s
		if *grace >= 2 {
			outside = 1
		}
		s.Checks = &checker.Report{Results: []checker.Result{{Name: "error-window", Status: checker.Pass, Summary: "…",
			Figures: []checker.Figure{{Name: "outside-failures", Value: outside, Unit: "ops"}, {Name: "grace", Value: *grace, Unit: "s"}}}}}
	}
	writeJSON(t, filepath.Join(sc, ScenarioFile), s)
	return dir
}

func TestReportFailuresSplitByFaultWindow(t *testing.T) {
	one, two := 1.0, 2.0
	for _, tc := range []struct {
		name                         string
		grace                        *float64
		wantGrace                    float64
		inside, accepted, unexpected int
	}{
		// Without an error-window check: the default 5s grace, nothing accepted.
		{"default grace", nil, 5, 4, 0, 1},
		{"check's 1s grace", &one, 1, 2, 1, 2},
		{"check's 2s grace", &two, 2, 3, 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := splitRun(t, tc.grace)
			sum, err := Write(context.Background(), dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			tr := sum.Scenarios[0].Traffic
			if tr.Failed+tr.Unknown != 5 || tr.InFaultWindows != tc.inside || tr.AcceptedOutsideFaultWindows != tc.accepted ||
				tr.Unexpected != tc.unexpected || tr.FaultGraceSeconds != tc.wantGrace {
				t.Errorf("traffic = %+v; want %d inside, %d accepted, %d unexpected with a %gs grace", tr, tc.inside, tc.accepted, tc.unexpected, tc.wantGrace)
			}
			if tr.UploadsAcknowledged != 1 || tr.UploadMBPerSecond != 0 {
				t.Errorf("uploads: %d acknowledged at %v MB/s (no bytes recorded)", tr.UploadsAcknowledged, tr.UploadMBPerSecond)
			}
			page, err := os.ReadFile(filepath.Join(dir, HTMLFile))
			if err != nil {
				t.Fatal(err)
			}
			html := string(page)
			wantIn := fmt.Sprintf(`>%d failed inside fault windows (expected)</div>`, tc.inside)
			wantOut := fmt.Sprintf(`<div class="c-failed small" title="failed or unknown operations outside every fault window">%d failed unexpectedly</div>`, tc.unexpected)
			for _, want := range []string{wantIn, wantOut, `<span class="c-infault">` + fmt.Sprint(tc.inside) + ` failed or unknown inside fault windows`} {
				if !strings.Contains(html, want) {
					t.Errorf("HTML lacks %q", want)
				}
			}
			md, err := os.ReadFile(filepath.Join(dir, MarkdownFile))
			if err != nil {
				t.Fatal(err)
			}
			if want := fmt.Sprintf("%d failed inside fault windows, expected", tc.inside); !strings.Contains(string(md), want) {
				t.Errorf("summary.md lacks %q:\n%s", want, md)
			}
		})
	}

	// The fixture's kill scenario passed with all 4 failures inside its
	// fault's window: its row shows them, and nothing in it is red.
	fixture := copyFixture(t)
	if _, err := Write(context.Background(), fixture, Options{}); err != nil {
		t.Fatal(err)
	}
	page, err := os.ReadFile(filepath.Join(fixture, HTMLFile))
	if err != nil {
		t.Fatal(err)
	}
	html := string(page)
	i := strings.Index(html, `<tr class="row-passed">`)
	if i < 0 {
		t.Fatal("no passed row")
	}
	row := html[i : i+strings.Index(html[i:], "</tr>")]
	if !strings.Contains(row, ">4 failed inside fault windows (expected)</div>") || !strings.Contains(row, `<div class="c-zero small">0 unexpected</div>`) || strings.Contains(row, "c-failed") {
		t.Errorf("the passed kill scenario's row:\n%s", row)
	}
}

// TestUploadLabelsKeepClear places upload bars where their labels cannot
// go after them: near the right edge (the label goes before the bar),
// near both edges with a package name too long for any side (the label
// drops the package), and checks that no label leaves the plot, enters
// the lane's name column or runs over another bar.
func TestReportUploadLabelsKeepClear(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 11, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	long := strings.Repeat("Very.Long.Package.Name.", 12)
	h := &history.History{Ops: []history.Op{
		{Seq: 1, Kind: history.KindUpload, Start: at(0), End: at(0.3), Outcome: history.OK, Status: 201, Bytes: 30e6, PackageID: "Acme.Web", Version: "1.0.0"},
		{Seq: 2, Kind: history.KindUpload, Start: at(9.7), End: at(9.9), Outcome: history.OK, Status: 201, Bytes: 20e6, PackageID: "Acme.Web", Version: "1.0.1"},
		{Seq: 3, Kind: history.KindUpload, Start: at(0.2), End: at(9.8), Outcome: history.OK, Status: 201, Bytes: 900e6, PackageID: long, Version: "1.0.2"},
		{Seq: 4, Kind: history.KindUpload, Start: at(0.01), End: at(9.99), Outcome: history.Failed, Status: 413, Bytes: 1e6, PackageID: long, Version: "1.0.3"},
	}}
	l := &loaded{Scenario: Scenario{Name: "labels", Start: t0, End: at(10)}, History: h}
	p := uploadPlot(l, DefaultMaxUploadRows)
	type box struct{ x0, x1, y float64 }
	var bars, labels []box
	var texts []string
	barRE := regexp.MustCompile(`<rect class="bar[^"]*" x="([\d.]+)" y="([\d.]+)" width="([\d.]+)"`)
	for _, m := range barRE.FindAllStringSubmatch(p.SVG, -1) {
		x, y, w := atof(t, m[1]), atof(t, m[2]), atof(t, m[3])
		bars = append(bars, box{x, x + w, y})
	}
	labelRE := regexp.MustCompile(`<text class="bar-label([^"]*)" x="([\d.]+)" y="([\d.]+)"( text-anchor="end")?>([^<]*)</text>`)
	for _, m := range labelRE.FindAllStringSubmatch(p.SVG, -1) {
		x, y := atof(t, m[2]), atof(t, m[3])
		w := float64(len([]rune(html.UnescapeString(m[5])))) * charW
		b := box{x, x + w, y - 11 + 3}
		if m[4] != "" {
			b = box{x - w, x, y - 11 + 3}
		}
		if strings.Contains(m[1], "inside") {
			continue // inside its own bar by construction; the browser test measures it
		}
		labels = append(labels, b)
		texts = append(texts, m[5])
	}
	if len(bars) != 4 || len(labels)+strings.Count(p.SVG, `class="bar-label inside"`) != 4 {
		t.Fatalf("%d bars, %d outside labels, %d inside:\n%s", len(bars), len(labels), strings.Count(p.SVG, "bar-label inside"), p.SVG)
	}
	for i, lb := range labels {
		if lb.x0 < plotLeft || lb.x1 > plotW {
			t.Errorf("label %q spans %v–%v, outside the plot area %v–%v", texts[i], lb.x0, lb.x1, plotLeft, plotW)
		}
		for _, b := range bars {
			if b.y == lb.y && lb.x0 < b.x1 && b.x0 < lb.x1 {
				t.Errorf("label %q (%v–%v) runs over a bar (%v–%v) in its row", texts[i], lb.x0, lb.x1, b.x0, b.x1)
			}
		}
	}
	if !strings.Contains(p.SVG, `text-anchor="end">Acme.Web@1.0.1`) {
		t.Errorf("the bar at the right edge is not labelled before it:\n%s", p.SVG)
	}
	if strings.Contains(p.SVG, ">"+long) || !strings.Contains(p.SVG, "900.0 MB · 93.8 MB/s</text>") {
		t.Errorf("the long-named upload's label did not drop the package:\n%s", p.SVG)
	}
	if !strings.Contains(p.SVG, "4 attempts") {
		t.Errorf("lane count missing")
	}
}

func atof(t *testing.T, s string) float64 {
	t.Helper()
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatal(err)
	}
	return f
}
