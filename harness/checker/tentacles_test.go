package checker

import (
	"testing"

	"github.com/octoha/octoha/harness/history"
)

func (b *builder) tentacleTask(id string, queuedAt float64) {
	b.add(history.Op{Kind: kindTentacleTask, ID: id, Client: "T1", Start: at(queuedAt), End: at(queuedAt + 0.01), Outcome: history.OK, Status: 201})
}

func (b *builder) pickup(id string, created, picked float64) {
	b.add(history.Op{Kind: kindTentaclePickup, ID: id, Client: "T1", Node: "Node2", Start: at(created), End: at(picked), Outcome: history.OK, Status: 200})
}

func TestTentaclesPickupsWithinBound(t *testing.T) {
	var b builder
	b.tentacleTask("ServerTasks-1", 0)
	b.pickup("ServerTasks-1", 0.2, 0.9)
	b.tentacleTask("ServerTasks-2", 1)
	b.add(history.Op{Kind: kindTentacleLost, ID: "ServerTasks-2", Node: "Node2", Start: at(5), End: at(5), Outcome: history.OK, Note: "node restarted"})
	r := Tentacles(&b.h, TentacleOptions{Within: 1.5e9})
	wantStatus(t, r, Pass)
	wantFigure(t, r, "pickup-max", 0.7)
	wantFigure(t, r, "lost-with-node", 1)

	b.tentacleTask("ServerTasks-3", 2)
	b.pickup("ServerTasks-3", 2.2, 6)
	b.tentacleTask("ServerTasks-4", 3)
	r = Tentacles(&b.h, TentacleOptions{Within: 1.5e9})
	wantStatus(t, r, Fail)
	wantFigure(t, r, FindingUnpolled.Name, 2)
	wantEvidence(t, r, "ServerTasks-3 for T1 waited 3.800s on Node2", "ServerTasks-4 for T1 was never picked up")
	if !HasFinding(r, FindingUnpolled) {
		t.Fatal("unpolled not named")
	}
	var empty builder
	wantStatus(t, Tentacles(&empty.h, TentacleOptions{Within: 1e9}), Fail)
}
