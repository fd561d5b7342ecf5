package node

import (
	"encoding/json"
	"math"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"

	octoclient "github.com/OctopusDeploy/go-octopusdeploy/v2/pkg/client"
	"github.com/OctopusDeploy/go-octopusdeploy/v2/pkg/feeds"
	"github.com/OctopusDeploy/go-octopusdeploy/v2/pkg/packages"
	"github.com/OctopusDeploy/go-octopusdeploy/v2/uritemplates"

	"github.com/octoha/octoha/octopusapi"
)

func versionsOf(items []*packages.PackageVersion) []string {
	var out []string
	for _, v := range items {
		out = append(out, v.Version)
	}
	return out
}

// The Octopus CLI's `package versions` path, through go-octopusdeploy:
// find the built-in feed with the feed service (at the space's Feeds
// link), then list a package's versions; plus the feed service's other
// reads.
func TestBuiltInFeedThroughOfficialClient(t *testing.T) {
	a := newTestNode(t, nil)
	for _, name := range []string{"Feed.Pkg.1.0.0.zip", "Feed.Pkg.1.10.0.zip", "Feed.Pkg.1.2.0.zip", "Feed.Pkg.2.0.0-beta.1.zip", "Other.3.0.0.zip"} {
		if resp, body := a.upload(t, "", name, []byte("content of "+name)); resp.StatusCode != http.StatusCreated {
			t.Fatalf("upload %s = %d %s", name, resp.StatusCode, body)
		}
	}
	u, _ := url.Parse(a.srv.URL)
	c, err := octoclient.NewClient(nil, u, testKey, "Spaces-1")
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	// Exactly the CLI's lookup (pkg/cmd/package/versions), deprecated or not.
	//lint:ignore SA1019 the Octopus CLI calls this
	found, err := c.Feeds.Get(feeds.FeedsQuery{FeedType: string(feeds.FeedTypeBuiltIn), Take: 1})
	if err != nil || len(found.Items) != 1 {
		t.Fatalf("Feeds.Get(BuiltIn) = %+v, %v; want the built-in feed", found, err)
	}
	feed := found.Items[0]
	if feed.GetID() != octopusapi.BuiltInFeedID || feed.GetFeedType() != feeds.FeedTypeBuiltIn || feed.GetName() != octopusapi.BuiltInFeedName {
		t.Fatalf("feed = %s %s %q", feed.GetID(), feed.GetFeedType(), feed.GetName())
	}
	page, err := feeds.SearchPackageVersions(c, "Spaces-1", feed.GetID(), "Feed.Pkg", "", math.MaxInt32)
	if err != nil {
		t.Fatalf("SearchPackageVersions: %v", err)
	}
	if got, want := strings.Join(versionsOf(page.Items), " "), "2.0.0-beta.1 1.10.0 1.2.0 1.0.0"; got != want {
		t.Fatalf("versions = %s, want %s (highest first, by SemVer)", got, want)
	}
	if v := page.Items[1]; v.SizeBytes != int64(len("content of Feed.Pkg.1.10.0.zip")) || v.Published.IsZero() || v.FeedID != octopusapi.BuiltInFeedID {
		t.Fatalf("version item = %+v", v)
	}
	page, err = feeds.SearchPackageVersions(c, "Spaces-1", feed.GetID(), "Feed.Pkg", "beta", 5)
	if err != nil || strings.Join(versionsOf(page.Items), " ") != "2.0.0-beta.1" {
		t.Fatalf("versions --filter beta = %v, %v", versionsOf(page.Items), err)
	}
	page, err = feeds.SearchPackageVersions(c, "Spaces-1", feed.GetID(), "Feed.Pkg", "", 2)
	if err != nil || len(page.Items) != 2 || page.TotalResults != 4 {
		t.Fatalf("versions --limit 2 = %v (total %d), %v", versionsOf(page.Items), page.TotalResults, err)
	}

	// The feed service's own reads, at the links the feed carries.
	byID, err := feeds.GetByID(c, "Spaces-1", octopusapi.BuiltInFeedID)
	if err != nil || byID.GetID() != octopusapi.BuiltInFeedID {
		t.Fatalf("GetByID = %v, %v", byID, err)
	}
	byQuery, err := feeds.Get(c, "Spaces-1", feeds.FeedsQuery{IDs: []string{"Feeds-9", octopusapi.BuiltInFeedID}, PartialName: "built-in"})
	if err != nil || len(byQuery.Items) != 1 {
		t.Fatalf("feeds.Get(ids, partialName) = %+v, %v", byQuery, err)
	}
	all, err := c.Feeds.GetAll()
	if err != nil || len(all) != 1 {
		t.Fatalf("GetAll = %v, %v", all, err)
	}
	none, err := feeds.Get(c, "Spaces-1", feeds.FeedsQuery{FeedType: string(feeds.FeedTypeDocker)})
	if err != nil || len(none.Items) != 0 {
		t.Fatalf("Feeds.Get(Docker) = %+v, %v; want none", none, err)
	}
	vr, err := c.Feeds.SearchFeedPackageVersions(feed, feeds.SearchPackageVersionsQuery{PackageID: "Feed.Pkg", VersionRange: "[1.1,2.0)"})
	// SemVer: 2.0.0-beta.1 comes before 2.0, so the range holds it.
	if err != nil || strings.Join(versionsOf(vr.Items), " ") != "2.0.0-beta.1 1.10.0 1.2.0" {
		t.Fatalf("versionRange [1.1,2.0) = %v, %v", versionsOf(vr.Items), err)
	}
	descs, err := c.Feeds.SearchPackages(feed, feeds.SearchPackagesQuery{Term: "pkg"})
	if err != nil || len(descs.Items) != 1 || descs.Items[0].Name != "Feed.Pkg" || descs.Items[0].LatestVersion != "2.0.0-beta.1" {
		t.Fatalf("SearchPackages(pkg) = %+v, %v", descs, err)
	}
	// A package description's own version link, as the client follows it.
	vs, err := c.Feeds.SearchPackageVersions(descs.Items[0], feeds.SearchPackageVersionsQuery{IncludePreRelease: false, Take: 1})
	if err != nil || len(vs.Items) != 1 {
		t.Fatalf("SearchPackageVersions(description) = %v, %v", vs, err)
	}

	// The packages list's latest=true: one row per package ID.
	resp, body := a.do(t, http.MethodGet, "/api/Spaces-1/packages?latest=true", nil, nil)
	var latest octopusapi.Page[octopusapi.Package]
	if resp.StatusCode != 200 || json.Unmarshal(body, &latest) != nil || latest.TotalResults != 2 ||
		latest.Items[0].PackageId != "Feed.Pkg" || latest.Items[0].Version != "2.0.0-beta.1" || latest.Items[1].Version != "3.0.0" {
		t.Fatalf("packages?latest=true = %d %s", resp.StatusCode, body)
	}
	// Its next page is the next page of the same query.
	resp, body = a.do(t, http.MethodGet, "/api/Spaces-1/packages?latest=true&take=1", nil, nil)
	if resp.StatusCode != 200 || json.Unmarshal(body, &latest) != nil || len(latest.Items) != 1 || latest.Links["Page.Next"] == "" {
		t.Fatalf("packages?latest=true&take=1 = %d %s", resp.StatusCode, body)
	}
	resp, body = a.do(t, http.MethodGet, latest.Links["Page.Next"], nil, nil)
	if resp.StatusCode != 200 || json.Unmarshal(body, &latest) != nil || len(latest.Items) != 1 || latest.Items[0].Version != "3.0.0" {
		t.Fatalf("next page %s = %d %s", latest.Links["Page.Next"], resp.StatusCode, body)
	}
}

