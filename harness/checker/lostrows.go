package checker

import (
	"fmt"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/octoha/octoha/harness/history"
	"github.com/octoha/octoha/octopusapi"
)

// CheckLostRows is the name of the LostRows check.
const CheckLostRows = "lost-rows"

// FindingLostAcks is the figure (and finding) LostRows sets to the number
// of acknowledged uploads whose package row is gone while their file stays
// on the share: what a forced failover of an asynchronous database loses
// (the standby had not received those commits), and what Octopus then
// shows as a package missing from the feed with its file orphaned.
const FindingLostAcks = "lost-acknowledged-uploads"

// LostRows compares every acknowledged upload with the package list and
// the share: an acknowledged version without a row whose file is still on
// the share lost its row (the database went back in time); one without
// either is gone entirely. It names each, their total size, and the window
// in which they were acknowledged relative to the run's faults. It skips
// without a listing of the share.
func LostRows(h *history.History, s *Snapshot) Result {
	r := Result{Name: CheckLostRows}
	if s == nil || s.Files == nil {
		r.Status, r.Summary = Skip, "no listing of the Packages store is available, so a row cannot be told apart from its file"
		return r
	}
	if s.RowsError != "" {
		r.Status, r.Summary = Fail, "the package list could not be read whole: "+s.RowsError
		return r
	}
	space := s.SpaceID
	if space == "" {
		space = octopusapi.DefaultSpaceID
	}
	feedDir := space + "/" + octopusapi.BuiltInFeedID + "/"
	type key struct{ id, version string }
	rows := map[key]bool{}
	for _, row := range s.Rows {
		rows[key{strings.ToLower(row.PackageId), row.Version}] = true
	}
	files := map[key]int64{}
	for _, f := range s.Files.Files {
		if !strings.HasPrefix(f.Name, feedDir) || IsTempFile(f.Name) {
			continue
		}
		pf, err := octopusapi.ParseFileName(path.Base(f.Name))
		if err != nil {
			continue
		}
		files[key{strings.ToLower(pf.ID), pf.Version}] = f.Size
	}

	// The last acknowledgement of each version is the one that counts.
	acked := map[key]history.Op{}
	for _, o := range h.OpsOfKind(history.KindUpload) {
		if o.Outcome != history.OK || o.PackageID == "" || o.Version == "" {
			continue
		}
		k := key{strings.ToLower(o.PackageID), o.Version}
		if prev, ok := acked[k]; !ok || o.End.After(prev.End) {
			acked[k] = o
		}
	}
	if len(acked) == 0 {
		r.Status, r.Summary = Skip, "no acknowledged uploads in this history"
		return r
	}
	clk := newClock(h)
	var ev evidence
	var lost, gone []history.Op
	var lostBytes int64
	for k, o := range acked {
		if rows[k] {
			continue
		}
		if size, ok := files[k]; ok {
			lost = append(lost, o)
			lostBytes += size
		} else {
			gone = append(gone, o)
		}
	}
	sort.Slice(lost, func(i, j int) bool { return lost[i].End.Before(lost[j].End) })
	sort.Slice(gone, func(i, j int) bool { return gone[i].End.Before(gone[j].End) })
	for _, o := range lost {
		ev.problem("%s %s@%s acknowledged at %s by %s: no package row, its file is still on the share", opLabel(o), o.PackageID, o.Version, clk.at(o.End), nodeOrLB(o))
	}
	for _, o := range gone {
		ev.problem("%s %s@%s acknowledged at %s by %s: neither a package row nor a file", opLabel(o), o.PackageID, o.Version, clk.at(o.End), nodeOrLB(o))
	}
	r.Figures = append(r.Figures,
		Figure{Name: "acknowledged", Value: float64(len(acked)), Unit: "packages"},
		Figure{Name: FindingLostAcks, Value: float64(len(lost)), Unit: "packages"},
		Figure{Name: "lost-bytes", Value: float64(lostBytes), Unit: "bytes"},
		Figure{Name: "lost-entirely", Value: float64(len(gone)), Unit: "packages"},
	)
	if len(lost)+len(gone) == 0 {
		r.Status = Pass
		r.Summary = fmt.Sprintf("every one of %s has its package row", plural(len(acked), "acknowledged upload", "acknowledged uploads"))
		r.Evidence = ev.lines()
		return r
	}
	all := append(append([]history.Op{}, lost...), gone...)
	sort.Slice(all, func(i, j int) bool { return all[i].End.Before(all[j].End) })
	first, last := all[0].End, all[len(all)-1].End
	window := last.Sub(first)
	r.Figures = append(r.Figures, Figure{Name: "lost-window", Value: secs(window), Unit: "s"})
	r.Status = Fail
	r.Summary = fmt.Sprintf("%s of %d lost their package rows while their files stay on the share (%.1f MiB); acknowledged between %s and %s (a %s window)%s",
		plural(len(lost), "acknowledged upload", "acknowledged uploads"), len(acked), float64(lostBytes)/(1<<20),
		clk.at(first), clk.at(last), fmtDur(window), faultNote(h, clk, first, last))
	if len(gone) > 0 {
		r.Summary += fmt.Sprintf("; %s lost row and file", plural(len(gone), "more upload", "more uploads"))
	}
	r.Evidence = ev.lines()
	return r
}

// faultNote names the faults around the window: the last one that began
// before its first acknowledgement (e.g. WAL shipping cut) and the first
// one after its last (what took the rows away).
func faultNote(h *history.History, clk clock, first, last time.Time) string {
	name := func(f history.Fault) string {
		if f.Detail != "" {
			return f.Kind + " (" + f.Detail + ")"
		}
		return f.Kind
	}
	var note string
	var before *history.Fault
	for i, f := range h.Faults {
		if f.Start.Before(first) && (before == nil || f.Start.After(before.Start)) {
			before = &h.Faults[i]
		}
	}
	if before != nil {
		note += fmt.Sprintf(", after the %s at %s", name(*before), clk.at(before.Start))
	}
	for _, f := range h.Faults {
		if !f.Start.Before(last) {
			return note + fmt.Sprintf(", before the %s at %s", name(f), clk.at(f.Start))
		}
	}
	return note
}

func nodeOrLB(o history.Op) string {
	if o.Node != "" {
		return o.Node
	}
	return "the load balancer"
}
