package traffic

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/octoha/octoha/harness/history"
)

// Issue 11 item 4: a base URL with ?apikey= is rejected, but the error
// printed the key.
func TestRejectedURLDoesNotEchoTheKey(t *testing.T) {
	const secret = "API-ECHOEDKEY12345"
	for _, raw := range []string{
		"http://h/?apikey=" + secret,
		"http://h/?x=1&api-key=" + secret + "#f",
		"http://h/#apikey=" + secret,
		"http://u:" + secret + "@h/?a=b",
		"http://u:" + secret + "@h:bad/",
	} {
		aerr := AttackOptions{URL: raw, Target: TargetPing, Rate: vegeta.Rate{Freq: 1, Per: time.Second}}.Validate()
		uerr := UploadOptions{URL: raw, APIKey: testKey, Count: 1}.Validate()
		for _, err := range []error{aerr, uerr} {
			if err == nil {
				t.Errorf("%s: accepted", raw)
			} else if strings.Contains(err.Error(), secret) {
				t.Errorf("the error shows the secret: %v", err)
			}
		}
	}
}

// Issue 11 item 4: user:password in the URL went verbatim into the
// history and the vegeta results.
func TestRecordsRedactUserInfo(t *testing.T) {
	const secret = "hunter2secret"
	withUser := func(base string) string { return strings.Replace(base, "http://", "http://octo:"+secret+"@", 1) }

	n := newPingNode(t, "Node1")
	var hbuf, rbuf bytes.Buffer
	rec := history.NewRecorder(&hbuf)
	m, err := Attack(t.Context(), AttackOptions{
		URL: withUser(n.srv.URL), Target: TargetPing, Rate: vegeta.Rate{Freq: 20, Per: time.Second},
		Duration: 200 * time.Millisecond, Recorder: rec, Results: &rbuf,
	})
	if err != nil {
		t.Fatal(err)
	}
	if m.Requests == 0 {
		t.Fatal("no requests")
	}
	rec.Close()
	checkNoSecret(t, "attack history", hbuf.Bytes(), secret)
	for _, r := range decodeResults(t, rbuf.Bytes()) {
		if strings.Contains(r.URL, secret) || strings.Contains(r.Error, secret) {
			t.Fatalf("attack result shows the password: %q %q", r.URL, r.Error)
		}
	}

	node := newTestNode(t, "Node1")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, h, rs := run(t, ctx, UploadOptions{URL: withUser(node.URL()), Size: 1000, Count: 1})
	b, _ := json.Marshal(h)
	checkNoSecret(t, "upload history", b, secret)
	for _, r := range rs {
		if strings.Contains(r.URL, secret) || strings.Contains(r.Error, secret) {
			t.Fatalf("upload result shows the password: %q %q", r.URL, r.Error)
		}
	}
}

func checkNoSecret(t *testing.T, what string, b []byte, secret string) {
	t.Helper()
	if len(b) == 0 {
		t.Fatalf("%s is empty", what)
	}
	if bytes.Contains(b, []byte(secret)) {
		t.Fatalf("%s shows the password:\n%s", what, b)
	}
}