func TestVersionRange(t *testing.T) {
	cases := []struct {
		r    string
		in   []string
		out  []string
		fail bool
	}{
		{r: "1.0", in: []string{"1.0.0", "2.0"}, out: []string{"0.9", "1.0.0-beta"}},
		{r: "[1.0]", in: []string{"1.0", "1.0.0"}, out: []string{"1.0.1"}},
		{r: "(1.0,2.0]", in: []string{"1.5", "2.0.0"}, out: []string{"1.0", "2.0.1"}},
		{r: "[1.0,)", in: []string{"1.0", "99"}, out: []string{"0.1"}},
		{r: "(,2.0)", in: []string{"1.9.9"}, out: []string{"2.0"}},
		{r: "[1.0", fail: true},
		{r: "(1.0)", fail: true},
		{r: "[x,2]", fail: true},
	}
	for _, c := range cases {
		m, err := parseVersionRange(c.r)
		if c.fail != (err != nil) {
			t.Fatalf("%q: err = %v", c.r, err)
		}
		for _, v := range c.in {
			if !m(v) {
				t.Errorf("%q should contain %s", c.r, v)
			}
		}
		for _, v := range c.out {
			if m(v) {
				t.Errorf("%q should not contain %s", c.r, v)
			}
		}
	}
}

