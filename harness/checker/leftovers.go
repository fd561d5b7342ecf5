package checker

import (
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/octoha/octoha/octopusapi"
)

// fileKey names a feed file by lower-case package id and version.
type fileKey struct{ id, version string }

// LeftoverOptions tunes NoLeftovers.
type LeftoverOptions struct {
	// StrictOrphans fails on orphans: files in the space's feed directory
	// that no package row points to. Off by default, because a store shared
	// with earlier runs or a real Octopus instance may hold such files
	// legitimately; they are always reported.
	StrictOrphans bool
}

// NoLeftovers checks the Packages store against the package list: no
// temporary or partial file survived (IsTempFile), and every package row
// points to a file that exists with the row's size. Files of the space's
// feed directory that no row points to (orphans) are reported, and fail
// only with StrictOrphans. It skips when the snapshot has no file listing.
func NoLeftovers(s *Snapshot, opts LeftoverOptions) Result {
	r := Result{Name: "no-leftovers"}
	if s == nil || s.Files == nil {
		r.Status, r.Summary = Skip, "no listing of the Packages store is available (e.g. an external cluster), so files cannot be checked"
		return r
	}
	var ev evidence
	space := s.SpaceID
	if space == "" {
		space = octopusapi.DefaultSpaceID
	}
	feedDir := space + "/" + octopusapi.BuiltInFeedID + "/"

	byKey := map[fileKey][]int{}
	var temps, other []FileInfo
	sigs := map[string]FileInfo{} // signature caches by lower-case name
	for i, f := range s.Files.Files {
		switch {
		case IsTempFile(f.Name):
			temps = append(temps, f)
		case strings.HasPrefix(f.Name, feedDir) && strings.HasSuffix(f.Name, octopusapi.SignatureSuffix):
			sigs[strings.ToLower(f.Name)] = f
		case strings.HasPrefix(f.Name, feedDir):
			pf, err := octopusapi.ParseFileName(path.Base(f.Name))
			if err != nil {
				continue // an orphan: no row can point to it
			}
			k := fileKey{strings.ToLower(pf.ID), pf.Version}
			byKey[k] = append(byKey[k], i)
		default:
			other = append(other, f)
		}
	}
	for _, f := range temps {
		ev.problem("temporary file left on the share: %s (%d bytes)", f.Name, f.Size)
	}

	m := matchRows(s, space, byKey, sigs, &ev)
	used, noFile, wrongSize, cachedSigs := m.used, m.noFile, m.wrongSize, m.cachedSigs

	var orphans []FileInfo
	for i, f := range s.Files.Files {
		if !used[i] && !IsTempFile(f.Name) && strings.HasPrefix(f.Name, feedDir) && !strings.HasSuffix(f.Name, octopusapi.SignatureSuffix) {
			orphans = append(orphans, f)
		}
	}
	// A signature cache of no recorded file (its package deleted or
	// replaced, the node gone before tidying) is an orphan too.
	for _, f := range sigs {
		orphans = append(orphans, f)
	}
	sort.Slice(orphans, func(i, j int) bool { return orphans[i].Name < orphans[j].Name })
	for _, f := range orphans {
		if opts.StrictOrphans {
			ev.problem("orphan file (no package row points to it): %s (%d bytes)", f.Name, f.Size)
		} else {
			ev.note("orphan file (no package row points to it): %s (%d bytes)", f.Name, f.Size)
		}
	}
	if len(other) > 0 {
		ev.note("%s outside %s not checked, e.g. %s", plural(len(other), "file", "files"), feedDir, other[0].Name)
	}
	if s.RowsError != "" {
		ev.problem("the package list could not be read completely, so rows were not all checked: %s", s.RowsError)
	}
	if s.Files.Source != "" {
		ev.note("file listing from %s", s.Files.Source)
	}

	r.Figures = []Figure{
		{"files", float64(len(s.Files.Files)), "files"},
		{"rows", float64(len(s.Rows)), "count"},
		{"temp-files", float64(len(temps)), "files"},
		{"rows-without-file", float64(noFile), "count"},
		{"size-mismatches", float64(wrongSize), "count"},
		{"orphans", float64(len(orphans)), "files"},
		{"signature-caches", float64(cachedSigs), "files"},
		{"other-files", float64(len(other)), "files"},
	}
	failed := len(temps) > 0 || noFile > 0 || wrongSize > 0 || s.RowsError != "" || (opts.StrictOrphans && len(orphans) > 0)
	r.Evidence = ev.lines()
	if !failed {
		r.Status = Pass
		r.Summary = fmt.Sprintf("no temporary files; all %s point to files of the right size (%s)",
			plural(len(s.Rows), "package row", "package rows"), plural(len(orphans), "orphan", "orphans"))
		return r
	}
	r.Status = Fail
	var parts []string
	for _, p := range []struct {
		n         int
		one, many string
	}{
		{len(temps), "temporary file left", "temporary files left"},
		{noFile, "row without its file", "rows without their files"},
		{wrongSize, "row with the wrong file size", "rows with the wrong file size"},
	} {
		if p.n > 0 {
			parts = append(parts, plural(p.n, p.one, p.many))
		}
	}
	if opts.StrictOrphans && len(orphans) > 0 {
		parts = append(parts, plural(len(orphans), "orphan file", "orphan files"))
	}
	if s.RowsError != "" {
		parts = append(parts, "package list unreadable")
	}
	r.Summary = "Packages store inconsistent: " + strings.Join(parts, ", ")
	return r
}

