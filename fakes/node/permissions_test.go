package node

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/octoha/octoha/internal/syncbuf"
	"github.com/octoha/octoha/octopusapi"
)

func postJSON(t *testing.T, tn *testNode, path string, in, out any) {
	t.Helper()
	b, _ := json.Marshal(in)
	res, body := tn.do(t, http.MethodPost, path, bytes.NewReader(b), map[string]string{"Content-Type": "application/json"})
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("POST %s: %d %s", path, res.StatusCode, body)
	}
	if err := json.Unmarshal(body, out); err != nil {
		t.Fatalf("POST %s: %v: %s", path, err, body)
	}
}

// publisher creates a user with an API key in a team granted the package
// publisher role, through tn; it returns the key and the grant's ID.
func publisher(t *testing.T, tn *testNode) (key, grant string) {
	t.Helper()
	var u octopusapi.User
	postJSON(t, tn, octopusapi.UsersPath, octopusapi.User{Username: "pusher", DisplayName: "Pusher", IsService: true}, &u)
	var k octopusapi.APIKey
	postJSON(t, tn, octopusapi.UserPath(u.Id)+"/apikeys", octopusapi.APIKey{Purpose: "test"}, &k)
	if !strings.HasPrefix(k.ApiKey, "API-") || k.UserId != u.Id {
		t.Fatalf("API key answer %+v", k)
	}
	var team octopusapi.Team
	postJSON(t, tn, octopusapi.TeamsPath, octopusapi.Team{Name: "Publishers", SpaceId: "Spaces-1", MemberUserIds: []string{u.Id}}, &team)
	var sr octopusapi.ScopedUserRole
	postJSON(t, tn, octopusapi.ScopedUserRolesPath, octopusapi.ScopedUserRole{TeamId: team.Id, UserRoleId: octopusapi.RolePackagePublisher, SpaceId: "Spaces-1"}, &sr)
	return k.ApiKey, sr.Id
}

// pushAs uploads one small package as the user (IgnoreIfExists, so a
// permitted push answers 201 or 200) and returns the status and how the
// node decided.
func pushAs(t *testing.T, tn *testNode, key string) (int, string) {
	t.Helper()
	body, ct := multipartBody(t, "file", "Perm.Probe.1.0.0.zip", []byte("probe"))
	res, _ := tn.do(t, http.MethodPost, "/api/Spaces-1/packages/raw?overwriteMode=IgnoreIfExists", body, map[string]string{"Content-Type": ct, octopusapi.HeaderAPIKey: key})
	return res.StatusCode, res.Header.Get(octopusapi.HeaderPermissionCache)
}

func allowed(status int) bool { return status == http.StatusCreated || status == http.StatusOK }

// The seed's per-node cache: a revoke through node A denies at once on A,
// while B keeps answering from its cache until the TTL runs out.
func TestPermissionCacheInvalidatedOnlyWhereChanged(t *testing.T) {
	ttl := 700 * time.Millisecond
	var logs syncbuf.Buffer
	logged := func(c *Config) {
		c.PermissionCacheTTL = ttl
		c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	a := newTestNode(t, nil, logged)
	b := newTestNode(t, a, logged)
	defer func() {
		if strings.Contains(logs.String(), "API-") {
			t.Errorf("a key is in the node's log:\n%s", logs.String())
		}
	}()
	key, grant := publisher(t, a)
	for _, tn := range []*testNode{a, b} {
		if s, how := pushAs(t, tn, key); !allowed(s) {
			t.Fatalf("%s: push before the revoke: %d (%s)", tn.Name(), s, how)
		}
	}
	res, body := a.do(t, http.MethodDelete, octopusapi.ScopedUserRolesPath+"/"+grant, nil, nil)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("revoke: %d %s", res.StatusCode, body)
	}
	revoked := time.Now()
	if s, how := pushAs(t, a, key); s != http.StatusForbidden || how != "miss" {
		t.Fatalf("node A, where the revoke was made: %d (%s), want 403 from the database", s, how)
	}
	s, how := pushAs(t, b, key)
	if !allowed(s) || !strings.HasPrefix(how, "hit") {
		t.Fatalf("node B right after the revoke: %d (%s), want the stale cached answer", s, how)
	}
	waitFor(t, 5*time.Second, "node B's cache to expire", func() bool { s, _ := pushAs(t, b, key); return s == http.StatusForbidden })
	if stale := time.Since(revoked); stale < ttl/2 {
		t.Errorf("node B denied after only %v (TTL %v)", stale, ttl)
	}
	// The cluster's own key stays the administrator, and a user cannot
	// manage users.
	if res, _ := b.upload(t, "?overwriteMode=IgnoreIfExists", "Perm.Probe.1.0.0.zip", []byte("probe")); !allowed(res.StatusCode) {
		t.Errorf("admin push: %d", res.StatusCode)
	}
	ub, _ := json.Marshal(octopusapi.User{Username: "x"})
	if res, _ := b.do(t, http.MethodPost, octopusapi.UsersPath, bytes.NewReader(ub), map[string]string{octopusapi.HeaderAPIKey: key}); res.StatusCode != http.StatusForbidden {
		t.Errorf("a user creating users: %d, want 403", res.StatusCode)
	}
	if res, _ := b.do(t, http.MethodGet, "/api/users/me", nil, map[string]string{octopusapi.HeaderAPIKey: "API-NOSUCHKEY000000000000000000000"}); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("unknown key: %d, want 401", res.StatusCode)
	}
	res, body = b.do(t, http.MethodGet, "/api/users/me/permissions", nil, map[string]string{octopusapi.HeaderAPIKey: key})
	var set octopusapi.UserPermissionSet
	if res.StatusCode != http.StatusOK || json.Unmarshal(body, &set) != nil || len(set.SpacePermissions[octopusapi.PermissionBuiltInFeedPush]) != 0 || set.Id != "Users-2" {
		t.Errorf("permissions after the revoke: %d %s", res.StatusCode, body)
	}
}