// Every link the node hands out, from the root and the space home down
// through every document they lead to, resolves: GET answers 2xx, or 405
// for an endpoint that takes only POST (so the route exists). Templates
// are expanded with the variables a client would fill in.
func TestEveryLinkResolves(t *testing.T) {
	a := newTestNode(t, nil)
	for _, name := range []string{"Walk.Pkg.1.0.0.zip", "Walk.Pkg.2.0.0.zip"} {
		if resp, body := a.upload(t, "", name, []byte("walk "+name)); resp.StatusCode != http.StatusCreated {
			t.Fatalf("upload %s = %d %s", name, resp.StatusCode, body)
		}
	}
	vars := map[string]any{
		"spaceId": "Spaces-1", "packageId": "Walk.Pkg", "version": "3.0.0", "baseVersion": "2.0.0",
	}
	postOnly := map[string]bool{"PackageUpload": true, "PackageDeltaUpload": true}
	type link struct{ from, rel, href string }
	queue := []link{{"start", "Root", "/api"}, {"start", "SpaceHome", "/api/Spaces-1"}}
	seen := map[string]bool{}
	walked := 0
	for len(queue) > 0 && walked < 300 {
		l := queue[0]
		queue = queue[1:]
		tpl, err := uritemplates.Parse(l.href)
		if err != nil {
			t.Errorf("%s link %s = %q is not a URI template: %v", l.from, l.rel, l.href, err)
			continue
		}
		p, err := tpl.Expand(vars)
		if err != nil {
			t.Errorf("%s link %s = %q: %v", l.from, l.rel, l.href, err)
			continue
		}
		if seen[p] {
			continue
		}
		seen[p] = true
		walked++
		resp, body := a.do(t, http.MethodGet, p, nil, nil)
		switch {
		case resp.StatusCode == http.StatusMethodNotAllowed && postOnly[l.rel]:
			continue
		case resp.StatusCode/100 != 2:
			t.Errorf("%s link %s = %q → GET %s = %d %s", l.from, l.rel, l.href, p, resp.StatusCode, body)
			continue
		}
		var doc any
		if json.Unmarshal(body, &doc) != nil {
			continue
		}
		var found []link
		var collect func(v any)
		collect = func(v any) {
			switch x := v.(type) {
			case map[string]any:
				if ls, ok := x["Links"].(map[string]any); ok {
					for rel, h := range ls {
						if s, ok := h.(string); ok && s != "" {
							found = append(found, link{p, rel, s})
						}
					}
				}
				for k, c := range x {
					if k != "Links" {
						collect(c)
					}
				}
			case []any:
				for _, c := range x {
					collect(c)
				}
			}
		}
		collect(doc)
		sort.Slice(found, func(i, j int) bool { return found[i].href < found[j].href })
		queue = append(queue, found...)
	}
	for _, must := range []string{"/api/Spaces-1/feeds", "/api/Spaces-1/feeds/feeds-builtin", "/api/Spaces-1/packages/Walk.Pkg/3.0.0/delta-signature"} {
		if !seen[must] {
			t.Errorf("the walk never reached %s (walked %d links)", must, walked)
		}
	}
	t.Logf("walked %d links", walked)
}
