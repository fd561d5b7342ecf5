package node

import (
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/octoha/octoha/fakes/store"
	"github.com/octoha/octoha/octopusapi"
)

// The built-in feed: its resource, the feed collection (which holds only
// it), and the package search and version listing that the Octopus CLI's
// `package versions` and go-octopusdeploy's feed service call.

// routeFeeds handles /api/{space}/feeds/...
func (n *Node) routeFeeds(w http.ResponseWriter, r *http.Request, space string, seg []string) {
	if !allow(w, r, http.MethodGet) || !n.may(w, r, octopusapi.PermissionFeedView, space) {
		return
	}
	switch {
	case len(seg) == 0:
		n.feedsPage(w, r, space)
	case len(seg) == 1 && strings.EqualFold(seg[0], "all"):
		writeJSON(w, http.StatusOK, []octopusapi.Feed{builtInFeed(space)})
	case !strings.EqualFold(seg[0], octopusapi.BuiltInFeedID):
		writeError(w, http.StatusNotFound, "The feed "+seg[0]+" does not exist.", nil)
	case len(seg) == 1:
		writeJSON(w, http.StatusOK, builtInFeed(space))
	case len(seg) == 3 && strings.EqualFold(seg[1], "packages") && strings.EqualFold(seg[2], "versions"):
		n.feedVersions(w, r, space)
	case len(seg) == 3 && strings.EqualFold(seg[1], "packages") && strings.EqualFold(seg[2], "search"):
		n.feedSearch(w, r, space)
	default:
		n.notFound(w, r)
	}
}

// versionQuery is the query part of the version search template, shared
// by the feed's link and each package description's.
const versionQuery = "take,skip,includePreRelease,versionRange,preReleaseTag,filter,includeReleaseNotes"

func builtInFeed(space string) octopusapi.Feed {
	self := octopusapi.FeedPath(space, octopusapi.BuiltInFeedID)
	return octopusapi.Feed{
		Id: octopusapi.BuiltInFeedID, Name: octopusapi.BuiltInFeedName, Slug: "octopus-server-built-in",
		FeedType: octopusapi.FeedTypeBuiltIn, SpaceId: space,
		DeleteUnreleasedPackagesAfterDays: 30, DownloadAttempts: 5, DownloadRetryBackoffSeconds: 10,
		PackageAcquisitionLocationOptions: []string{"Server", "ExecutionTarget"},
		Links: octopusapi.Links{
			"Self":                          self,
			"SearchPackagesTemplate":        octopusapi.FeedSearchPath(space, octopusapi.BuiltInFeedID) + "{?term,skip,take}",
			"SearchPackageVersionsTemplate": octopusapi.FeedVersionsPath(space, octopusapi.BuiltInFeedID) + "{?packageId," + versionQuery + "}",
		},
	}
}

// feedsPage lists the space's feeds, filtered as go-octopusdeploy's
// FeedsQuery sends it (feedType, ids, name, partialName, skip, take).
func (n *Node) feedsPage(w http.ResponseWriter, r *http.Request, space string) {
	q := r.URL.Query()
	f := builtInFeed(space)
	keep := true
	if t := q.Get("feedType"); t != "" && !strings.EqualFold(t, f.FeedType) {
		keep = false
	}
	ids, ok := boundedList(w, q, "ids")
	if !ok {
		return
	}
	if len(ids) > 0 && !containsFold(ids, f.Id) {
		keep = false
	}
	if nm := q.Get("name"); nm != "" && !strings.EqualFold(nm, f.Name) {
		keep = false
	}
	if pn := q.Get("partialName"); pn != "" && !strings.Contains(strings.ToLower(f.Name), strings.ToLower(pn)) {
		keep = false
	}
	var all []octopusapi.Feed
	if keep {
		all = append(all, f)
	}
	skip, take := paging(r, 30)
	writeJSON(w, http.StatusOK, octopusapi.NewPage("Feed", window(all, skip, take), len(all), skip, take, octopusapi.FeedsPath(space)))
}

// listParam reads a list parameter sent either repeated or comma-separated.
func listParam(q url.Values, key string) []string {
	var out []string
	for _, v := range q[key] {
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
	}
	return out
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}

// allPackages returns every row matching q (all pages).
func (n *Node) allPackages(r *http.Request, q store.PackageQuery) ([]store.Package, error) {
	q.Skip, q.Take = 0, 0
	rows, _, err := n.cfg.DB.ListPackages(r.Context(), q)
	return rows, err
}

