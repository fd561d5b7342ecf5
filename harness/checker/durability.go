package checker

import (
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/octoha/octoha/harness/history"
	"github.com/octoha/octoha/octopusapi"
)

// Durability checks that no acknowledged upload was lost or corrupted: every
// package version an upload op acknowledged (Outcome ok) is present
// afterwards with the right size and SHA-1, in metadata and (where
// downloaded) in its bytes, through the load balancer and through every live
// node, and every view serves the same content. A version only ever uploaded
// with an unknown outcome may be absent everywhere, but if any endpoint
// serves it, it must be complete, correct and served everywhere.
//
// Which content is right when a version was uploaded more than once (e.g.
// with OverwriteExisting) follows real-time order: an acknowledged upload A
// is superseded when another acknowledged upload of the same version
// started after A ended, so the accepted final contents are those of the
// acknowledged uploads no other acknowledged upload followed (several if
// they overlapped), plus those of every unknown-outcome upload, which may
// have taken effect at any time after it started (Jepsen's "info" ops, whose
// return is +∞). An acknowledgement with 200 under overwriteMode
// IgnoreIfExists says the version exists without saying with which content:
// it requires presence but adds no accepted content; if nothing else in the
// history gives content, any consistent content is accepted.
func Durability(h *history.History, s *Snapshot) Result {
	r := Result{Name: "durability"}
	var ev evidence
	clk := newClock(h)

	pkgs, keys, unverifiable := uploadsByPackage(h, clk, &ev)
	if len(keys) == 0 && unverifiable == 0 {
		r.Status, r.Summary = Skip, "no acknowledged or unknown-outcome uploads in this history"
		return r
	}
	if s == nil {
		r.Status = Fail
		r.Summary = fmt.Sprintf("no snapshot to verify %s against", plural(len(keys), "uploaded package", "uploaded packages"))
		r.Evidence = ev.lines()
		return r
	}

	vias := append([]string{ViaLB}, s.LiveNodes()...)
	states := map[PackageKey]*PackageState{}
	for i := range s.Packages {
		states[s.Packages[i].PackageKey] = &s.Packages[i]
	}
	n := durabilityTally{unverifiable: unverifiable, packages: len(keys)}
	for _, k := range keys {
		p := pkgs[k]
		v := p.judge(states[k], vias, clk)
		for _, line := range v.problems {
			ev.problem("%s", line)
		}
		for _, line := range v.notes {
			ev.note("%s", line)
		}
		n.add(p, v)
	}
	n.report(&r, &ev, s, vias)
	r.Evidence = ev.lines()
	return r
}

