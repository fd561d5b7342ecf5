package traffic

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/octoha/octoha/harness/history"
	"github.com/octoha/octoha/internal/redact"
	"github.com/octoha/octoha/octopusapi"
)

// Attack targets: read-only API requests, named as the history kinds.
const (
	TargetPing     = history.KindPing     // GET /api/octopusservernodes/ping
	TargetNodes    = history.KindNodes    // GET /api/octopusservernodes
	TargetPackages = history.KindPackages // GET /api/{space}/packages
	// TargetWork is the fake node's synthetic task (POST, an octoha
	// extension): each request holds one of the node's task slots for
	// WorkDuration, which makes the cluster's capacity measurable.
	TargetWork = history.KindWork
)

// DefaultAttackTimeout is the per-request timeout of an attack.
const DefaultAttackTimeout = 10 * time.Second

// AttackOptions configures Attack. URL, Target and Rate are required.
type AttackOptions struct {
	URL    string // base URL: the load balancer or one node
	APIKey string // optional (ping needs none); never logged
	Target string // TargetPing, TargetNodes or TargetPackages
	// SpaceID is the space of TargetPackages (default octopusapi.DefaultSpaceID).
	SpaceID string
	// Rate is requests per period. A zero Freq means "as fast as
	// MaxWorkers allow" and then needs MaxWorkers.
	Rate vegeta.Rate
	// Duration of the attack; zero runs until ctx is cancelled.
	Duration time.Duration
	// Workers is the initial worker count (default vegeta.DefaultWorkers);
	// vegeta adds workers up to MaxWorkers (default unlimited) to hold
	// the rate.
	Workers, MaxWorkers uint64
	// Timeout bounds each request (default DefaultAttackTimeout).
	Timeout time.Duration
	// Name is the vegeta attack name (default the target).
	Name     string
	Recorder *history.Recorder // one Op per request; nil: none
	// Results receives every vegeta Result, gob-encoded with vegeta's own
	// encoder; nil: none.
	Results io.Writer
	// Client sends the requests; nil means a fresh loopback client.
	Client *http.Client
	// ClientName is the history client (default Name).
	ClientName string
	Via        string // recorded in each Op's Via field
	// Observe, if set, sees every result as it arrives (e.g. Spread.Add);
	// it runs on the collecting goroutine, so it must be quick.
	Observe func(*vegeta.Result)
	Logger  *slog.Logger
	// WorkDuration is how long each TargetWork request holds a task slot
	// (default 100ms); WorkWait how long it may wait for one (default 1s).
	WorkDuration, WorkWait time.Duration
	// Loader, if set, receives what the attack cost this machine and
	// whether it kept its rate (a fixed rate only) when Attack returns.
	Loader *LoaderStats
}

// TargetPath returns the request path of an attack target.
func TargetPath(target, spaceID string) (string, error) {
	switch target {
	case TargetPing:
		return octopusapi.PingPath, nil
	case TargetNodes:
		return octopusapi.NodesPath, nil
	case TargetPackages, TargetWork:
		if spaceID == "" {
			spaceID = octopusapi.DefaultSpaceID
		}
		if !octopusapi.ValidSpaceID(spaceID) {
			return "", fmt.Errorf("space ID %q is not valid (e.g. Spaces-1)", spaceID)
		}
		if target == TargetWork {
			return octopusapi.WorkPath(spaceID), nil
		}
		return octopusapi.PackagesPath(spaceID), nil
	default:
		return "", fmt.Errorf("target %q: use %s, %s, %s or %s", target, TargetPing, TargetNodes, TargetPackages, TargetWork)
	}
}

