package checker

import (
	"crypto/sha1"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/octoha/octoha/harness/history"
)

var t0 = time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)

// at is t0 plus s seconds.
func at(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }

func sha(data []byte) string {
	s := sha1.Sum(data)
	return hex.EncodeToString(s[:])
}

// builder hand-builds histories with sequence numbers in call order.
type builder struct{ h history.History }

func (b *builder) add(o history.Op) history.Op {
	o.Seq = uint64(len(b.h.Ops) + 1)
	if o.Kind == "" {
		o.Kind = history.KindPing
	}
	if o.Via == "" {
		o.Via = ViaLB
	}
	b.h.Ops = append(b.h.Ops, o)
	return o
}

func (b *builder) upload(id, ver string, data []byte, start, end float64, outcome history.Outcome, status int) history.Op {
	return b.add(history.Op{Kind: history.KindUpload, Start: at(start), End: at(end), Outcome: outcome, Status: status,
		Node: "Node1", PackageID: id, Version: ver, Hash: sha(data), Size: int64(len(data)),
		URL: "http://127.0.0.10:8080/api/Spaces-1/packages/raw?overwriteMode=OverwriteExisting"})
}

// served adds an ok ping served by node through the LB.
func (b *builder) served(node string, start float64) history.Op {
	return b.add(history.Op{Kind: history.KindPing, Start: at(start), End: at(start + 0.01), Outcome: history.OK, Status: 200, Node: node})
}

func (b *builder) failed(start, end float64, status int) history.Op {
	outcome := history.Failed
	if status == 0 {
		outcome = history.Unknown
	}
	return b.add(history.Op{Kind: history.KindPing, Start: at(start), End: at(end), Outcome: outcome, Status: status, Error: "boom"})
}

func (b *builder) fault(id, kind, target string, start, end float64) {
	f := history.Fault{ID: id, Kind: kind, Target: target, Start: at(start)}
	if end > 0 {
		f.End = at(end)
	}
	b.h.Faults = append(b.h.Faults, f)
}

func (b *builder) lb(server, state string, t float64) {
	b.h.LB = append(b.h.LB, history.LBState{Time: at(t), Server: server, State: state})
}

// intact is a view serving data, downloaded when deep.
func intact(via string, data []byte, deep bool) View {
	v := View{Via: via, Present: true, MetaNode: "Node1", Hash: sha(data), Size: int64(len(data))}
	if deep {
		v.Downloaded, v.BodyHash, v.BodySize, v.BodyNode = true, sha(data), int64(len(data)), "Node1"
	}
	return v
}

func absent(via string) View { return View{Via: via} }

// snap builds a snapshot with live nodes Node1 and Node2 and the given
// package views.
func snap(pkgs ...PackageState) *Snapshot {
	s := &Snapshot{SpaceID: "Spaces-1", Nodes: []Endpoint{{Name: "Node1", Live: true}, {Name: "Node2", Live: true}, {Name: "Node3", Live: false}}}
	s.Packages = pkgs
	sortPackages(s)
	return s
}

func sortPackages(s *Snapshot) {
	for i := range s.Packages {
		for j := i + 1; j < len(s.Packages); j++ {
			if keyLess(s.Packages[j].PackageKey, s.Packages[i].PackageKey) {
				s.Packages[i], s.Packages[j] = s.Packages[j], s.Packages[i]
			}
		}
	}
}

// everywhere is a package served intact by the LB and both live nodes.
func everywhere(id, ver string, data []byte) PackageState {
	return PackageState{PackageKey{id, ver}, []View{intact(ViaLB, data, true), intact("Node1", data, true), intact("Node2", data, false)}}
}

func nowhere(id, ver string) PackageState {
	return PackageState{PackageKey{id, ver}, []View{absent(ViaLB), absent("Node1"), absent("Node2")}}
}

func wantStatus(t *testing.T, r Result, want Status) {
	t.Helper()
	if r.Status != want {
		t.Fatalf("%s: status %s, want %s\nsummary: %s\nevidence:\n  %s\nfigures: %v", r.Name, r.Status, want, r.Summary, strings.Join(r.Evidence, "\n  "), r.Figures)
	}
}

func wantFigure(t *testing.T, r Result, name string, want float64) {
	t.Helper()
	f, ok := r.Figure(name)
	if !ok {
		t.Fatalf("%s: no figure %q in %v", r.Name, name, r.Figures)
	}
	if d := f.Value - want; d > 1e-6 || d < -1e-6 {
		t.Fatalf("%s: figure %s = %v, want %v", r.Name, name, f.Value, want)
	}
}

func wantEvidence(t *testing.T, r Result, substrs ...string) {
	t.Helper()
	all := strings.Join(r.Evidence, "\n")
	for _, s := range substrs {
		if !strings.Contains(all, s) {
			t.Fatalf("%s: evidence lacks %q:\n  %s", r.Name, s, strings.Join(r.Evidence, "\n  "))
		}
	}
}
