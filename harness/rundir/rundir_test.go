package rundir

import (
	"testing"
	"time"
)

func TestReplayCommandKeepsTheUploadSize(t *testing.T) {
	rec := Scenario{Title: "Kill mid-upload", Seed: 42, UploadSize: 256 << 20, Provider: "local"}
	want := "octoha chaos --focus '^Kill mid-upload$' --seed 42 --upload-size 256MiB --provider local"
	if got := rec.ReplayCommand(); got != want {
		t.Errorf("replay of a record without Replay:\n got %s\nwant %s", got, want)
	}
	rec.Replay = Replay(ReplayOptions{Command: "certify", Title: "LB limits — HAProxy (x)", Seed: 7, UploadSize: 1 << 30, ClusterFile: "my cluster.yaml"})
	want = `octoha certify --cluster 'my cluster.yaml' --focus '^LB limits — HAProxy \(x\)$' --seed 7 --upload-size 1GiB`
	if got := rec.ReplayCommand(); got != want {
		t.Errorf("recorded replay:\n got %s\nwant %s", got, want)
	}
	old := Scenario{Labels: []string{"failover", "upload"}, Seed: 9}
	if got, want := old.ReplayCommand(), "make chaos LABELS='failover && upload' OCTOHA_SEED=9"; got != want {
		t.Errorf("record from before the upload size was kept: got %s, want %s", got, want)
	}
}

func TestScenarioRecordRoundTrips(t *testing.T) {
	dir := ScenarioDir(t.TempDir(), "kill-mid-upload")
	in := Scenario{Name: "Kill mid-upload", Slug: "kill-mid-upload", Seed: 3, UploadSize: 5 << 20, State: StatePassed, Start: time.Unix(10, 0).UTC(), End: time.Unix(20, 0).UTC()}
	if err := WriteScenario(dir, in); err != nil {
		t.Fatal(err)
	}
	out, err := ReadScenario(dir)
	if err != nil {
		t.Fatal(err)
	}
	if out.UploadSize != in.UploadSize || out.State != in.State || !out.End.Equal(in.End) {
		t.Errorf("read back %+v, wrote %+v", *out, in)
	}
	if got := SizeArg(1536); got != "1536" {
		t.Errorf("SizeArg(1536) = %s, want 1536 (not a whole KiB)", got)
	}
}
