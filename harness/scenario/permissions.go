package scenario

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/octoha/octoha/harness/apiclient"
	"github.com/octoha/octoha/harness/checker"
	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/history"
	"github.com/octoha/octoha/harness/lb"
	"github.com/octoha/octoha/harness/traffic"
	"github.com/octoha/octoha/octopusapi"
)

// The seed: each node caches user permissions, and after a change "the
// local cache is only invalidated on the node where the change was made";
// session persistence at the load balancer is the workaround. These
// scenarios revoke a user's push permission through one node while the
// user's sessions push through the load balancer, and measure what each
// session sees: the stale window, and flips from denied back to allowed.

// Permission-cache scenario settings: the nodes' cache TTL is short so the
// stale window ends within the run.
const (
	permissionTTL      = 3 * time.Second
	permissionSessions = 4
	permissionInterval = 100 * time.Millisecond
)

// PermissionCache is one of the three variants: without stickiness (the
// check must fail, counting flips), with cookie stickiness (monotonic
// per session), and with a cluster-wide invalidation (no stale window).
func PermissionCache(variant string) Scenario {
	sc := Scenario{
		Topic:        LPermissions,
		Needs:        []cluster.Capability{cluster.CapSimulated},
		Shape:        Shape{Nodes: 3, DB: cluster.DBSQLite, Storage: cluster.StorageLocal, PermissionCacheTTL: permissionTTL},
		Load:         []Load{{Target: traffic.KindPushProbe, Rate: permissionSessions * int(time.Second/permissionInterval)}},
		Faults:       []FaultPlan{{Fault: checker.KindRevoke, Target: "a user's push permission, through Node1"}},
		Providers:    []string{Local},
		ProviderNote: "it creates users through the fake nodes' simplified API and sets their cache TTL",
		Timeout:      time.Minute,
	}
	opts := checker.PermissionOptions{ProbeKind: traffic.KindPushProbe, ExpireWithin: permissionTTL + 2*time.Second}
	switch variant {
	case "sticky":
		sc.Title = "Permission cache — sticky sessions"
		sc.Claim = "With cookie stickiness, each session sees one consistent answer after a revoke: allowed until its node's cache expires, then denied, never flipping back."
		sc.Shape.Sticky = true
		opts.Monotonic = true
		sc.Checks = checks("permissions")
	case "shared":
		sc.Title = "Permission cache — shared invalidation"
		sc.Claim = "When every node invalidates its cache through the database (an Octopus without the per-node cache issue), no session is allowed after the revoke."
		sc.Shape.PermissionCache = "shared"
		opts.Monotonic, opts.NoStale = true, true
		sc.Checks = checks("permissions")
	default:
		sc.Title = "Permission cache — no stickiness"
		sc.Claim = "Without stickiness, a session flip-flops between allowed and denied after a revoke made through one node, until the other nodes' caches expire: the permissions check must fail, counting the flips."
		opts.Monotonic = true
		sc.Checks = []Check{{Name: "permissions", ExpectFail: true, Finding: checker.FindingFlips.Name}}
	}
	sc.Steps = func(ctx context.Context, r Run) error { return permissionSteps(ctx, r, opts, sc.Shape.Sticky) }
	return sc
}

func permissionSteps(ctx context.Context, r Run, opts checker.PermissionOptions, wantSticky bool) error {
	spec := r.Spec()
	// Application Gateway's affinity cookie pins a session as HAProxy's does.
	sticky := spec.LB.Sticky || spec.LB.Azure.Affinity == string(lb.AffinityCookie)
	if wantSticky && !sticky {
		return Skip("the %s load balancer here offers no cookie stickiness", spec.LB.Kind)
	}
	c := r.Cluster()
	admin, err := newAdminClient(c)
	if err != nil {
		return err
	}
	r.Step("creating a user with an API key, in a team granted %s (through the load balancer)", octopusapi.RolePackagePublisher)
	key, grant, err := admin.publisher(ctx, c.URL(), fmt.Sprintf("octoha-pusher-%d", r.Seed()))
	if err != nil {
		return err
	}
	rec := r.Env().Recorder
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() {
		_, err := traffic.PushSessions(sctx, traffic.SessionOptions{URL: c.URL(), APIKey: key, Sessions: permissionSessions,
			Interval: permissionInterval, Cookies: sticky, Recorder: rec})
		done <- err
	}()
	r.Step("%d sessions push through the load balancer every %s (cookies kept: %v)", permissionSessions, permissionInterval, sticky)
	if err := r.WaitOps(ctx, traffic.KindPushProbe, 8*permissionSessions); err != nil {
		return err
	}
	target := nodeURL(c, cluster.NodeName(0))
	r.Step("revoking the user's push permission through %s only", cluster.NodeName(0))
	op := history.Op{Kind: checker.KindRevoke, Client: "admin", Via: cluster.NodeName(0), Start: time.Now(), URL: target + octopusapi.ScopedUserRolesPath + "/" + grant, Outcome: history.Failed}
	status, node, err := admin.do(ctx, http.MethodDelete, op.URL, nil, nil)
	op.End, op.Status, op.Node = time.Now(), status, node
	if err == nil {
		op.Outcome = history.OK
	} else {
		op.Error = err.Error()
	}
	rec.Op(op)
	if err != nil {
		return fmt.Errorf("revoke through %s: %w", cluster.NodeName(0), err)
	}
	r.Step("pushing on until every session has been denied %d times in a row (bound: cache TTL %s + 5s)", 5, spec.Node.PermissionCacheTTL)
	err = Eventually(ctx, "every session denied", spec.Node.PermissionCacheTTL+5*time.Second, 200*time.Millisecond, func() error {
		h, err := r.History()
		if err != nil {
			return err
		}
		return allSessionsDenied(h, op.End, permissionSessions, 5)
	})
	stop()
	if serr := <-done; serr != nil {
		return serr
	}
	if err != nil {
		r.Note("not every session was denied in time: %v (the check says which)", err)
	}
	rep, err := r.Check(ctx, checker.Options{Permissions: &opts})
	if err != nil {
		return err
	}
	res, _ := rep.Result("permissions")
	r.Figure("stale-window", res.Value("stale-window"), "s")
	r.Figure("flips", res.Value(checker.FindingFlips.Name), "count")
	r.Figure("stale-answers", res.Value("stale-answers"), "requests")
	return nil
}

