package checker

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/octoha/octoha/harness/apiclient"
	"github.com/octoha/octoha/harness/history"
	"github.com/octoha/octoha/octopusapi"
)

// Collection defaults.
const (
	// DefaultDeepLimit is the largest package downloaded through every live
	// node when CollectOptions.DeepNodes is off; larger ones are checked per
	// node by metadata and downloaded through the load balancer only.
	DefaultDeepLimit int64 = 64 << 20
	// DefaultConcurrency is how many reads Collect runs at once.
	DefaultConcurrency = 4
	// DefaultPageSize is the take of each package-list request.
	DefaultPageSize = 100
	// DefaultStallTimeout is how long a read may make no progress (no
	// response headers, no body bytes) before it is abandoned, so that a
	// paused node becomes an unreadable view instead of a hung check.
	DefaultStallTimeout = 30 * time.Second
	// maxListPages bounds the package-list walk against a server that keeps
	// inventing pages.
	maxListPages = 100000
	// maxMetaBody bounds metadata and list responses read into memory.
	maxMetaBody = 8 << 20
)

// ViaLB is the View.Via of reads through the load balancer.
const ViaLB = "lb"

// Endpoint is one node of the cluster under test.
type Endpoint struct {
	Name string `json:"name"`
	URL  string `json:"url"`
	// Live says the node is expected to serve: a node that was killed and
	// not restarted is not live, and is not read.
	Live bool `json:"live"`
}

// Target says how to reach the cluster under test, exactly as a client of a
// real Octopus cluster would.
type Target struct {
	LBURL   string
	Nodes   []Endpoint
	APIKey  string // sent as X-Octopus-ApiKey; never logged or reported
	SpaceID string // default octopusapi.DefaultSpaceID
	// Client is the HTTP client to start from; nil means a client without
	// an overall timeout (downloads may be large), bounded by the context
	// instead. Either way Collect talks only to LBURL and the nodes' URLs
	// (see apiclient): a redirect or a Page.Next link elsewhere is refused.
	Client *http.Client
}

// CollectOptions tunes Collect.
type CollectOptions struct {
	// DeepNodes downloads and hashes every package through every live node,
	// whatever its size.
	DeepNodes bool
	// DeepLimit is the size up to which packages are downloaded through every
	// live node anyway; zero means DefaultDeepLimit, negative means never.
	DeepLimit int64
	// Files is a listing of the Packages store, copied into the snapshot for
	// NoLeftovers; nil when none is available.
	Files *FileListing
	// Concurrency is how many reads run at once; zero means
	// DefaultConcurrency.
	Concurrency int
	// PageSize is the take of each package-list request; zero means
	// DefaultPageSize.
	PageSize int
	// StallTimeout abandons a read that makes no progress for this long;
	// zero means DefaultStallTimeout.
	StallTimeout time.Duration
}

// PackageKey names one package version.
type PackageKey struct {
	PackageID string `json:"packageId"`
	Version   string `json:"version"`
}

func (k PackageKey) String() string { return k.PackageID + "@" + k.Version }

// View is what one endpoint (the load balancer or one node) serves for one
// package.
type View struct {
	// Via is ViaLB or a node name.
	Via string `json:"via"`
	// Error says why the endpoint could not be read (transport error or a
	// status other than 200 and 404); Present is then meaningless.
	Error string `json:"error,omitempty"`
	// Present is true when the metadata answered 200, false on 404.
	Present bool `json:"present"`
	// MetaNode is the X-Octoha-Node header of the metadata response.
	MetaNode string `json:"metaNode,omitempty"`
	// Metadata as served.
	PackageID string `json:"packageId,omitempty"`
	Version   string `json:"version,omitempty"`
	Hash      string `json:"hash,omitempty"`
	Size      int64  `json:"size,omitempty"`
	// Downloaded is true when the bytes were read and hashed.
	Downloaded bool   `json:"downloaded"`
	BodyHash   string `json:"bodyHash,omitempty"`
	BodySize   int64  `json:"bodySize,omitempty"`
	BodyNode   string `json:"bodyNode,omitempty"`
}

// PackageState is every view of one package.
type PackageState struct {
	PackageKey
	Views []View `json:"views"`
}

