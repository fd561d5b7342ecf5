package cluster

import (
	"strings"
	"testing"
	"time"

	"github.com/octoha/octoha/fakes/node/launch"
)

// Issue 11 item 5: Spec.Redacted (which feeds state.json and octoha
// status) left password= in URL query strings, pwd= and sslpassword=
// visible.
func TestRedactedHidesEveryDSNPassword(t *testing.T) {
	const secret = "s3cretPW"
	for _, dsn := range []string{
		"postgres://octoha:" + secret + "@127.0.0.5:5432/octoha",
		"postgres://octoha@127.0.0.5/octoha?sslmode=disable&password=" + secret,
		"postgres://octoha@127.0.0.5/octoha?sslpassword=" + secret + "&sslmode=verify-full",
		"host=127.0.0.5 user=octoha password=" + secret + " dbname=octoha",
		"host=127.0.0.5 user=octoha sslpassword=" + secret + " dbname=octoha",
		"host=127.0.0.5 password='" + secret + " x' dbname=octoha",
		"sqlserver://sa:" + secret + "@127.0.0.7:1433?database=octoha",
		"sqlserver://127.0.0.7?database=octoha&password=" + secret,
		"server=127.0.0.7;user id=sa;password=" + secret + ";database=octoha",
		"server=127.0.0.7;user id=sa;pwd=" + secret + " x;database=octoha",
		"odbc:server=127.0.0.7;user id=sa;pwd={" + secret + ";x}",
	} {
		s := Spec{APIKey: "API-SPECKEY", DB: DatabaseSpec{DSN: dsn}}.Redacted()
		if strings.Contains(s.DB.DSN, secret) || strings.Contains(s.DB.DSN, " x") {
			t.Errorf("Redacted DSN of %q = %q", dsn, s.DB.DSN)
		}
		if s.APIKey == "API-SPECKEY" {
			t.Error("the API key is not redacted")
		}
	}
	ext := &ExternalSpec{LBURL: "https://ops:" + secret + "@lb.example/", Nodes: []ExternalNode{{Name: "A", URL: "https://a.example/?apikey=" + secret}}}
	s := Spec{External: ext}.Redacted()
	if strings.Contains(s.External.LBURL, secret) || strings.Contains(s.External.Nodes[0].URL, secret) {
		t.Errorf("external URLs not redacted: %+v", s.External)
	}
	if !strings.Contains(ext.LBURL, secret) {
		t.Error("Redacted changed the caller's spec")
	}
	if dsn := "sqlite:/tmp/octoha.db"; (Spec{DB: DatabaseSpec{DSN: dsn}}).Redacted().DB.DSN != dsn {
		t.Error("a DSN without a password changed")
	}
}

// The task-queue settings reach a node's flags; zero leaves the node's
// defaults and a negative retention interval disables retention.
func TestNodeSpecApplyTasks(t *testing.T) {
	lc := launch.Default()
	NodeSpec{TaskPoll: 200 * time.Millisecond, OfflineAfter: 2 * time.Second, LeaderLease: time.Second,
		RetentionInterval: -1, UnsafeTaskClaim: true}.ApplyTasks(&lc)
	want := []string{"--task-poll=200ms", "--offline-after=2s", "--leader-lease=1s", "--retention-interval=0s", "--unsafe-task-claim=true"}
	if got := strings.Join(lc.Args(), " "); got != strings.Join(want, " ") {
		t.Fatalf("args %q, want %q", got, want)
	}
	lc = launch.Default()
	NodeSpec{}.ApplyTasks(&lc)
	if args := lc.Args(); len(args) != 0 {
		t.Fatalf("an empty spec changed flags: %q", args)
	}
}

// A cluster mixing Windows and Linux nodes is refused, citing the seed,
// unless allowed; the OS reaches each node's flags (linux renders none).
func TestSpecMixedOS(t *testing.T) {
	parse := func(y string) (Spec, error) {
		s, err := ParseSpec([]byte(y))
		if err != nil {
			return s, err
		}
		return s.Normalize()
	}
	if _, err := parse("nodes: 2\nnode: {os: [windows]}\n"); err != nil {
		t.Fatalf("all Windows refused: %v", err)
	}
	_, err := parse("nodes: 2\nnode: {os: [windows, linux]}\n")
	if err == nil || !strings.Contains(err.Error(), "cannot run both Windows, and Octopus Linux containers") || !strings.Contains(err.Error(), "Node1") {
		t.Fatalf("mixed cluster: %v; want a refusal citing the seed", err)
	}
	s, err := parse("nodes: 2\nnode: {os: [windows, linux], allowMixedOS: true}\n")
	if err != nil {
		t.Fatalf("allowed mixed cluster refused: %v", err)
	}
	for i, want := range []string{"--os=windows", ""} {
		lc := launch.Default()
		s.ApplyNode(i, &lc)
		if got := strings.Join(lc.Args(), " "); got != want {
			t.Errorf("node %d args %q, want %q", i, got, want)
		}
	}
	for _, y := range []string{"nodes: 3\nnode: {os: [windows, linux]}\n", "nodes: 1\nnode: {os: [macos]}\n"} {
		if _, err := parse(y); err == nil {
			t.Errorf("accepted %q", y)
		}
	}
	// A real cluster's mix is reported by certify, not refused.
	if _, err := parse("provider: external\nexternal: {lbURL: 'http://lb', nodes: [{name: A, url: 'http://a', os: windows}, {name: B, url: 'http://b', os: linux}]}\n"); err != nil {
		t.Errorf("external mixed cluster refused: %v", err)
	}
}

func TestSpecPermissionCache(t *testing.T) {
	s, err := ParseSpec([]byte("node: {permissionCache: shared, permissionCacheTTL: 3s}\n"))
	if err == nil {
		s, err = s.Normalize()
	}
	if err != nil {
		t.Fatal(err)
	}
	lc := launch.Default()
	s.ApplyNode(0, &lc)
	if got, want := strings.Join(lc.Args(), " "), "--permission-cache-ttl=3s --permission-cache=shared"; got != want {
		t.Errorf("args %q, want %q", got, want)
	}
	if _, err := (Spec{Node: NodeSpec{PermissionCache: "sometimes"}}).Normalize(); err == nil || !strings.Contains(err.Error(), "permissionCache") {
		t.Errorf("bad permissionCache: %v", err)
	}
}