func (o AttackOptions) withDefaults() (AttackOptions, string, error) {
	base, err := parseBaseURL(o.URL)
	if err != nil {
		return o, "", err
	}
	path, err := TargetPath(o.Target, o.SpaceID)
	if err != nil {
		return o, "", err
	}
	switch {
	case o.Rate.Freq < 0 || o.Rate.Per < 0:
		return o, "", fmt.Errorf("rate %s is negative", o.Rate)
	case o.Rate.Freq > 0 && o.Rate.Per == 0:
		return o, "", fmt.Errorf("rate %d per zero time", o.Rate.Freq)
	case o.Rate.Freq == 0 && o.MaxWorkers == 0:
		return o, "", errors.New("an unlimited rate needs MaxWorkers")
	}
	if o.Duration < 0 {
		return o, "", fmt.Errorf("duration %s is negative", o.Duration)
	}
	if o.Workers == 0 {
		o.Workers = vegeta.DefaultWorkers
	}
	if o.MaxWorkers == 0 {
		o.MaxWorkers = vegeta.DefaultMaxWorkers
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultAttackTimeout
	}
	if o.Timeout < 0 {
		return o, "", fmt.Errorf("timeout %s is negative", o.Timeout)
	}
	if o.Name == "" {
		o.Name = o.Target
	}
	if o.Target == TargetWork {
		if o.WorkDuration <= 0 {
			o.WorkDuration = 100 * time.Millisecond
		}
		if o.WorkWait <= 0 {
			o.WorkWait = time.Second
		}
		path += fmt.Sprintf("?ms=%d&wait=%s", o.WorkDuration.Milliseconds(), o.WorkWait)
	}
	if o.ClientName == "" {
		o.ClientName = o.Name
	}
	if o.Logger == nil {
		o.Logger = discardLogger()
	}
	return o, base + path, nil
}

// Validate reports whether the options are usable, without sending anything.
func (o AttackOptions) Validate() error {
	_, _, err := o.withDefaults()
	return err
}

// opIDTransport stamps each request with X-Octoha-Op = prefix + vegeta's
// sequence number, so the op ID in the history (prefix + Result.Seq) joins
// with node and load-balancer logs.
type opIDTransport struct {
	base   http.RoundTripper
	prefix string
}

// RoundTrip sets the header on the request itself rather than on a clone
// (a RoundTripper should not change its caller's request): vegeta builds
// a fresh request, headers included, for every hit and drops it after,
// and a clone per request cost the loader a few percent of its CPU.
func (t opIDTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	req.Header[octopusapi.HeaderOp] = []string{t.prefix + req.Header.Get("X-Vegeta-Seq")}
	return t.base.RoundTrip(req)
}

// Attack runs one vegeta attack of GET requests against the target at the
// given rate until the duration ends or ctx is cancelled, and returns
// vegeta's metrics. Every result is encoded to Results and recorded as a
// history Op (ok for 2xx; failed for anything else, transport errors
// included, since a read has no effect to be unsure about). The error is
// non-nil for unusable options or a failure to write the results stream.
func Attack(ctx context.Context, opts AttackOptions) (*vegeta.Metrics, error) {
	o, target, err := opts.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("attack options: %w", err)
	}
	prefix := o.Name + "-" + newNonce() + "-"
	client, err := clientFor(o.Client, 1024, o.URL, o.APIKey)
	if err != nil {
		return nil, fmt.Errorf("attack: %w", err)
	}
	base := client.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	client.Transport = opIDTransport{base: base, prefix: prefix}

	hdr := http.Header{}
	hdr.Set("Accept", "application/json")
	hdr.Set("User-Agent", userAgent)
	method := http.MethodGet
	if o.Target == TargetWork {
		method = http.MethodPost
	}
	targeter := vegeta.NewStaticTargeter(vegeta.Target{Method: method, URL: target, Header: hdr})
	atk := vegeta.NewAttacker(
		vegeta.Client(client), // first: the options below change its copy
		vegeta.Timeout(o.Timeout),
		vegeta.Workers(o.Workers),
		vegeta.MaxWorkers(o.MaxWorkers),
		vegeta.MaxBody(maxResponseBody),
		vegeta.Redirects(vegeta.NoFollow),
	)
	// Stop is permanent, hence one Attacker per call.
	stop := context.AfterFunc(ctx, func() { atk.Stop() })
	defer stop()

	// Results and ops carry the URL redacted: a user:password in --url
	// must not end up in history.jsonl or the results file.
	shown := redact.URL(target)
	o.Logger.Info("attack starting", "url", shown, "rate", o.Rate.String(), "duration", o.Duration, "name", o.Name)
	clock := startLoaderClock()
	rw := newResultWriter(o.Results)
	// Ops are queued here and written in batches off this goroutine: it
	// is the one every worker hands its result to, so its cost per result
	// caps the attack's rate.
	batch := history.NewBatch(o.Recorder, 0)
	kind := o.Target
	var m vegeta.Metrics
	for r := range atk.Attack(targeter, o.Rate, o.Duration, o.Name) {
		if r.URL == target {
			r.URL = shown
		} else {
			r.URL = redact.URL(r.URL)
		}
		if r.Error != "" {
			r.Error = redact.Text(r.Error)
		}
		m.Add(r)
		rw.write(r)
		batch.Add(attackOp(r, kind, prefix, o.ClientName, o.Via))
		if o.Observe != nil {
			o.Observe(r)
		}
	}
	m.Close()
	_ = batch.Close() // a write error stays in the recorder, whose Close reports it
	st := clock.stats(perSecond(o.Rate), m.Rate)
	if o.Loader != nil {
		*o.Loader = st
	}
	o.Logger.Info("attack finished", "requests", m.Requests, "rate", m.Rate, "success", m.Success,
		"loaderCPUShare", st.CPUShare, "behind", st.Behind)
	return &m, rw.Flush()
}

