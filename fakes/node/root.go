package node

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/octoha/octoha/fakes/store"
	"github.com/octoha/octoha/octopusapi"
)

// installationID is fixed: every node of a cluster is one installation.
const installationID = "0c7a5e2e-0c7a-4a5e-9c7a-0c7a5e2e0c7a"

func (n *Node) root(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, octopusapi.Root{
		Application:    "Octopus Deploy",
		Version:        n.cfg.Version,
		ApiVersion:     "3.0.0",
		InstallationId: installationID,
		Links: octopusapi.Links{
			"Self":                        "/api",
			"Spaces":                      "/api/spaces{/id}{?skip,ids,take,partialName}",
			"SpaceHome":                   "/api/{spaceId}",
			"CurrentUser":                 "/api/users/me",
			"Tasks":                       "/api/tasks{/id}{?skip,active,environment,tenant,runbook,project,name,node,running,states,hasPendingInterruptions,hasWarningsOrErrors,take,ids,partialName,spaces,includeSystem,description,fromCompletedDate,toCompletedDate,fromQueueDate,toQueueDate,fromStartDate,toStartDate}",
			"OctopusServerNodes":          "/api/octopusservernodes{/id}{?skip,take,ids,partialName}",
			"OctopusServerClusterSummary": "/api/octopusservernodes/summary",
		},
	})
}

func (n *Node) ping(w http.ResponseWriter, r *http.Request) {
	st := n.state.Load()
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(st.status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(st.body)
	}
}

func defaultSpace() octopusapi.Space {
	id := octopusapi.DefaultSpaceID
	return octopusapi.Space{
		Id:                       id,
		Name:                     octopusapi.DefaultSpaceName,
		Slug:                     "default",
		IsDefault:                true,
		SpaceManagersTeams:       []string{},
		SpaceManagersTeamMembers: []string{},
		Links: octopusapi.Links{
			"Self":      "/api/spaces/" + id,
			"SpaceHome": octopusapi.SpacePath(id),
		},
	}
}

func (n *Node) spacesPage(w http.ResponseWriter, r *http.Request) {
	skip, take := paging(r, 30)
	all := []octopusapi.Space{defaultSpace()}
	if pn := r.URL.Query().Get("partialName"); pn != "" && !strings.Contains(strings.ToLower(octopusapi.DefaultSpaceName), strings.ToLower(pn)) {
		all = nil
	}
	writeJSON(w, http.StatusOK, octopusapi.NewPage("Space", window(all, skip, take), len(all), skip, take, octopusapi.SpacesPath))
}

func (n *Node) spaceResource(w http.ResponseWriter, _ *http.Request, space string) {
	if space != octopusapi.DefaultSpaceID {
		writeError(w, http.StatusNotFound, "The space "+space+" does not exist.", nil)
		return
	}
	writeJSON(w, http.StatusOK, defaultSpace())
}

// spaceRoot is the space's home document, whose links the C# client reads.
func (n *Node) spaceRoot(w http.ResponseWriter, _ *http.Request, space string) {
	home := octopusapi.SpacePath(space)
	writeJSON(w, http.StatusOK, map[string]any{
		"Name": octopusapi.DefaultSpaceName,
		"Links": octopusapi.Links{
			"Self":                  home,
			"Packages":              home + "/packages{/id}{?nuGetPackageId,filter,latest,skip,take,includeNotes}",
			"PackageUpload":         home + "/packages/raw{?replace,overwriteMode}",
			"PackageDeltaSignature": home + "/packages/{packageId}/{version}/delta-signature",
			"PackageDeltaUpload":    home + "/packages/{packageId}/{baseVersion}/delta{?replace,overwriteMode}",
			"Tasks":                 home + "/tasks{/id}",
			"Feeds":                 home + "/feeds{/id}{?skip,take,ids,partialName,feedType,name}",
		},
	})
}

// paging reads skip and take for every list endpoint, defaulting take and
// clamping both to [0, store.MaxPage] (take to at least 1): Octopus reads
// them as 32-bit integers, clients ask for everything with int.MaxValue,
// and anything beyond would overflow skip+take (which once panicked).
func paging(r *http.Request, defTake int) (skip, take int) {
	q := r.URL.Query()
	skip = pageParam(q.Get("skip"), 0)
	take = pageParam(q.Get("take"), defTake)
	if take <= 0 {
		take = defTake
	}
	return skip, take
}

// maxListItems bounds a list parameter (ids, states): a query naming
// tens of thousands of IDs would exceed the database's limit on a
// statement's parameters and be answered 503 as if the database were
// down. Clients batch (the harness's task driver asks for 50 at a time).
const maxListItems = 1000

// boundedList reads a list parameter (repeated or comma-separated) and
// answers 400 (and false) when it holds more than maxListItems values.
func boundedList(w http.ResponseWriter, q url.Values, key string) ([]string, bool) {
	list := listParam(q, key)
	if len(list) > maxListItems {
		writeError(w, http.StatusBadRequest, "There was a problem with your request.",
			[]string{fmt.Sprintf("The %s parameter lists %d values; at most %d are accepted in one request. Ask in batches.", key, len(list), maxListItems)})
		return nil, false
	}
	return list, true
}

// pageParam parses one paging parameter: absent or not a number gives def,
// a number out of range is clamped.
func pageParam(s string, def int) int {
	if s == "" {
		return def
	}
	v, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	var ne *strconv.NumError
	switch {
	case err == nil:
	case errors.As(err, &ne) && errors.Is(ne.Err, strconv.ErrRange):
		// ParseInt returned the nearest int64.
	default:
		return def
	}
	return int(min(max(v, 0), store.MaxPage))
}

// window cuts items to [skip, skip+take), without computing skip+take (it
// may not fit an int).
func window[T any](items []T, skip, take int) []T {
	if skip < 0 || skip >= len(items) {
		return nil
	}
	end := len(items)
	if take > 0 && take < end-skip {
		end = skip + take
	}
	return items[skip:end]
}
