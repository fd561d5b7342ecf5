package traffic

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/octoha/octoha/harness/history"
	"github.com/octoha/octoha/octopusapi"
)

// Each session's probes are recorded with the session as Client, the
// answering node and the permission cache's note; 403 is an answer (ok),
// a 500 is not; the key is sent and never recorded.
func TestPushSessionsRecordAnswers(t *testing.T) {
	const key = "API-SESSIONKEY00000000000000000000"
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(octopusapi.HeaderAPIKey) != key || !strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data") || r.URL.Query().Get("overwriteMode") != octopusapi.IgnoreIfExists {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set(octopusapi.HeaderNode, "Node1")
		w.Header().Set(octopusapi.HeaderPermissionCache, "miss")
		switch c := n.Add(1); {
		case c <= 4:
			w.WriteHeader(http.StatusCreated)
		case c == 5:
			w.WriteHeader(http.StatusInternalServerError)
		default:
			w.WriteHeader(http.StatusForbidden)
		}
	}))
	defer srv.Close()
	var hbuf bytes.Buffer
	rec := history.NewRecorder(&hbuf)
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		// Poll for 12 answers, bounded: a hang fails the count below.
		for deadline := time.Now().Add(10 * time.Second); n.Load() < 12 && time.Now().Before(deadline); {
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
	}()
	total, err := PushSessions(ctx, SessionOptions{URL: srv.URL, APIKey: key, Sessions: 2, Interval: 10 * time.Millisecond, Cookies: true, Recorder: rec})
	if err != nil {
		t.Fatal(err)
	}
	rec.Close()
	if strings.Contains(hbuf.String(), key) {
		t.Fatal("the history holds the API key")
	}
	h, err := history.Decode(&hbuf)
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Ops) != total || total < 12 {
		t.Fatalf("%d ops recorded, %d probes counted", len(h.Ops), total)
	}
	clients := map[string]int{}
	var ok, failed int
	for _, op := range h.Ops {
		clients[op.Client]++
		if op.Kind != KindPushProbe || op.Node != "Node1" || op.Note != "miss" {
			t.Fatalf("op %+v", op)
		}
		switch {
		case op.Outcome == history.OK && (Allowed(op.Status) || op.Status == http.StatusForbidden):
			ok++
		case op.Outcome == history.Failed && op.Status == http.StatusInternalServerError:
			failed++
		default:
			t.Fatalf("status %d recorded as %s", op.Status, op.Outcome)
		}
	}
	if len(clients) != 2 || clients["session-1"] == 0 || clients["session-2"] == 0 || failed != 1 {
		t.Fatalf("clients %v, %d ok, %d failed", clients, ok, failed)
	}
	if _, err := PushSessions(t.Context(), SessionOptions{URL: srv.URL}); err == nil {
		t.Fatal("no error without a key and a recorder")
	}
}
