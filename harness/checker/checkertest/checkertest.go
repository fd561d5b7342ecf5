// Package checkertest serves the read side of the Octopus package API
// (package metadata, raw bytes, the paged package list) from memory, as a
// load balancer in front of named nodes on 127.0.0.1, so that the checker
// and `octoha check` can be tested over real HTTP without a cluster. Nodes
// can be made to serve a corrupt copy or to miss a package.
package checkertest

import (
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/octoha/octoha/octopusapi"
)

// DefaultMaxTake is the largest page the list serves, as Octopus's default.
const DefaultMaxTake = 30

// Options configures a Cluster.
type Options struct {
	// Nodes names the nodes behind the load balancer; default Node1, Node2.
	Nodes []string
	// APIKey, when set, is required in X-Octopus-ApiKey (401 otherwise).
	APIKey string
	// MaxTake caps each list page; zero means DefaultMaxTake.
	MaxTake int
	// NextLinks adds Links["Page.Next"] to list pages that have a next one.
	NextLinks bool
}

// Package is one stored package version.
type Package struct {
	ID, Version, Ext string
	Data             []byte
}

// Hash returns the SHA-1 of the package's bytes, lower-case hex.
func (p Package) Hash() string {
	s := sha1.Sum(p.Data)
	return hex.EncodeToString(s[:])
}

// StorePath returns the package's path under the Packages root.
func (p Package) StorePath(spaceID string) string {
	return octopusapi.PackageFile{ID: p.ID, Version: p.Version, Extension: p.Ext}.StorePath(spaceID)
}

type key struct{ id, version string }

// Cluster is an in-memory cluster: a load balancer (round robin) and nodes,
// each an httptest.Server on 127.0.0.1.
type Cluster struct {
	LB       *httptest.Server
	Nodes    map[string]*httptest.Server
	names    []string
	handlers map[string]http.Handler // as reached through the LB
	opts     Options

	rr      atomic.Uint64
	mu      sync.Mutex
	stopped map[string]bool
	pkgs    map[key]Package
	corrupt map[string]map[key][]byte // node → package → bytes it serves
	hidden  map[string]map[key]bool   // node → package it answers 404 for
	hits    map[string]int            // "node kind" → requests
}

// New starts a cluster; Close stops it.
func New(opts Options) *Cluster {
	if len(opts.Nodes) == 0 {
		opts.Nodes = []string{"Node1", "Node2"}
	}
	if opts.MaxTake <= 0 {
		opts.MaxTake = DefaultMaxTake
	}
	c := &Cluster{
		Nodes:    map[string]*httptest.Server{},
		names:    append([]string{}, opts.Nodes...),
		handlers: map[string]http.Handler{},
		opts:     opts,
		pkgs:     map[key]Package{},
		corrupt:  map[string]map[key][]byte{},
		hidden:   map[string]map[key]bool{},
		hits:     map[string]int{},
		stopped:  map[string]bool{},
	}
	for _, n := range c.names {
		c.handlers[n] = c.nodeHandler(n, false)
		c.Nodes[n] = httptest.NewServer(c.nodeHandler(n, true))
	}
	c.LB = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Round robin over the nodes still running, like an LB whose health
		// checks have ejected the stopped ones.
		c.mu.Lock()
		var up []string
		for _, n := range c.names {
			if !c.stopped[n] {
				up = append(up, n)
			}
		}
		c.mu.Unlock()
		if len(up) == 0 {
			http.Error(w, "503 Service Unavailable: no server is available to handle this request.", http.StatusServiceUnavailable)
			return
		}
		c.handlers[up[int(c.rr.Add(1)-1)%len(up)]].ServeHTTP(w, r)
	}))
	return c
}

// Close stops every server.
func (c *Cluster) Close() {
	c.LB.Close()
	for _, s := range c.Nodes {
		s.Close()
	}
}

// Stop stops one node (as a kill would) and takes it out of the LB's
// rotation.
func (c *Cluster) Stop(node string) {
	c.mu.Lock()
	c.stopped[node] = true
	c.mu.Unlock()
	c.Nodes[node].Close()
}

// Put stores a package (or replaces its content) for every node.
func (c *Cluster) Put(p Package) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pkgs[key{p.ID, p.Version}] = p
}

// Corrupt makes one node serve data as the bytes of a package while its
// metadata (from the shared database) stays right.
func (c *Cluster) Corrupt(node, id, version string, data []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.corrupt[node] == nil {
		c.corrupt[node] = map[key][]byte{}
	}
	c.corrupt[node][key{id, version}] = data
}

// Hide makes one node answer 404 for a package.
func (c *Cluster) Hide(node, id, version string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.hidden[node] == nil {
		c.hidden[node] = map[key]bool{}
	}
	c.hidden[node][key{id, version}] = true
}