// With the shared mode every node sees a change at once.
func TestPermissionCacheShared(t *testing.T) {
	shared := func(c *Config) { c.PermissionCache = PermissionCacheShared; c.PermissionCacheTTL = time.Hour }
	a := newTestNode(t, nil, shared)
	b := newTestNode(t, a, shared)
	key, grant := publisher(t, a)
	if s, _ := pushAs(t, b, key); !allowed(s) {
		t.Fatalf("push through B before the revoke: %d", s)
	}
	if s, how := pushAs(t, b, key); !allowed(s) || !strings.HasPrefix(how, "hit") {
		t.Fatalf("second push through B: %d (%s), want a cache hit", s, how)
	}
	if res, body := a.do(t, http.MethodDelete, octopusapi.ScopedUserRolesPath+"/"+grant, nil, nil); res.StatusCode != http.StatusOK {
		t.Fatalf("revoke: %d %s", res.StatusCode, body)
	}
	if s, how := pushAs(t, b, key); s != http.StatusForbidden {
		t.Fatalf("node B after a revoke through A, shared cache: %d (%s), want 403 at once", s, how)
	}
	if _, err := New(Config{ID: "x", Name: "x", DB: a.db, Packages: a.pkgs, APIKeys: []string{testKey}, PermissionCache: "sometimes"}); err == nil || !strings.Contains(err.Error(), "permission cache") {
		t.Errorf("New accepted permission cache mode %q: %v", "sometimes", err)
	}
}

// userWithRoles creates a user with an API key, in a team of its own
// granted roles in Spaces-1 (none: a user without roles); it returns the
// key.
func userWithRoles(t *testing.T, tn *testNode, name string, roles ...string) string {
	t.Helper()
	var u octopusapi.User
	postJSON(t, tn, octopusapi.UsersPath, octopusapi.User{Username: name, DisplayName: name, IsService: true}, &u)
	var k octopusapi.APIKey
	postJSON(t, tn, octopusapi.UserPath(u.Id)+"/apikeys", octopusapi.APIKey{Purpose: "test"}, &k)
	var team octopusapi.Team
	postJSON(t, tn, octopusapi.TeamsPath, octopusapi.Team{Name: name, SpaceId: "Spaces-1", MemberUserIds: []string{u.Id}}, &team)
	for _, role := range roles {
		var sr octopusapi.ScopedUserRole
		postJSON(t, tn, octopusapi.ScopedUserRolesPath, octopusapi.ScopedUserRole{TeamId: team.Id, UserRoleId: role, SpaceId: "Spaces-1"}, &sr)
	}
	return k.ApiKey
}

