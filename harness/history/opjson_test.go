package history

import (
	"encoding/json"
	"testing"
	"time"
)

// The hand-written encoder writes exactly what encoding/json writes, for
// every field and the strings that need escaping.
func TestAppendOpEntryMatchesEncodingJSON(t *testing.T) {
	zone := time.FixedZone("X", -(3*3600 + 30*60))
	t0 := time.Date(2026, 12, 4, 15, 4, 5, 123456789, time.UTC)
	ops := []Op{
		{},
		{Seq: 1, Kind: KindPing, Start: t0, End: t0.Add(time.Millisecond), Outcome: OK, Status: 200, Node: "Node1", Via: "lb", URL: "http://127.0.0.1:8080/api/octopusservernodes/ping", ID: "ping-abc123-7", Client: "ping", Command: "attack-1"},
		{Seq: 1 << 60, Kind: KindUpload, Start: t0.In(zone), End: t0.Add(time.Hour).In(zone), Outcome: Unknown, Status: -1, Bytes: -5, Size: 1 << 40,
			PackageID: "P.Q", Version: "1.0.0-beta", Hash: "0123456789abcdef0123456789abcdef01234567", Attempt: 3, BaseVersion: "0.9", DeltaBytes: 12,
			Error: "Post \"http://x/?a=1&b=<2>\": EOF\n\ttab\x01\x1f", Note: "naïve – ünïcödé \u2028 \u2029", Task: "ServerTasks-1"},
		{Kind: "bad\xffutf8", Error: `back\slash "quote"`, Start: time.Time{}, End: t0.Truncate(time.Second)},
		{Kind: KindPing, Tasks: []TaskView{{}}, NodeList: []NodeView{{}}},
	}
	for i := range ops {
		want, err := json.Marshal(entry{Op: &ops[i]})
		if err != nil {
			t.Fatal(err)
		}
		got, err := appendOpEntry([]byte("prefix"), &ops[i])
		if err != nil {
			t.Fatalf("op %d: %v", i, err)
		}
		if string(got) != "prefix"+string(want)+"\n" {
			t.Errorf("op %d:\n got %s\nwant %s", i, got, want)
		}
	}
	// A year encoding/json refuses is refused.
	bad := Op{Start: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}
	if _, err := json.Marshal(entry{Op: &bad}); err == nil {
		t.Fatal("encoding/json accepted year 10000; the test's premise is wrong")
	}
	if _, err := appendOpEntry(nil, &bad); err == nil {
		t.Error("year 10000 encoded")
	}
}