// Snapshot is what the cluster serves after a run.
type Snapshot struct {
	Time    time.Time  `json:"time"`
	SpaceID string     `json:"spaceId"`
	LBURL   string     `json:"lbUrl"` // redacted
	Nodes   []Endpoint `json:"nodes"`
	// Packages holds one entry per package version the history uploaded
	// with an ok or unknown outcome, sorted by key.
	Packages []PackageState `json:"packages"`
	// Rows is the full package list, read through the load balancer.
	Rows []octopusapi.Package `json:"rows"`
	// RowsError says why the list could not be read; Rows is then partial.
	RowsError string `json:"rowsError,omitempty"`
	// Files is the Packages store listing, nil when unavailable.
	Files *FileListing `json:"files,omitempty"`
	// BytesRead counts package bytes downloaded and hashed.
	BytesRead int64 `json:"bytesRead"`
}

// Package returns the state of one package version.
func (s *Snapshot) Package(k PackageKey) (*PackageState, bool) {
	if s == nil {
		return nil, false
	}
	for i := range s.Packages {
		if s.Packages[i].PackageKey == k {
			return &s.Packages[i], true
		}
	}
	return nil, false
}

// LiveNodes returns the names of the nodes that were read.
func (s *Snapshot) LiveNodes() []string {
	var out []string
	for _, n := range s.Nodes {
		if n.Live {
			out = append(out, n.Name)
		}
	}
	return out
}

func keyLess(a, b PackageKey) bool {
	if a.PackageID != b.PackageID {
		return a.PackageID < b.PackageID
	}
	return a.Version < b.Version
}

// UploadedPackages returns the package versions that upload ops with an ok
// or unknown outcome name, sorted, with the largest expected size of each.
func UploadedPackages(h *history.History) ([]PackageKey, map[PackageKey]int64) {
	sizes := map[PackageKey]int64{}
	for _, o := range h.Ops {
		if o.Kind != history.KindUpload || o.PackageID == "" || o.Version == "" {
			continue
		}
		if o.Outcome != history.OK && o.Outcome != history.Unknown {
			continue
		}
		k := PackageKey{o.PackageID, o.Version}
		sizes[k] = max(sizes[k], o.Size)
	}
	keys := make([]PackageKey, 0, len(sizes))
	for k := range sizes {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keyLess(keys[i], keys[j]) })
	return keys, sizes
}

// Collect reads, over HTTP, what the cluster serves for every package the
// history uploaded (acknowledged or unknown): metadata through the load
// balancer and every live node, bytes (SHA-1, streamed) through the load
// balancer and, for small packages or with DeepNodes, every live node; and
// the full package list. Unreachable endpoints and unexpected answers are
// recorded in the views for the checkers to judge; Collect returns an error
// only for a bad target or a cancelled context.
func Collect(ctx context.Context, t Target, h *history.History, opts CollectOptions) (*Snapshot, error) {
	lb, err := parseBase(t.LBURL)
	if err != nil {
		return nil, fmt.Errorf("collect snapshot: load balancer URL: %w", err)
	}
	c := &collector{
		space: t.SpaceID,
		opts:  opts,
	}
	if c.space == "" {
		c.space = octopusapi.DefaultSpaceID
	}
	if c.opts.DeepLimit == 0 {
		c.opts.DeepLimit = DefaultDeepLimit
	}
	if c.opts.Concurrency <= 0 {
		c.opts.Concurrency = DefaultConcurrency
	}
	if c.opts.PageSize <= 0 {
		c.opts.PageSize = DefaultPageSize
	}
	if c.opts.StallTimeout <= 0 {
		c.opts.StallTimeout = DefaultStallTimeout
	}
	s := &Snapshot{
		Time:    time.Now(),
		SpaceID: c.space,
		LBURL:   lb.Redacted(),
		Files:   opts.Files,
	}
	type endpoint struct {
		name string
		base *url.URL
	}
	eps := []endpoint{{ViaLB, lb}}
	origins := []string{lb.String()}
	seen := map[string]bool{ViaLB: true}
	for _, n := range t.Nodes {
		if n.Name == "" || seen[n.Name] {
			return nil, fmt.Errorf("collect snapshot: node names must be unique and not %q: %q", ViaLB, n.Name)
		}
		seen[n.Name] = true
		base, err := parseBase(n.URL)
		if err != nil {
			return nil, fmt.Errorf("collect snapshot: node %s URL: %w", n.Name, err)
		}
		s.Nodes = append(s.Nodes, Endpoint{Name: n.Name, URL: base.Redacted(), Live: n.Live})
		if n.Live {
			eps = append(eps, endpoint{n.Name, base})
		}
		origins = append(origins, base.String())
	}
	// The key goes to the configured origins only: a redirect or an
	// absolute Page.Next link to anywhere else is refused, naming it.
	c.client, err = apiclient.New(apiclient.Options{APIKey: t.APIKey, Origins: origins, Base: t.Client})
	if err != nil {
		return nil, fmt.Errorf("collect snapshot: %w", err)
	}

	keys, sizes := UploadedPackages(h)
	s.Packages = make([]PackageState, len(keys))
	var (
		wg    sync.WaitGroup
		sem   = make(chan struct{}, c.opts.Concurrency)
		mu    sync.Mutex
		bytes int64
	)
	for i, k := range keys {
		s.Packages[i] = PackageState{PackageKey: k, Views: make([]View, len(eps))}
		for j, ep := range eps {
			wg.Add(1)
			go func() {
				defer wg.Done()
				select {
				case sem <- struct{}{}:
				case <-ctx.Done():
					s.Packages[i].Views[j] = View{Via: ep.name, Error: "not read: " + ctx.Err().Error()}
					return
				}
				defer func() { <-sem }()
				deep := ep.name == ViaLB || c.opts.DeepNodes
				v, n := c.readPackage(ctx, ep.base, ep.name, k, deep, sizes[k])
				s.Packages[i].Views[j] = v
				mu.Lock()
				bytes += n
				mu.Unlock()
			}()
		}
	}
	rows, lerr := c.listRows(ctx, lb)
	wg.Wait()
	s.BytesRead = bytes
	s.Rows = rows
	if lerr != nil {
		s.RowsError = lerr.Error()
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("collect snapshot: %w", err)
	}
	return s, nil
}

