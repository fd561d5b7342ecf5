package loaders

import "testing"

// Swarm renders {{.Task.Slot}} of a replicated job's slot 0 as the task's
// ID: that worker must be index 0, the others their slot.
func TestWorkerIndexFromSwarmSlot(t *testing.T) {
	for _, c := range []struct {
		slot, index string
		want        int
	}{
		{"2", "", 2},
		{"1", "", 1},
		{"ilodltbfvofgxj5w08ikurfz1", "", 0},
		{"", "", -1},
		{"7", "3", 3}, // an explicit index wins
	} {
		t.Setenv(CoordinatorEnv, "http://127.0.0.1:1")
		t.Setenv(TokenEnv, "t")
		t.Setenv(SlotEnv, c.slot)
		t.Setenv(IndexEnv, c.index)
		o, err := WorkerOptionsFromEnv()
		if err != nil {
			t.Fatalf("slot %q index %q: %v", c.slot, c.index, err)
		}
		if o.Index != c.want {
			t.Errorf("slot %q index %q: index %d, want %d", c.slot, c.index, o.Index, c.want)
		}
	}
}
