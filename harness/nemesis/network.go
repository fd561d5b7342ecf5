package nemesis

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/payload"
	"github.com/octoha/octoha/services/toxiproxy"
)

// Network fault kinds: toxics on a link of a cluster whose links go
// through Toxiproxy (cluster.CapNetwork). The partition (KindPartition)
// cuts links the same way when the cluster has them.
const (
	KindLatency   = "latency"    // delay ± jitter on every chunk
	KindBandwidth = "bandwidth"  // a rate limit, both directions
	KindBlackhole = "blackhole"  // data stops; the connection closes after a while (or never)
	KindReset     = "reset"      // TCP RST once data has flowed for a while
	KindSlowClose = "slow-close" // closes are delayed
)

// NetworkKinds are the toxic kinds (partition aside).
var NetworkKinds = []string{KindLatency, KindBandwidth, KindBlackhole, KindReset, KindSlowClose}

// Net is a network fault on one link: a toxic, or (Kind partition) a cut.
// It is written, parsed (ParseNet) and recorded in the history's Detail as
// "kind@link,param=value,…", e.g. "latency@db,latency=300ms,jitter=100ms",
// "bandwidth@share,rate=10MB/s", "reset@lb,after=500ms", "partition@share".
type Net struct {
	Kind string
	// Link is cluster.LinkClient, LinkLB, LinkDB, LinkShare, or LinkAll
	// (partition only). Every link but client belongs to the target node.
	Link string
	// Latency and Jitter (latency).
	Latency, Jitter time.Duration
	// Rate in bytes per second (bandwidth).
	Rate int64
	// After: blackhole closes after it (0: never), reset resets after
	// data flowed for it, slow-close delays each close by it.
	After time.Duration
}

var _ Fault = Net{}

// NetworkPartition is Partition restricted to one of a node's links
// (cluster.LinkLB, LinkDB, LinkShare) or LinkAll.
func NetworkPartition(link string) Fault { return Net{Kind: KindPartition, Link: link} }

// Name implements Fault.
func (n Net) Name() string { return n.Kind }

// Targeted implements Fault: every link but the client's is a node's.
func (n Net) Targeted() bool { return n.Link != cluster.LinkClient }

// String is the fault's spec, as ParseNet reads it.
func (n Net) String() string {
	s := n.Kind + "@" + n.Link
	switch n.Kind {
	case KindLatency:
		s += ",latency=" + n.Latency.String()
		if n.Jitter > 0 {
			s += ",jitter=" + n.Jitter.String()
		}
	case KindBandwidth:
		s += ",rate=" + strconv.FormatInt(n.Rate, 10)
	case KindBlackhole, KindReset, KindSlowClose:
		s += ",after=" + n.After.String()
	}
	return s
}

// Detail is what the history records (the spec).
func (n Net) Detail() string { return n.String() }

// ParseNet reads a network fault spec (see Net). Defaults: latency 200ms,
// rate 1MB/s, reset and slow-close after 1s, blackhole never closes;
// partition's link defaults to all.
func ParseNet(s string) (Net, error) {
	parts := strings.Split(strings.TrimSpace(s), ",")
	kind, link, _ := strings.Cut(parts[0], "@")
	n := Net{Kind: kind, Link: link}
	switch kind {
	case KindLatency:
		n.Latency = 200 * time.Millisecond
	case KindBandwidth:
		n.Rate = 1_000_000
	case KindReset, KindSlowClose:
		n.After = time.Second
	case KindBlackhole:
	case KindPartition:
		if n.Link == "" {
			n.Link = cluster.LinkAll
		}
	default:
		return Net{}, fmt.Errorf("unknown network fault %q (want %s or partition)", kind, strings.Join(NetworkKinds, ", "))
	}
	switch n.Link {
	case cluster.LinkClient, cluster.LinkLB, cluster.LinkDB, cluster.LinkShare:
	case cluster.LinkAll:
		if kind != KindPartition {
			return Net{}, fmt.Errorf("%s: link all is for partitions only", s)
		}
	case "":
		return Net{}, fmt.Errorf("%s: which link? (%s@client, @lb, @db or @share)", s, kind)
	default:
		return Net{}, fmt.Errorf("%s: unknown link %q (want client, lb, db, share, or all for a partition)", s, n.Link)
	}
	for _, p := range parts[1:] {
		k, v, ok := strings.Cut(p, "=")
		if !ok {
			return Net{}, fmt.Errorf("%s: %q is not key=value", s, p)
		}
		var err error
		switch k {
		case "latency":
			n.Latency, err = time.ParseDuration(v)
		case "jitter":
			n.Jitter, err = time.ParseDuration(v)
		case "after":
			n.After, err = time.ParseDuration(v)
		case "rate":
			n.Rate, err = payload.ParseSize(strings.TrimSuffix(v, "/s"))
			if err == nil && n.Rate <= 0 {
				err = errors.New("must be positive")
			}
		default:
			err = errors.New("unknown parameter")
		}
		if err != nil {
			return Net{}, fmt.Errorf("%s: %s: %w", s, k, err)
		}
		if n.Latency < 0 || n.Jitter < 0 || n.After < 0 {
			return Net{}, fmt.Errorf("%s: %s is negative", s, k)
		}
	}
	return n, nil
}