// rowMatch is what matching package rows to files found.
type rowMatch struct {
	used                          map[int]bool // files some row points to
	noFile, wrongSize, cachedSigs int
}

// matchRows finds each package row's file among the feed's files (byKey:
// file indexes by lower-case id and version), reporting rows without a file
// or with another size; a row's own signature cache is taken out of sigs.
func matchRows(s *Snapshot, space string, byKey map[fileKey][]int, sigs map[string]FileInfo, ev *evidence) rowMatch {
	m := rowMatch{used: map[int]bool{}}
	for _, row := range s.Rows {
		key := PackageKey{row.PackageId, row.Version}
		want := octopusapi.PackageFile{ID: row.PackageId, Version: row.Version, Extension: row.FileExtension}.StorePath(space)
		pick := pickFile(s.Files.Files, byKey[fileKey{strings.ToLower(row.PackageId), row.Version}], want, row.FileExtension == "")
		if pick < 0 {
			m.noFile++
			ev.problem("package row %s (%d bytes) points to %s, which does not exist", key, row.PackageSizeBytes, want)
			continue
		}
		m.used[pick] = true
		f := s.Files.Files[pick]
		// The node's Octodiff signature cache of this very file (same
		// SHA-1) belongs with it.
		if sig := strings.ToLower(octopusapi.SignatureCachePath(f.Name, row.Hash)); row.Hash != "" {
			if _, ok := sigs[sig]; ok {
				delete(sigs, sig)
				m.cachedSigs++
			}
		}
		if row.PackageSizeBytes > 0 && f.Size != row.PackageSizeBytes {
			m.wrongSize++
			ev.problem("package row %s says %d bytes but %s has %d", key, row.PackageSizeBytes, f.Name, f.Size)
		}
	}
	return m
}

// pickFile chooses a row's file among the candidates: the exact store path,
// then the same name in any case (a Windows share is case-insensitive),
// then, for a row with no extension, any of them; -1 when none fits.
func pickFile(files []FileInfo, cands []int, want string, anyExtension bool) int {
	for _, i := range cands {
		if files[i].Name == want {
			return i
		}
	}
	for _, i := range cands {
		if strings.EqualFold(files[i].Name, want) {
			return i
		}
	}
	if anyExtension && len(cands) > 0 {
		return cands[0]
	}
	return -1
}