type collector struct {
	client *http.Client // from apiclient: adds the key, refuses other origins
	space  string
	opts   CollectOptions
}

func parseBase(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, errors.New("empty")
	}
	u, err := url.Parse(strings.TrimSuffix(raw, "/"))
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("%s: want http(s)://host[:port][/prefix]", u.Redacted())
	}
	u.RawQuery, u.Fragment = "", ""
	return u, nil
}

// endpointURL appends an API path (already escaped, maybe with a query) to
// a base URL, keeping any virtual-directory prefix of the base.
func endpointURL(base *url.URL, pathAndQuery string) string {
	return strings.TrimSuffix(base.String(), "/") + pathAndQuery
}

// errStalled is the cause of a read abandoned by the stall watchdog.
var errStalled = errors.New("no progress")

// response is an HTTP response whose body resets a stall watchdog on every
// read; Close releases the request.
type response struct {
	*http.Response
	cancel context.CancelCauseFunc
	timer  *time.Timer
}

func (r *response) close() {
	drainClose(r.Response)
	r.timer.Stop()
	r.cancel(nil)
}

type watchedBody struct {
	io.ReadCloser
	timer *time.Timer
	stall time.Duration
}

func (b watchedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.timer.Reset(b.stall)
	}
	return n, err
}

// get sends a GET; the request is abandoned when nothing arrives for the
// stall timeout. The caller must call close on success.
func (c *collector) get(ctx context.Context, rawURL, accept string) (*response, error) {
	rctx, cancel := context.WithCancelCause(ctx)
	stall := c.opts.StallTimeout
	timer := time.AfterFunc(stall, func() { cancel(fmt.Errorf("%w for %s", errStalled, stall)) })
	fail := func(err error) (*response, error) {
		timer.Stop()
		if cause := context.Cause(rctx); errors.Is(cause, errStalled) {
			err = cause
		}
		cancel(nil)
		return nil, err
	}
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return fail(err)
	}
	req.Header.Set("Accept", accept)
	resp, err := c.client.Do(req)
	if err != nil {
		return fail(err)
	}
	timer.Reset(stall)
	resp.Body = watchedBody{resp.Body, timer, stall}
	return &response{resp, cancel, timer}, nil
}

// bodyErr explains a body read error, naming a stall as such.
func (r *response) bodyErr(err error) error {
	if cause := context.Cause(r.Request.Context()); errors.Is(cause, errStalled) {
		return cause
	}
	return err
}

// statusError describes an unexpected answer, with Octopus's ErrorMessage
// when the body has one.
func statusError(resp *http.Response) error {
	msg := ""
	var e octopusapi.Error
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if json.Unmarshal(b, &e) == nil && e.ErrorMessage != "" {
		msg = ": " + e.ErrorMessage
	}
	return fmt.Errorf("HTTP %d%s", resp.StatusCode, msg)
}