// Available implements Fault.
func (n Net) Available(c cluster.Cluster) error {
	if err := cluster.Can(c, cluster.CapNetwork); err != nil {
		return err
	}
	nc, ok := c.(cluster.NetworkController)
	if !ok || nc.Toxiproxy() == nil {
		return fmt.Errorf("the %s provider's links do not go through Toxiproxy", c.Spec().Provider)
	}
	return nil
}

// proxies are the Toxiproxy links the fault acts on.
func (n Net) proxies(ctx context.Context, tp *toxiproxy.Client, target string) ([]string, error) {
	links := []string{n.Link}
	if n.Link == cluster.LinkAll {
		links = []string{cluster.LinkLB, cluster.LinkDB, cluster.LinkShare}
	}
	var out []string
	for _, l := range links {
		name, err := cluster.LinkName(l, target)
		if err != nil {
			return nil, err
		}
		if _, err := tp.Link(ctx, name); err != nil {
			if n.Link == cluster.LinkAll {
				continue // an embedded database or share has no link
			}
			return nil, fmt.Errorf("%s: no link %s (is the %s embedded?): %w", n, name, l, err)
		}
		out = append(out, name)
	}
	return out, nil
}

// toxics are the toxics the fault adds to each of its links.
func (n Net) toxics() []toxiproxy.Toxic {
	name := func(stream string) string { return "octoha-" + n.Kind + "-" + stream }
	both := func(f func(string, string) toxiproxy.Toxic) []toxiproxy.Toxic {
		return []toxiproxy.Toxic{f(name(toxiproxy.Upstream), toxiproxy.Upstream), f(name(toxiproxy.Downstream), toxiproxy.Downstream)}
	}
	switch n.Kind {
	case KindLatency:
		// Each way, so a round trip takes twice the latency.
		return both(func(nm, st string) toxiproxy.Toxic { return toxiproxy.Latency(nm, st, n.Latency, n.Jitter) })
	case KindBandwidth:
		return both(func(nm, st string) toxiproxy.Toxic { return toxiproxy.Bandwidth(nm, st, n.Rate) })
	case KindBlackhole:
		return both(func(nm, st string) toxiproxy.Toxic { return toxiproxy.Timeout(nm, st, n.After) })
	case KindReset:
		// Upstream: the connection is reset once the client has sent
		// data for After (mid-request, mid-upload).
		return []toxiproxy.Toxic{toxiproxy.ResetPeer(name(toxiproxy.Upstream), toxiproxy.Upstream, n.After)}
	case KindSlowClose:
		return []toxiproxy.Toxic{toxiproxy.SlowClose(name(toxiproxy.Downstream), toxiproxy.Downstream, n.After)}
	}
	return nil
}

func (n Net) client(c cluster.Cluster) *toxiproxy.Client {
	nc, _ := c.(cluster.NetworkController)
	if nc == nil {
		return nil
	}
	return nc.Toxiproxy()
}

// Inject implements Fault.
func (n Net) Inject(ctx context.Context, env Env, target string) error {
	tp := n.client(env.Cluster)
	if tp == nil {
		return errors.New("no Toxiproxy")
	}
	links, err := n.proxies(ctx, tp, target)
	if err != nil {
		return err
	}
	for _, l := range links {
		if n.Kind == KindPartition {
			err = tp.SetEnabled(ctx, l, false)
		} else {
			for _, t := range n.toxics() {
				if err = tp.AddToxic(ctx, l, t); err != nil {
					break
				}
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Recover implements Fault: the toxics are removed (or the links enabled);
// a link without them is left alone.
func (n Net) Recover(ctx context.Context, env Env, target string) error {
	tp := n.client(env.Cluster)
	if tp == nil {
		return errors.New("no Toxiproxy")
	}
	links, err := n.proxies(ctx, tp, target)
	if err != nil {
		return err
	}
	var errs []error
	for _, l := range links {
		if n.Kind == KindPartition {
			errs = append(errs, tp.SetEnabled(ctx, l, true))
			continue
		}
		for _, t := range n.toxics() {
			errs = append(errs, tp.RemoveToxic(ctx, l, t.Name))
		}
	}
	return errors.Join(errs...)
}

// IsNetwork reports whether a recorded fault kind is a network fault.
func IsNetwork(kind string) bool {
	return kind == KindPartition || slices.Contains(NetworkKinds, kind)
}

// Heal removes every octoha toxic from node's links (every link of the
// cluster when node is "") and enables them, whatever the history says: the
// recovery of last resort for `octoha fault heal`.
func Heal(ctx context.Context, c cluster.Cluster, node string) error {
	tp := Net{}.client(c)
	if tp == nil {
		return errors.New("the cluster's links do not go through Toxiproxy (octoha up --toxiproxy)")
	}
	links, err := tp.Links(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, l := range links {
		if node != "" && !strings.Contains("-"+l.Name+"-", "-"+node+"-") {
			continue
		}
		for _, t := range l.Toxics {
			if strings.HasPrefix(t.Name, "octoha-") {
				errs = append(errs, tp.RemoveToxic(ctx, l.Name, t.Name))
			}
		}
		errs = append(errs, tp.SetEnabled(ctx, l.Name, true))
	}
	return errors.Join(errs...)
}