// Hits returns how many requests of a kind ("meta", "raw", "list") a node
// served directly (not through the load balancer).
func (c *Cluster) Hits(node, kind string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hits[node+" "+kind]
}

func (c *Cluster) nodeHandler(node string, direct bool) http.Handler {
	hit := func(kind string) {
		if direct {
			c.hit(node, kind)
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/{space}/packages", func(w http.ResponseWriter, r *http.Request) { hit("list"); c.list(w, r) })
	mux.HandleFunc("GET /api/{space}/packages/{id}", func(w http.ResponseWriter, r *http.Request) { hit("meta"); c.meta(node, w, r) })
	mux.HandleFunc("GET /api/{space}/packages/{id}/raw", func(w http.ResponseWriter, r *http.Request) { hit("raw"); c.raw(node, w, r) })
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(octopusapi.HeaderNode, node)
		if c.opts.APIKey != "" && r.Header.Get(octopusapi.HeaderAPIKey) != c.opts.APIKey {
			writeJSON(w, http.StatusUnauthorized, octopusapi.Error{ErrorMessage: "You must be logged in to perform this action.", Errors: []string{"Invalid API key"}})
			return
		}
		mux.ServeHTTP(w, r)
	})
}

func (c *Cluster) hit(node, kind string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.hits[node+" "+kind]++
}

func (c *Cluster) lookup(node string, r *http.Request) (Package, []byte, bool) {
	pid, ver, ok := octopusapi.SplitPackageResourceID(r.PathValue("id"))
	if !ok {
		return Package{}, nil, false
	}
	k := key{pid, ver}
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.pkgs[k]
	if !ok || c.hidden[node][k] {
		return Package{}, nil, false
	}
	data := p.Data
	if d, ok := c.corrupt[node][k]; ok {
		data = d
	}
	return p, data, true
}

func resource(space string, p Package) octopusapi.Package {
	rid := octopusapi.PackageResourceID(p.ID, p.Version)
	return octopusapi.Package{
		Id: rid, PackageId: p.ID, Version: p.Version, Hash: p.Hash(),
		PackageSizeBytes: int64(len(p.Data)), FeedId: octopusapi.BuiltInFeedID,
		NuGetPackageId: p.ID, NuGetFeedId: octopusapi.BuiltInFeedID, FileExtension: p.Ext,
		Title: p.ID, Published: time.Unix(1700000000, 0).UTC(),
		Links: octopusapi.Links{"Self": octopusapi.PackagePath(space, rid), "Raw": octopusapi.PackageRawPath(space, rid)},
	}
}

func (c *Cluster) meta(node string, w http.ResponseWriter, r *http.Request) {
	p, _, ok := c.lookup(node, r)
	if !ok {
		writeJSON(w, http.StatusNotFound, octopusapi.Error{ErrorMessage: "The resource you requested was not found."})
		return
	}
	writeJSON(w, http.StatusOK, resource(r.PathValue("space"), p))
}

func (c *Cluster) raw(node string, w http.ResponseWriter, r *http.Request) {
	_, data, ok := c.lookup(node, r)
	if !ok {
		writeJSON(w, http.StatusNotFound, octopusapi.Error{ErrorMessage: "The resource you requested was not found."})
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	_, _ = w.Write(data)
}

func (c *Cluster) list(w http.ResponseWriter, r *http.Request) {
	space := r.PathValue("space")
	q := r.URL.Query()
	skip, _ := strconv.Atoi(q.Get("skip"))
	take, err := strconv.Atoi(q.Get("take"))
	if err != nil || take <= 0 || take > c.opts.MaxTake {
		take = c.opts.MaxTake
	}
	skip = max(skip, 0)
	c.mu.Lock()
	all := make([]octopusapi.Package, 0, len(c.pkgs))
	for _, p := range c.pkgs {
		all = append(all, resource(space, p))
	}
	c.mu.Unlock()
	sort.Slice(all, func(i, j int) bool { return all[i].Id < all[j].Id })
	end := min(skip+take, len(all))
	items := []octopusapi.Package{}
	if skip < len(all) {
		items = all[skip:end]
	}
	self := fmt.Sprintf("%s?skip=%d&take=%d", octopusapi.PackagesPath(space), skip, take)
	page := octopusapi.NewPage("Package", items, len(all), skip, take, self)
	if c.opts.NextLinks && end < len(all) {
		page.Links["Page.Next"] = fmt.Sprintf("%s?skip=%d&take=%d", octopusapi.PackagesPath(space), end, take)
	}
	writeJSON(w, http.StatusOK, page)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
