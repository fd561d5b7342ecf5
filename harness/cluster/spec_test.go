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