// feedVersions lists one package's versions, highest first, as the
// CLI's `package versions` asks for them.
func (n *Node) feedVersions(w http.ResponseWriter, r *http.Request, space string) {
	q := r.URL.Query()
	pid := q.Get("packageId")
	if pid == "" {
		writeError(w, http.StatusBadRequest, "A packageId is required to list package versions.", nil)
		return
	}
	match := func(string) bool { return true }
	if vr := q.Get("versionRange"); vr != "" {
		m, err := parseVersionRange(vr)
		if err != nil {
			writeError(w, http.StatusBadRequest, "The version range is not valid: "+err.Error(), nil)
			return
		}
		match = m
	}
	// Pre-releases are listed unless the client says otherwise (the CLI
	// sends nothing and expects e.g. --filter beta to find them).
	withPre := true
	if s := q.Get("includePreRelease"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			writeError(w, http.StatusBadRequest, "includePreRelease must be true or false.", nil)
			return
		}
		withPre = b
	}
	filter, tag := strings.ToLower(q.Get("filter")), strings.ToLower(q.Get("preReleaseTag"))
	rows, err := n.allPackages(r, store.PackageQuery{SpaceID: space, PackageID: pid})
	if err != nil {
		n.dbError(w, "listing package versions", err)
		return
	}
	var keep []store.Package
	for _, row := range rows {
		pre := preRelease(row.Version)
		switch {
		case pre != "" && !withPre:
		case tag != "" && !strings.HasPrefix(strings.ToLower(pre), tag):
		case filter != "" && !strings.Contains(strings.ToLower(row.Version), filter):
		case !match(row.Version):
		default:
			keep = append(keep, row)
		}
	}
	sort.Slice(keep, func(i, j int) bool { return store.CompareVersions(keep[i].Version, keep[j].Version) > 0 })
	skip, take := paging(r, 30)
	items := make([]octopusapi.PackageVersion, 0, len(keep))
	for _, row := range window(keep, skip, take) {
		id := octopusapi.PackageResourceID(row.PackageID, row.Version)
		items = append(items, octopusapi.PackageVersion{
			Id: id, PackageId: row.PackageID, FeedId: octopusapi.BuiltInFeedID, Version: row.Version,
			Title: row.PackageID, SizeBytes: row.Size, Published: row.Published.UTC(),
			Links: octopusapi.Links{"Self": octopusapi.PackagePath(space, id)},
		})
	}
	writeJSON(w, http.StatusOK, octopusapi.NewPage("PackageVersion", items, len(keep), skip, take,
		octopusapi.FeedVersionsPath(space, octopusapi.BuiltInFeedID)+"?packageId="+url.QueryEscape(pid)))
}

// feedSearch lists package IDs containing term, each with its latest
// version.
func (n *Node) feedSearch(w http.ResponseWriter, r *http.Request, space string) {
	rows, err := n.allPackages(r, store.PackageQuery{SpaceID: space, Filter: r.URL.Query().Get("term")})
	if err != nil {
		n.dbError(w, "searching packages", err)
		return
	}
	latest := latestByID(rows)
	skip, take := paging(r, 30)
	items := make([]octopusapi.PackageDescription, 0, len(latest))
	for _, row := range window(latest, skip, take) {
		items = append(items, octopusapi.PackageDescription{
			Id: row.PackageID, Name: row.PackageID, LatestVersion: row.Version,
			Links: octopusapi.Links{"SearchPackageVersionsTemplate": octopusapi.FeedVersionsPath(space, octopusapi.BuiltInFeedID) +
				"?packageId=" + url.QueryEscape(row.PackageID) + "{&" + versionQuery + "}"},
		})
	}
	writeJSON(w, http.StatusOK, octopusapi.NewPage("PackageDescription", items, len(latest), skip, take, octopusapi.FeedSearchPath(space, octopusapi.BuiltInFeedID)))
}

// latestByID keeps the highest version of each package ID (compared in any
// case), ordered by package ID.
func latestByID(rows []store.Package) []store.Package {
	best := map[string]store.Package{}
	for _, row := range rows {
		k := strings.ToLower(row.PackageID)
		if b, ok := best[k]; !ok || store.CompareVersions(row.Version, b.Version) > 0 {
			best[k] = row
		}
	}
	out := make([]store.Package, 0, len(best))
	for _, row := range best {
		out = append(out, row)
	}
	sort.Slice(out, func(i, j int) bool { return strings.ToLower(out[i].PackageID) < strings.ToLower(out[j].PackageID) })
	return out
}

// preRelease returns a version's pre-release label ("" for a release).
func preRelease(v string) string {
	v, _, _ = strings.Cut(v, "+")
	_, pre, _ := strings.Cut(v, "-")
	return pre
}

// parseVersionRange parses a NuGet version range: "1.0" (at least 1.0),
// "[1.0]" (exactly), or "[a,b]", "(a,b)", "[a,)", "(,b]" and mixes.
func parseVersionRange(s string) (func(string) bool, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, fmt.Errorf("empty range")
	}
	if s[0] != '[' && s[0] != '(' {
		if !octopusapi.ValidVersion(s) {
			return nil, fmt.Errorf("%q is not a version", s)
		}
		return func(v string) bool { return store.ComparePrecedence(v, s) >= 0 }, nil
	}
	last := s[len(s)-1]
	if len(s) < 3 || (last != ']' && last != ')') {
		return nil, fmt.Errorf("%q: expected [ or ( … ] or )", s)
	}
	minIncl, maxIncl := s[0] == '[', last == ']'
	body := s[1 : len(s)-1]
	lo, hi, hasComma := strings.Cut(body, ",")
	lo, hi = strings.TrimSpace(lo), strings.TrimSpace(hi)
	if !hasComma {
		if !minIncl || !maxIncl || !octopusapi.ValidVersion(lo) {
			return nil, fmt.Errorf("%q: an exact version is written [1.0]", s)
		}
		return func(v string) bool { return store.ComparePrecedence(v, lo) == 0 }, nil
	}
	for _, b := range []string{lo, hi} {
		if b != "" && !octopusapi.ValidVersion(b) {
			return nil, fmt.Errorf("%q: %q is not a version", s, b)
		}
	}
	return func(v string) bool {
		if lo != "" {
			c := store.ComparePrecedence(v, lo)
			if c < 0 || (c == 0 && !minIncl) {
				return false
			}
		}
		if hi != "" {
			c := store.ComparePrecedence(v, hi)
			if c > 0 || (c == 0 && !maxIncl) {
				return false
			}
		}
		return true
	}, nil
}