// Each endpoint asks for the permission Octopus asks for, and each
// built-in role grants what Octopus's documentation says it grants: a user
// without roles may change nothing (before, only pushing was checked, so
// such a user could delete packages, drain nodes, delete node rows and
// create or cancel tasks). The requests aim at things that do not exist
// or are malformed, so an allowed one answers 404 or 400 and changes
// nothing; a refused one answers 403 naming the missing permission.
func TestPermissionMatrix(t *testing.T) {
	tn := newTestNode(t, nil)
	if resp, body := tn.upload(t, "", "Perm.Matrix.1.0.0.zip", []byte("matrix")); resp.StatusCode != http.StatusCreated {
		t.Fatalf("upload = %d %s", resp.StatusCode, body)
	}
	type endpoint struct {
		name, method, path, body, perm string
	}
	push, ct := multipartBody(t, "file", "Perm.Matrix.1.0.0.zip", []byte("matrix"))
	pushBody, _ := io.ReadAll(push)
	endpoints := []endpoint{
		{"list packages", http.MethodGet, "/api/Spaces-1/packages", "", octopusapi.PermissionFeedView},
		{"search feed", http.MethodGet, "/api/Spaces-1/feeds/feeds-builtin/packages/search?term=Perm", "", octopusapi.PermissionFeedView},
		{"download package", http.MethodGet, "/api/Spaces-1/packages/" + octopusapi.PackageResourceID("Perm.Matrix", "1.0.0") + "/raw", "", octopusapi.PermissionBuiltInFeedDownload},
		{"push package", http.MethodPost, "/api/Spaces-1/packages/raw?overwriteMode=IgnoreIfExists", string(pushBody), octopusapi.PermissionBuiltInFeedPush},
		{"replace package", http.MethodPost, "/api/Spaces-1/packages/raw?overwriteMode=OverwriteExisting", string(pushBody), octopusapi.PermissionBuiltInFeedPush}, // asked first; then BuiltInFeedAdminister, which every built-in role with push also grants
		{"delete package", http.MethodDelete, "/api/Spaces-1/packages/" + octopusapi.PackageResourceID("No.Such", "9.9.9"), "", octopusapi.PermissionBuiltInFeedAdminister},
		{"list tasks", http.MethodGet, "/api/tasks", "", octopusapi.PermissionTaskView},
		{"create task", http.MethodPost, "/api/Spaces-1/tasks", `{"Name":"NoSuchKind"}`, octopusapi.PermissionTaskCreate},
		{"cancel task", http.MethodPost, "/api/tasks/ServerTasks-999999/cancel", "", octopusapi.PermissionTaskCancel},
		{"work", http.MethodPost, "/api/Spaces-1/octoha/work?ms=-1", "", octopusapi.PermissionTaskCreate},
		{"drain node", http.MethodPut, "/api/octopusservernodes/OctopusServerNodes-99", `{"IsInMaintenanceMode":true}`, octopusapi.PermissionConfigureServer},
		{"delete node", http.MethodDelete, "/api/octopusservernodes/OctopusServerNodes-99", "", octopusapi.PermissionConfigureServer},
	}
	// What each role may do, from Octopus's documentation of the built-in
	// roles (not from roles.go's table).
	feed := []string{"list packages", "search feed", "download package", "push package", "replace package", "delete package"}
	tasks := []string{"list tasks", "create task", "cancel task", "work"}
	roles := []struct {
		name  string
		roles []string
		may   []string
	}{
		{"no roles", nil, nil},
		{"Package publisher", []string{octopusapi.RolePackagePublisher}, feed},
		{"Environment viewer", []string{octopusapi.RoleEnvironmentViewer}, []string{"list tasks"}},
		{"Project deployer", []string{octopusapi.RoleProjectDeployer}, append([]string{"list packages", "search feed"}, tasks...)},
		{"Space manager", []string{octopusapi.RoleSpaceManager}, append(append([]string{}, feed...), tasks...)},
		{"System manager", []string{octopusapi.RoleSystemManager}, append([]string{"drain node", "delete node"}, tasks...)},
	}
	var matrix strings.Builder
	for i, role := range roles {
		key := userWithRoles(t, tn, fmt.Sprintf("user%d", i), role.roles...)
		may := map[string]bool{}
		for _, e := range role.may {
			may[e] = true
		}
		fmt.Fprintf(&matrix, "%-19s", role.name)
		for _, e := range endpoints {
			hdr := map[string]string{octopusapi.HeaderAPIKey: key}
			if strings.HasPrefix(e.body, "--") {
				hdr["Content-Type"] = ct
			}
			var body io.Reader
			if e.body != "" {
				body = strings.NewReader(e.body)
			}
			resp, got := tn.do(t, e.method, e.path, body, hdr)
			fmt.Fprintf(&matrix, " %s=%d", e.name, resp.StatusCode)
			switch {
			case may[e.name] && (resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusUnauthorized):
				t.Errorf("%s: %s = %d %s, want it allowed", role.name, e.name, resp.StatusCode, got)
			case !may[e.name] && resp.StatusCode != http.StatusForbidden:
				t.Errorf("%s: %s = %d %s, want 403", role.name, e.name, resp.StatusCode, got)
			case !may[e.name] && !strings.Contains(string(got), "Missing permission: "+e.perm):
				t.Errorf("%s: %s: 403 body %s does not name %s", role.name, e.name, got, e.perm)
			}
		}
		matrix.WriteString("\n")
	}
	t.Logf("role → endpoint=status:\n%s", matrix.String())
	// The cluster's own key (the harness's) may do everything.
	for _, e := range endpoints {
		hdr := map[string]string{}
		if strings.HasPrefix(e.body, "--") {
			hdr["Content-Type"] = ct
		}
		var body io.Reader
		if e.body != "" {
			body = strings.NewReader(e.body)
		}
		if resp, got := tn.do(t, e.method, e.path, body, hdr); resp.StatusCode == http.StatusForbidden {
			t.Errorf("cluster key: %s = 403 %s", e.name, got)
		}
	}
}