// attackOp turns a vegeta result into a history Op.
func attackOp(r *vegeta.Result, kind, prefix, client, via string) history.Op {
	op := history.Op{
		ID: prefix + strconv.FormatUint(r.Seq, 10), Client: client, Kind: kind,
		Start: r.Timestamp, End: r.End(), Status: int(r.Code), Node: NodeOf(r),
		Via: via, URL: r.URL, Bytes: int64(r.BytesOut), Error: r.Error,
		Outcome: history.Failed,
	}
	if r.Code >= 200 && r.Code < 300 {
		op.Outcome = history.OK
	}
	return op
}

// NodeOf returns the node that served a result (its X-Octoha-Node header),
// or "" when no node answered.
//
// Real Octopus nodes send no such header, but their ping body always
// describes the answering node, so a ping result is attributed from its
// body's Name when the header is missing: that is how a drain is judged
// through a real cluster's load balancer.
func NodeOf(r *vegeta.Result) string {
	if n := r.Headers.Get(octopusapi.HeaderNode); n != "" {
		return n
	}
	if len(r.Body) > 0 && strings.HasSuffix(strings.SplitN(r.URL, "?", 2)[0], octopusapi.PingPath) {
		var body struct{ Name string }
		if json.Unmarshal(r.Body, &body) == nil {
			return body.Name
		}
	}
	return ""
}

// NoNode is the Spread key of results no node answered.
const NoNode = "(none)"

// Spread counts results per serving node: how a load balancer spread the
// load. Add makes it usable as AttackOptions.Observe.
type Spread map[string]int

// Add counts one result.
func (s Spread) Add(r *vegeta.Result) {
	n := NodeOf(r)
	if n == "" {
		n = NoNode
	}
	s[n]++
}

// NodeSpread counts results per serving node.
func NodeSpread(results []vegeta.Result) Spread {
	s := Spread{}
	for i := range results {
		s.Add(&results[i])
	}
	return s
}

// SpreadOps counts operations per serving node.
func SpreadOps(ops []history.Op) Spread {
	s := Spread{}
	for _, o := range ops {
		n := o.Node
		if n == "" {
			n = NoNode
		}
		s[n]++
	}
	return s
}

// Total returns the number of results counted.
func (s Spread) Total() int {
	t := 0
	for _, n := range s {
		t += n
	}
	return t
}

// String renders one "node count (share)" line per node, by name.
func (s Spread) String() string {
	names := make([]string, 0, len(s))
	for n := range s {
		names = append(names, n)
	}
	sort.Strings(names)
	total := max(s.Total(), 1)
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "%-20s %8d  %5.1f%%\n", n, s[n], 100*float64(s[n])/float64(total))
	}
	return b.String()
}

// ParseRate parses a rate as vegeta's CLI does: "200/s", "200/1s",
// "50/100ms", "1000/m", a bare "200" (per second), or "0"/"infinity"
// (as fast as the workers allow).
func ParseRate(s string) (vegeta.Rate, error) {
	in := strings.TrimSpace(s)
	if in == "0" || in == "infinity" {
		return vegeta.Rate{}, nil
	}
	freqS, perS, found := strings.Cut(in, "/")
	freq, err := strconv.Atoi(freqS)
	if err != nil || freq <= 0 {
		return vegeta.Rate{}, fmt.Errorf("rate %q: expected <count>/<period>, e.g. 200/s", s)
	}
	per := time.Second
	if found {
		switch perS {
		case "s", "":
			per = time.Second
		case "ms":
			per = time.Millisecond
		case "m":
			per = time.Minute
		case "h":
			per = time.Hour
		default:
			per, err = time.ParseDuration(perS)
			if err != nil || per <= 0 {
				return vegeta.Rate{}, fmt.Errorf("rate %q: period %q is not a positive duration", s, perS)
			}
		}
	}
	return vegeta.Rate{Freq: freq, Per: per}, nil
}
