package octopusapi

import (
	"strings"
	"testing"
	"time"
)

func TestTaskLogLinesRoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 26, 15, 4, 5, 123456789, time.FixedZone("X", 3600))
	ev, ok := ParseTaskLogLine(TaskStartedLine("ServerTasks-7", "Node2", at))
	if !ok || ev.Finished || ev.TaskID != "ServerTasks-7" || ev.Node != "Node2" || !ev.At.Equal(at) || ev.At.Location() != time.UTC {
		t.Fatalf("started line parsed as %+v %v", ev, ok)
	}
	ev, ok = ParseTaskLogLine(TaskFinishedLine("ServerTasks-7", "Node2", at, TaskCanceled))
	if !ok || !ev.Finished || ev.State != TaskCanceled || !ev.At.Equal(at) {
		t.Fatalf("finished line parsed as %+v %v", ev, ok)
	}
	for _, bad := range []string{"", "Task ServerTasks-7 started on node Node2", "Task X started on node N at yesterday",
		"Task X finished on node N at 2026-11-26T15:04:05Z", "Sleeping for 100ms"} {
		if _, ok := ParseTaskLogLine(bad); ok {
			t.Errorf("parsed %q", bad)
		}
	}
}

// Two overlapping runs on two nodes, one of them never finished, come out
// as two executions in start order.
func TestParseTaskLog(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	log := strings.Join([]string{
		TaskStartedLine("ServerTasks-1", "Node2", t0.Add(10*time.Millisecond)),
		"some other line",
		TaskFinishedLine("ServerTasks-1", "Node2", t0.Add(time.Second), TaskSuccess),
		TaskStartedLine("ServerTasks-1", "Node1", t0),
	}, "\n")
	ex, err := ParseTaskLog(strings.NewReader(log))
	if err != nil || len(ex) != 2 {
		t.Fatalf("%v %+v", err, ex)
	}
	if ex[0].Node != "Node1" || !ex[0].End.IsZero() || ex[1].Node != "Node2" || ex[1].State != TaskSuccess || !ex[1].End.Equal(t0.Add(time.Second)) {
		t.Fatalf("executions %+v", ex)
	}
	if f := TaskLogFile("ServerTasks-1", "Node1", t0); f != "servertasks-1/01767225600000000000-Node1.log.txt" {
		t.Fatal(f)
	}
	if q := TaskListQuery([]string{TaskQueued, TaskExecuting}, "Node1", nil, 0, 10); q != "/api/tasks?node=Node1&states=Queued%2CExecuting&take=10" {
		t.Fatal(q)
	}
}
