package checker

import (
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/octoha/octoha/fakes/api"
)

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
		space = api.DefaultSpaceID
	}
	feedDir := space + "/" + api.BuiltInFeedID + "/"

	type fileKey struct{ id, version string }
	byKey := map[fileKey][]int{}
	var temps, other []FileInfo
	sigs := map[string]FileInfo{} // signature caches by lower-case name
	for i, f := range s.Files.Files {
		switch {
		case IsTempFile(f.Name):
			temps = append(temps, f)
		case strings.HasPrefix(f.Name, feedDir) && strings.HasSuffix(f.Name, api.SignatureSuffix):
			sigs[strings.ToLower(f.Name)] = f
		case strings.HasPrefix(f.Name, feedDir):
			pf, err := api.ParseFileName(path.Base(f.Name))
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

	used := map[int]bool{}
	var noFile, wrongSize, cachedSigs int
	for _, row := range s.Rows {
		key := PackageKey{row.PackageId, row.Version}
		want := api.PackageFile{ID: row.PackageId, Version: row.Version, Extension: row.FileExtension}.StorePath(space)
		cands := byKey[fileKey{strings.ToLower(row.PackageId), row.Version}]
		// Prefer the exact store path, then the same name in any case (a
		// Windows share is case-insensitive), then any extension.
		pick := -1
		for _, i := range cands {
			if s.Files.Files[i].Name == want {
				pick = i
				break
			}
		}
		for _, i := range cands {
			if pick < 0 && strings.EqualFold(s.Files.Files[i].Name, want) {
				pick = i
			}
		}
		if pick < 0 && row.FileExtension == "" && len(cands) > 0 {
			pick = cands[0]
		}
		if pick < 0 {
			noFile++
			ev.problem("package row %s (%d bytes) points to %s, which does not exist", key, row.PackageSizeBytes, want)
			continue
		}
		used[pick] = true
		f := s.Files.Files[pick]
		// The node's Octodiff signature cache of this very file (same
		// SHA-1) belongs with it.
		if sig := strings.ToLower(api.SignatureCachePath(f.Name, row.Hash)); row.Hash != "" {
			if _, ok := sigs[sig]; ok {
				delete(sigs, sig)
				cachedSigs++
			}
		}
		if row.PackageSizeBytes > 0 && f.Size != row.PackageSizeBytes {
			wrongSize++
			ev.problem("package row %s says %d bytes but %s has %d", key, row.PackageSizeBytes, f.Name, f.Size)
		}
	}

	var orphans []FileInfo
	for i, f := range s.Files.Files {
		if !used[i] && !IsTempFile(f.Name) && strings.HasPrefix(f.Name, feedDir) && !strings.HasSuffix(f.Name, api.SignatureSuffix) {
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
	if len(temps) > 0 {
		parts = append(parts, plural(len(temps), "temporary file left", "temporary files left"))
	}
	if noFile > 0 {
		parts = append(parts, plural(noFile, "row without its file", "rows without their files"))
	}
	if wrongSize > 0 {
		parts = append(parts, plural(wrongSize, "row with the wrong file size", "rows with the wrong file size"))
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
