package scenario

import (
	"time"

	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/nemesis"
)

// The node faults under load, each one value run by the standard
// sequence: the runner knows what the load balancer must show after a
// drain, a kill, a pause or a partition, and within what bound.

// DrainUnderLoad: the operator's drain, with an upload in flight.
func DrainUnderLoad() Scenario {
	return Scenario{
		Title:   "Drain under load",
		Claim:   "A drained node stops getting new requests within the health-check bound, finishes the upload it is receiving, and is taken back on undrain.",
		Needs:   []cluster.Capability{cluster.CapDrain},
		Shape:   Shape{Nodes: 3},
		Load:    []Load{{Target: "ping", Rate: 40, MinOps: 20}, {Target: "nodes", Rate: 20}},
		Uploads: &Uploads{Count: 3, Concurrency: 3, Must: "every upload must succeed while a node drains"},
		Faults: []FaultPlan{{Fault: nemesis.KindDrain, Target: "the node receiving an upload", Victim: VictimUploading, HoldUploads: true,
			Expect: []Expectation{inFlightUploadFinished}}},
		Checks:    checks("history", "min-ops:ping", "durability", "no-leftovers", "convergence", "error-window", "upload-path"),
		Certifies: []string{ReqDrainEjects, ReqSamePackages},
		Timeout:   8 * time.Minute,
	}
}

// KillMidUpload: a crash in the middle of uploads.
func KillMidUpload() Scenario {
	return Scenario{
		Title:   "Kill mid-upload",
		Claim:   "Killing a node fails only the uploads it was receiving; their retries succeed on another node, nothing acknowledged is lost and no partial file is left.",
		Needs:   []cluster.Capability{cluster.CapKill},
		Shape:   Shape{Nodes: 3},
		Load:    []Load{{Target: "ping", Rate: 40, MinOps: 20}},
		Uploads: &Uploads{Count: 3, Concurrency: 3, Must: "the client's retries through the load balancer must succeed"},
		Faults: []FaultPlan{{Fault: nemesis.KindKill, Target: "the node receiving an upload", Victim: VictimUploading, HoldUploads: true,
			Expect: []Expectation{retriedElsewhere, noPartialFiles}}},
		Checks:    checks("history", "min-ops:ping", "durability", "no-leftovers", "convergence", "error-window"),
		Certifies: []string{ReqFailover},
		Timeout:   8 * time.Minute,
	}
}

// Pause: a frozen node, neither dead nor alive. It is ejected after
// (fall+1) intervals (each check times out after one) and rejoins once it
// answers again.
func Pause() Scenario {
	return Scenario{
		Title:   "Pause",
		Claim:   "A frozen node is ejected on health-check timeouts and served from again once it resumes.",
		Needs:   []cluster.Capability{cluster.CapPause},
		Shape:   Shape{Nodes: 3},
		Load:    []Load{{Target: "ping", Rate: 60, Timeout: 2 * time.Second, MinOps: 20}},
		Faults:  []FaultPlan{{Fault: nemesis.KindPause, Target: "Node2", Victim: "Node2", Hold: 2 * time.Second}},
		Checks:  checks("history", "min-ops:ping", "convergence", "error-window"),
		Timeout: 3 * time.Minute,
	}
}

// Partition: a node cut off the network (docker networks, or every link of
// the node through Toxiproxy on the local provider), judged as a pause.
func Partition() Scenario {
	return Scenario{
		Title:        "Partition",
		Claim:        "A node cut off the network is ejected and taken back once the network heals.",
		Needs:        []cluster.Capability{cluster.CapPartition},
		Providers:    []string{Local, Docker},
		ProviderNote: "a real cluster's network is not the harness's to cut",
		Shape:        Shape{Nodes: 3, Toxiproxy: true},
		Load:         []Load{{Target: "ping", Rate: 40, Timeout: 2 * time.Second, MinOps: 20}},
		Faults:       []FaultPlan{{Fault: nemesis.KindPartition, Target: "Node2", Victim: "Node2", Hold: 2 * time.Second}},
		Checks:       checks("history", "min-ops:ping", "convergence", "error-window"),
		Timeout:      4 * time.Minute,
	}
}

// KillMidDelta: a crash while a node patches a delta upload into a new
// package on the share.
func KillMidDelta() Scenario {
	return Scenario{
		Title:   "Kill mid-delta",
		Claim:   "Killing the node that is patching a delta upload fails only that attempt; the client's retry is patched on another node, nothing acknowledged is lost and no partial file survives.",
		Needs:   []cluster.Capability{cluster.CapKill},
		Shape:   Shape{Nodes: 3},
		Load:    []Load{{Target: "ping", Rate: 40, MinOps: 20}},
		Uploads: &Uploads{Count: 3, Concurrency: 1, Delta: true, Must: "the client's retries of the delta must succeed"},
		// A node counts a delta as received while it patches it.
		Faults: []FaultPlan{{Fault: nemesis.KindKill, Target: "the node patching a delta", Victim: VictimUploading, Within: 90 * time.Second, HoldUploads: true,
			Expect: []Expectation{deltaRetriedElsewhere, noPartialFiles}}},
		Checks:  checks("history", "min-ops:ping", "durability", "no-leftovers", "convergence", "error-window"),
		Timeout: 6 * time.Minute,
	}
}