// uploadsByPackage groups a history's uploads by package version and
// returns the versions to verify (acknowledged, or of unknown outcome), in
// order, and how many acknowledged uploads name no version at all.
func uploadsByPackage(h *history.History, clk clock, ev *evidence) (map[PackageKey]*pkgUploads, []PackageKey, int) {
	pkgs := map[PackageKey]*pkgUploads{}
	unverifiable := 0
	for _, o := range h.Ops {
		if o.Kind != history.KindUpload {
			continue
		}
		if o.PackageID == "" || o.Version == "" {
			if o.Outcome == history.OK {
				unverifiable++
				ev.problem("%s acknowledged at %s (%s) but the history has no package id/version: cannot verify it", opLabel(o), clk.at(o.End), opResult(o))
			}
			continue
		}
		k := PackageKey{o.PackageID, o.Version}
		p := pkgs[k]
		if p == nil {
			p = &pkgUploads{key: k}
			pkgs[k] = p
		}
		switch {
		case o.Outcome == history.OK && o.Status == http.StatusOK && overwriteMode(o) == octopusapi.IgnoreIfExists:
			p.ignored = append(p.ignored, o)
		case o.Outcome == history.OK:
			p.writes = append(p.writes, o)
		case o.Outcome == history.Unknown:
			p.unknown = append(p.unknown, o)
		default:
			p.failed = append(p.failed, o)
		}
	}
	keys := make([]PackageKey, 0, len(pkgs))
	for k, p := range pkgs {
		if p.acked() || len(p.unknown) > 0 {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool { return keyLess(keys[i], keys[j]) })
	return pkgs, keys, unverifiable
}

// durabilityTally counts the verdicts on each package version.
type durabilityTally struct {
	packages, unverifiable                                                                 int
	acked, verified, missing, corrupt, unreadable, unknownPresent, unknownAbsent, metaOnly int
	deltaBuilt, deltaVerified                                                              int
	deltaBytes, deltaFull                                                                  int64
}

func (n *durabilityTally) add(p *pkgUploads, v pkgJudgement) {
	if p.acked() {
		n.acked++
	}
	// A package the server patched from a delta is judged like any other:
	// its file must have the SHA-1 of the full package the client had (the
	// op's Hash), not the delta's.
	delta := false
	for _, o := range p.writes {
		if o.DeltaBytes > 0 {
			delta = true
			n.deltaBytes += o.DeltaBytes
			n.deltaFull += o.Size
		}
	}
	if delta {
		n.deltaBuilt++
	}
	n.metaOnly += v.metaOnly
	switch {
	case v.verdict == verdictCorrupt:
		n.corrupt++
	case v.verdict == verdictMissing:
		n.missing++
	case v.verdict == verdictUnreadable:
		n.unreadable++
	case p.acked():
		n.verified++
		if delta {
			n.deltaVerified++
		}
	case v.verdict == verdictAbsent:
		n.unknownAbsent++
	default:
		n.unknownPresent++
	}
}

// report writes the tally's figures, verdict and summary into r.
func (n *durabilityTally) report(r *Result, ev *evidence, s *Snapshot, vias []string) {
	r.Figures = []Figure{
		{"acknowledged", float64(n.acked), "packages"},
		{"verified", float64(n.verified), "packages"},
		{"missing", float64(n.missing), "packages"},
		{"corrupt", float64(n.corrupt), "packages"},
		{"unreadable", float64(n.unreadable), "packages"},
		{"unknown-present", float64(n.unknownPresent), "packages"},
		{"unknown-absent", float64(n.unknownAbsent), "packages"},
		{"unverifiable-ops", float64(n.unverifiable), "ops"},
		{"endpoints", float64(len(vias)), "count"},
		{"node-metadata-only", float64(n.metaOnly), "views"},
		{"bytes-read", float64(s.BytesRead), "bytes"},
		{"delta-built", float64(n.deltaBuilt), "packages"},
	}
	if n.deltaBuilt > 0 {
		ev.note("%s built on the server from deltas (%d delta bytes for %d package bytes); %d verified against the full packages' SHA-1",
			plural(n.deltaBuilt, "acknowledged package was", "acknowledged packages were"), n.deltaBytes, n.deltaFull, n.deltaVerified)
	}
	where := "the load balancer"
	if len(vias) > 1 {
		where += " and " + plural(len(vias)-1, "live node", "live nodes")
	}
	// Nodes known to be down (faulted and not recovered) are not read: a
	// package absent from them is "not readable on a down node", never
	// "lost"; lost means absent everywhere it can be read.
	var down []string
	for _, e := range s.Nodes {
		if !e.Live {
			down = append(down, e.Name)
		}
	}
	if len(down) > 0 {
		word := "node"
		if len(down) > 1 {
			word = "nodes"
		}
		where += " (not read on down " + word + " " + strings.Join(down, ", ") + ")"
		r.Figures = append(r.Figures, Figure{"down-nodes", float64(len(down)), "count"})
	}
	unknown := n.packages - n.acked
	switch {
	case n.missing+n.corrupt+n.unreadable+n.unverifiable == 0:
		r.Status = Pass
		r.Summary = fmt.Sprintf("%d of %d acknowledged packages present and intact via %s; unknown-outcome packages: %d present and intact, %d absent",
			n.verified, n.acked, where, n.unknownPresent, n.unknownAbsent)
	case n.missing+n.corrupt+n.unverifiable == 0:
		// Nothing is known lost or damaged: some view could not be read
		// (a node that is not known to be down did not answer).
		r.Status = Fail
		r.Summary = fmt.Sprintf("uploads not verifiable via %s: %d unreadable, none lost or damaged where readable (of %d acknowledged, %d unknown-outcome packages)",
			where, n.unreadable, n.acked, unknown)
	default:
		r.Status = Fail
		var parts []string
		for _, p := range []struct {
			n    int
			what string
		}{{n.missing, "missing"}, {n.corrupt, "corrupt"}, {n.unreadable, "unreadable"}, {n.unverifiable, "unverifiable ops"}} {
			if p.n > 0 {
				parts = append(parts, fmt.Sprintf("%d %s", p.n, p.what))
			}
		}
		r.Summary = fmt.Sprintf("uploads lost or damaged via %s: %s (of %d acknowledged, %d unknown-outcome packages)",
			where, strings.Join(parts, ", "), n.acked, unknown)
	}
	if n.metaOnly > 0 {
		ev.note("%s checked through nodes by metadata only (larger than the deep limit); bytes were hashed through the load balancer", plural(n.metaOnly, "view was", "views were"))
	}
}

// pkgUploads is the upload history of one package version.
type pkgUploads struct {
	key     PackageKey
	writes  []history.Op // acknowledged, establishing content
	ignored []history.Op // acknowledged as "already exists" (IgnoreIfExists, 200)
	unknown []history.Op
	failed  []history.Op // definitely not applied; for evidence only
}

func (p *pkgUploads) acked() bool { return len(p.writes)+len(p.ignored) > 0 }

// accepted returns the uploads whose content may be the final one (see
// Durability), and whether any content is acceptable.
func (p *pkgUploads) accepted() (ops []history.Op, any bool) {
	for _, a := range p.writes {
		superseded := false
		for _, b := range p.writes {
			if b.Start.After(a.End) {
				superseded = true
				break
			}
		}
		if !superseded {
			ops = append(ops, a)
		}
	}
	ops = append(ops, p.unknown...)
	return ops, len(ops) == 0
}

type verdict int

const (
	verdictOK verdict = iota
	verdictAbsent
	verdictUnreadable
	verdictMissing
	verdictCorrupt
)

type pkgJudgement struct {
	verdict  verdict
	problems []string
	notes    []string
	metaOnly int
}

func contentMatches(o history.Op, hash string, size int64) bool {
	return (o.Hash == "" || strings.EqualFold(o.Hash, hash)) && (o.Size <= 0 || o.Size == size)
}

func describeContent(hash string, size int64) string {
	if len(hash) > 12 {
		hash = hash[:12] + "…"
	}
	if hash == "" {
		hash = "?"
	}
	return fmt.Sprintf("sha1 %s %d bytes", hash, size)
}

// judge compares what every endpoint serves with the upload history.
func (p *pkgUploads) judge(st *PackageState, vias []string, clk clock) pkgJudgement {
	var j pkgJudgement
	why := p.describeOps(clk)
	contents, absent, unreadable := p.read(st, vias, why, &j)
	if len(unreadable) > 0 {
		j.worse(verdictUnreadable)
		j.problems = append(j.problems, fmt.Sprintf("%s unreadable via %s (%s)", p.key, strings.Join(unreadable, ", "), why))
	}
	if len(contents) == 0 {
		if p.acked() {
			if len(absent) > 0 {
				j.worse(verdictMissing)
				j.problems = append(j.problems, fmt.Sprintf("%s LOST: absent via %s (%s)", p.key, strings.Join(absent, ", "), why))
			}
		} else if len(unreadable) == 0 {
			j.worse(verdictAbsent)
			j.notes = append(j.notes, fmt.Sprintf("%s absent everywhere, allowed: %s", p.key, why))
		}
		return j
	}
	// Present somewhere: it must be present everywhere, with one accepted
	// content.
	if len(absent) > 0 {
		j.worse(verdictMissing)
		what := "LOST"
		if !p.acked() {
			what = "partly visible"
		}
		j.problems = append(j.problems, fmt.Sprintf("%s %s: absent via %s but present via %s (%s)",
			p.key, what, strings.Join(absent, ", "), strings.Join(contents[0].vias, ", "), why))
	}
	if len(contents) > 1 {
		j.worse(verdictCorrupt)
		var parts []string
		for _, c := range contents {
			parts = append(parts, fmt.Sprintf("%s via %s", describeContent(c.hash, c.size), strings.Join(c.vias, ", ")))
		}
		j.problems = append(j.problems, fmt.Sprintf("%s served with different contents: %s (%s)", p.key, strings.Join(parts, "; "), why))
	}
	accepted, anyContent := p.accepted()
	if anyContent {
		j.notes = append(j.notes, fmt.Sprintf("%s present; only acknowledged as already existing, so any content is accepted (%s)", p.key, why))
		return j
	}
	for _, c := range contents {
		p.acceptContent(c, accepted, &j)
	}
	if j.verdict == verdictOK && !p.acked() {
		j.notes = append(j.notes, fmt.Sprintf("%s present and intact although its upload's outcome was unknown (%s)", p.key, why))
	}
	return j
}

func (j *pkgJudgement) worse(v verdict) {
	if v > j.verdict {
		j.verdict = v
	}
}

// content is one content a package was served with, and through what.
type content struct {
	hash string
	size int64
	vias []string
}

// read sorts a package's views through vias into the contents served, the
// vias it is absent from and those that could not be read; a view whose
// bytes contradict its metadata, or that names another package, is a
// problem in j.
func (p *pkgUploads) read(st *PackageState, vias []string, why string, j *pkgJudgement) (contents []*content, absent, unreadable []string) {
	byVia := map[string]View{}
	if st != nil {
		for _, v := range st.Views {
			byVia[v.Via] = v
		}
	}
	for _, via := range vias {
		v, ok := byVia[via]
		if !ok {
			unreadable = append(unreadable, via+" (not collected)")
			continue
		}
		if v.Error != "" {
			unreadable = append(unreadable, via+" ("+v.Error+")")
			continue
		}
		if !v.Present {
			absent = append(absent, via)
			continue
		}
		hash, size := v.Hash, v.Size
		if v.Downloaded {
			if !strings.EqualFold(v.BodyHash, v.Hash) || v.BodySize != v.Size {
				j.worse(verdictCorrupt)
				j.problems = append(j.problems, fmt.Sprintf("%s via %s: metadata says %s but the bytes%s are %s (%s)",
					p.key, via, describeContent(v.Hash, v.Size), servedBy(v.BodyNode), describeContent(v.BodyHash, v.BodySize), why))
			}
			hash, size = v.BodyHash, v.BodySize
		} else if via != ViaLB {
			j.metaOnly++
		}
		if (v.PackageID != "" && !strings.EqualFold(v.PackageID, p.key.PackageID)) || (v.Version != "" && v.Version != p.key.Version) {
			j.worse(verdictCorrupt)
			j.problems = append(j.problems, fmt.Sprintf("%s via %s: metadata names %s@%s", p.key, via, v.PackageID, v.Version))
		}
		label := via + servedBy(firstNonEmpty(v.BodyNode, v.MetaNode))
		found := false
		for _, c := range contents {
			if strings.EqualFold(c.hash, hash) && c.size == size {
				c.vias = append(c.vias, label)
				found = true
				break
			}
		}
		if !found {
			contents = append(contents, &content{hash, size, []string{label}})
		}
	}
	return contents, absent, unreadable
}

// acceptContent fails j when c is no accepted upload's content, naming the
// upload whose content it is, if any.
func (p *pkgUploads) acceptContent(c *content, accepted []history.Op, j *pkgJudgement) {
	for _, a := range accepted {
		if contentMatches(a, c.hash, c.size) {
			return
		}
	}
	j.worse(verdictCorrupt)
	var want []string
	for _, a := range accepted {
		want = append(want, fmt.Sprintf("%s of op #%d", describeContent(a.Hash, a.Size), a.Seq))
	}
	line := fmt.Sprintf("%s CORRUPT via %s: serves %s, expected %s", p.key, strings.Join(c.vias, ", "),
		describeContent(c.hash, c.size), strings.Join(want, " or "))
	if o, found := p.whoseContent(c.hash, c.size); found {
		line += fmt.Sprintf("; that is the content of op #%d (%s)", o.Seq, p.role(o))
	}
	j.problems = append(j.problems, line)
}

// describeOps summarises a package's uploads for evidence.
func (p *pkgUploads) describeOps(clk clock) string {
	var parts []string
	add := func(label string, ops []history.Op) {
		for _, o := range ops {
			parts = append(parts, fmt.Sprintf("%s by op #%d at %s (%s)", label, o.Seq, clk.at(o.End), opResult(o)))
		}
	}
	add("acknowledged", p.writes)
	add("acknowledged as existing", p.ignored)
	add("unknown", p.unknown)
	if len(parts) > 3 {
		parts = append(parts[:3], fmt.Sprintf("%d more uploads", len(parts)-3))
	}
	return strings.Join(parts, "; ")
}

// whoseContent finds a non-accepted upload of this version with the given
// content, to say whose bytes a wrong copy holds.
func (p *pkgUploads) whoseContent(hash string, size int64) (history.Op, bool) {
	for _, group := range [][]history.Op{p.writes, p.failed, p.unknown} {
		for _, o := range group {
			if o.Hash != "" && contentMatches(o, hash, size) {
				return o, true
			}
		}
	}
	return history.Op{}, false
}

func (p *pkgUploads) role(o history.Op) string {
	switch o.Outcome {
	case history.OK:
		return "acknowledged but superseded by a later acknowledged upload"
	case history.Failed:
		return "FAILED, so it must not have taken effect"
	default:
		return string(o.Outcome)
	}
}

func servedBy(node string) string {
	if node == "" {
		return ""
	}
	return "[" + node + "]"
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}