// allSessionsDenied is nil once each of n sessions' last k probes started
// after t were all denied.
func allSessionsDenied(h *history.History, t time.Time, n, k int) error {
	tail := map[string]int{}
	for _, op := range h.Ops {
		if op.Kind != traffic.KindPushProbe || op.Outcome != history.OK || op.Start.Before(t) {
			continue
		}
		if op.Status == http.StatusForbidden {
			tail[op.Client]++
		} else {
			tail[op.Client] = 0
		}
	}
	var waiting []string
	for i := 1; i <= n; i++ {
		s := fmt.Sprintf("session-%d", i)
		if tail[s] < k {
			waiting = append(waiting, s)
		}
	}
	if len(waiting) > 0 {
		return fmt.Errorf("still allowed or unanswered: %s", strings.Join(waiting, ", "))
	}
	return nil
}

// adminClient calls the Octopus API with the cluster's own key (never
// logged), through apiclient: the key goes to the cluster's origins only.
type adminClient struct{ hc *http.Client }

func newAdminClient(c cluster.Cluster) (adminClient, error) {
	origins := []string{c.URL()}
	for _, n := range c.Nodes() {
		origins = append(origins, n.URL)
	}
	hc, err := apiclient.New(apiclient.Options{APIKey: c.APIKey(), Origins: origins, Timeout: 10 * time.Second})
	if err != nil {
		return adminClient{}, fmt.Errorf("permission scenario: %w", err)
	}
	return adminClient{hc: hc}, nil
}

func (a adminClient) do(ctx context.Context, method, url string, in, out any) (status int, node string, err error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, "", err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.hc.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	node = resp.Header.Get(octopusapi.HeaderNode)
	if resp.StatusCode/100 != 2 {
		var e octopusapi.Error
		_ = json.Unmarshal(b, &e)
		return resp.StatusCode, node, fmt.Errorf("%s %s: %s %s", method, req.URL.Path, resp.Status, e.ErrorMessage)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, node, fmt.Errorf("%s %s: %w", method, req.URL.Path, err)
		}
	}
	return resp.StatusCode, node, nil
}

// publisher creates a user, its API key and a team granted the package
// publisher role; it returns the key and the grant's ID.
func (a adminClient) publisher(ctx context.Context, base, username string) (key, grant string, err error) {
	var u octopusapi.User
	var k octopusapi.APIKey
	var team octopusapi.Team
	var sr octopusapi.ScopedUserRole
	for _, call := range []struct {
		path    string
		in, out any
	}{
		{octopusapi.UsersPath, octopusapi.User{Username: username, DisplayName: "octoha permission probe", IsService: true}, &u},
		{"", octopusapi.APIKey{Purpose: "octoha permission-cache scenario"}, &k},
		{octopusapi.TeamsPath, nil, &team},
		{octopusapi.ScopedUserRolesPath, nil, &sr},
	} {
		switch call.out.(type) {
		case *octopusapi.APIKey:
			call.path = octopusapi.UserPath(u.Id) + "/apikeys"
		case *octopusapi.Team:
			call.in = octopusapi.Team{Name: username + " publishers", SpaceId: octopusapi.DefaultSpaceID, MemberUserIds: []string{u.Id}}
		case *octopusapi.ScopedUserRole:
			call.in = octopusapi.ScopedUserRole{TeamId: team.Id, UserRoleId: octopusapi.RolePackagePublisher, SpaceId: octopusapi.DefaultSpaceID}
		}
		if _, _, err := a.do(ctx, http.MethodPost, base+call.path, call.in, call.out); err != nil {
			return "", "", fmt.Errorf("set up the user: %w", err)
		}
	}
	if k.ApiKey == "" || sr.Id == "" {
		return "", "", errors.New("set up the user: the API answered no key or no grant ID")
	}
	return k.ApiKey, sr.Id, nil
}
