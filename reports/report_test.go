package reports

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/octoha/octoha/harness/checker"
	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/history"
)

// update regenerates the fixture's vegeta results file and the golden
// summaries: go test ./reports -run Golden -update
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

func TestGoldenSummaries(t *testing.T) {
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

func TestHTMLShowsWhyAScenarioFailed(t *testing.T) {
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

func TestWriteSingleScenarioDirAndOut(t *testing.T) {
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
	for _, p := range []string{out, filepath.Join(filepath.Dir(out), JSONFile), filepath.Join(filepath.Dir(out), MarkdownFile)} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("not written: %v", err)
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

func TestBadInputIsAClearError(t *testing.T) {
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

func TestSecretsNeverAppear(t *testing.T) {
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

func TestScrub(t *testing.T) {
	for in, want := range map[string]string{
		"GET /api?apikey=API-ABCDEFGHIJKLMNOP&x=1":     "GET /api?apikey=API-(redacted)&x=1",
		"X-Octopus-ApiKey: API-ABCDEFGHIJKLMNOP":       "X-Octopus-ApiKey: API-(redacted)",
		"X-Octopus-ApiKey: some-other-secret":          "X-Octopus-ApiKey: (redacted)",
		"key API-ABCDEFGHIJKLMNOP in a note":           "key API-(redacted) in a note",
		"postgres://octoha:pw@127.0.0.5/db":            "postgres://octoha:(redacted)@127.0.0.5/db",
		"server=s;user id=sa;password=P@ss;database=d": "server=s;user id=sa;password=(redacted);database=d",
		`{"password":"x y"}`:                           `{"password":"(redacted) y"}`,
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

func TestReplayCommand(t *testing.T) {
	s := Scenario{Labels: []string{"chaos", "fault:kill"}, Seed: 42}
	if got, want := s.ReplayCommand(), "make chaos LABELS='chaos && fault:kill' OCTOHA_SEED=42"; got != want {
		t.Errorf("ReplayCommand = %q, want %q", got, want)
	}
	s.Replay = "make chaos FOCUS=x OCTOHA_SEED=42"
	if s.ReplayCommand() != s.Replay {
		t.Errorf("Replay not used: %q", s.ReplayCommand())
	}
}

func TestEntries(t *testing.T) {
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
func TestLargeRunStaysSmall(t *testing.T) {
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
func TestHistoryWithoutOps(t *testing.T) {
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