// readPackage reads one package's metadata through one endpoint and, when
// deep (or small enough), its bytes. It returns the view and the bytes read.
func (c *collector) readPackage(ctx context.Context, base *url.URL, via string, k PackageKey, deep bool, expectSize int64) (View, int64) {
	v := View{Via: via}
	rid := octopusapi.PackageResourceID(k.PackageID, k.Version)
	resp, err := c.get(ctx, endpointURL(base, octopusapi.PackagePath(c.space, rid)), "application/json")
	if err != nil {
		v.Error = "read metadata: " + err.Error()
		return v, 0
	}
	v.MetaNode = resp.Header.Get(octopusapi.HeaderNode)
	switch resp.StatusCode {
	case http.StatusOK:
		var p octopusapi.Package
		err := json.NewDecoder(io.LimitReader(resp.Body, maxMetaBody)).Decode(&p)
		if err != nil {
			err = resp.bodyErr(err)
		}
		resp.close()
		if err != nil {
			v.Error = "decode metadata: " + err.Error()
			return v, 0
		}
		v.Present = true
		v.PackageID, v.Version, v.Hash, v.Size = p.PackageId, p.Version, strings.ToLower(p.Hash), p.PackageSizeBytes
	case http.StatusNotFound:
		resp.close()
		return v, 0
	default:
		err := statusError(resp.Response)
		resp.close()
		v.Error = "read metadata: " + err.Error()
		return v, 0
	}
	size := v.Size
	if size <= 0 || expectSize > size {
		size = expectSize
	}
	if !deep && (c.opts.DeepLimit < 0 || size > c.opts.DeepLimit) {
		return v, 0
	}
	resp, err = c.get(ctx, endpointURL(base, octopusapi.PackageRawPath(c.space, rid)), "*/*")
	if err != nil {
		v.Error = "download: " + err.Error()
		return v, 0
	}
	defer resp.close()
	v.BodyNode = resp.Header.Get(octopusapi.HeaderNode)
	if resp.StatusCode != http.StatusOK {
		v.Error = "download: " + statusError(resp.Response).Error()
		return v, 0
	}
	// Stream into the hash: packages may be gigabytes.
	sum := sha1.New()
	n, err := io.Copy(sum, resp.Body)
	if err != nil {
		v.Error = fmt.Sprintf("download: after %d bytes: %v", n, resp.bodyErr(err))
		return v, n
	}
	v.Downloaded, v.BodyHash, v.BodySize = true, hex.EncodeToString(sum.Sum(nil)), n
	return v, n
}

func drainClose(resp *http.Response) {
	// A little draining lets the connection be reused; never a whole package.
	_, _ = io.CopyN(io.Discard, resp.Body, 64<<10)
	_ = resp.Body.Close()
}

// listRows reads the whole package list through base, following
// Links["Page.Next"] when the server gives it and skip/take otherwise.
func (c *collector) listRows(ctx context.Context, base *url.URL) ([]octopusapi.Package, error) {
	listPath := octopusapi.PackagesPath(c.space)
	page := func(skip int) string {
		return endpointURL(base, listPath+"?skip="+strconv.Itoa(skip)+"&take="+strconv.Itoa(c.opts.PageSize))
	}
	next, skip := page(0), 0
	seen := map[string]bool{}
	var rows []octopusapi.Package
	for n := 0; ; n++ {
		if n >= maxListPages {
			return rows, fmt.Errorf("list packages: gave up after %d pages", n)
		}
		p, err := c.getPage(ctx, next)
		if err != nil {
			return rows, fmt.Errorf("list packages (page %d): %w", n+1, err)
		}
		skip += len(p.Items)
		fresh := 0
		for _, it := range p.Items {
			id := it.Id
			if id == "" {
				id = octopusapi.PackageResourceID(it.PackageId, it.Version)
			}
			if !seen[id] {
				seen[id] = true
				rows = append(rows, it)
				fresh++
			}
		}
		if len(p.Items) == 0 || fresh == 0 {
			// An empty page ends the list; a page of only repeats means the
			// server ignores paging, and following it would never end.
			return rows, nil
		}
		if link := p.Links["Page.Next"]; link != "" {
			ref, err := url.Parse(link)
			if err != nil {
				return rows, fmt.Errorf("list packages: bad Page.Next link: %w", err)
			}
			next = base.ResolveReference(ref).String()
			continue
		}
		if p.TotalResults > 0 && len(rows) >= p.TotalResults || len(p.Items) < c.opts.PageSize && p.TotalResults == 0 {
			return rows, nil
		}
		next = page(skip)
	}
}

func (c *collector) getPage(ctx context.Context, rawURL string) (octopusapi.Page[octopusapi.Package], error) {
	var p octopusapi.Page[octopusapi.Package]
	resp, err := c.get(ctx, rawURL, "application/json")
	if err != nil {
		return p, err
	}
	defer resp.close()
	if resp.StatusCode != http.StatusOK {
		return p, statusError(resp.Response)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxMetaBody)).Decode(&p); err != nil {
		return p, fmt.Errorf("decode: %w", resp.bodyErr(err))
	}
	return p, nil
}
