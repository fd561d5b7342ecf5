package node

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/octoha/octoha/fakes/api"
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
	var u api.User
	postJSON(t, tn, api.UsersPath, api.User{Username: "pusher", DisplayName: "Pusher", IsService: true}, &u)
	var k api.APIKey
	postJSON(t, tn, api.UserPath(u.Id)+"/apikeys", api.APIKey{Purpose: "test"}, &k)
	if !strings.HasPrefix(k.ApiKey, "API-") || k.UserId != u.Id {
		t.Fatalf("API key answer %+v", k)
	}
	var team api.Team
	postJSON(t, tn, api.TeamsPath, api.Team{Name: "Publishers", SpaceId: "Spaces-1", MemberUserIds: []string{u.Id}}, &team)
	var sr api.ScopedUserRole
	postJSON(t, tn, api.ScopedUserRolesPath, api.ScopedUserRole{TeamId: team.Id, UserRoleId: api.RolePackagePublisher, SpaceId: "Spaces-1"}, &sr)
	return k.ApiKey, sr.Id
}

// pushAs uploads one small package as the user (IgnoreIfExists, so a
// permitted push answers 201 or 200) and returns the status and how the
// node decided.
func pushAs(t *testing.T, tn *testNode, key string) (int, string) {
	t.Helper()
	body, ct := multipartBody(t, "file", "Perm.Probe.1.0.0.zip", []byte("probe"))
	res, _ := tn.do(t, http.MethodPost, "/api/Spaces-1/packages/raw?overwriteMode=IgnoreIfExists", body, map[string]string{"Content-Type": ct, api.HeaderAPIKey: key})
	return res.StatusCode, res.Header.Get(api.HeaderPermissionCache)
}

func allowed(status int) bool { return status == http.StatusCreated || status == http.StatusOK }

// The seed's per-node cache: a revoke through node A denies at once on A,
// while B keeps answering from its cache until the TTL runs out.
func TestPermissionCacheInvalidatedOnlyWhereChanged(t *testing.T) {
	ttl := 700 * time.Millisecond
	var logs syncBuffer
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
	res, body := a.do(t, http.MethodDelete, api.ScopedUserRolesPath+"/"+grant, nil, nil)
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
	ub, _ := json.Marshal(api.User{Username: "x"})
	if res, _ := b.do(t, http.MethodPost, api.UsersPath, bytes.NewReader(ub), map[string]string{api.HeaderAPIKey: key}); res.StatusCode != http.StatusForbidden {
		t.Errorf("a user creating users: %d, want 403", res.StatusCode)
	}
	if res, _ := b.do(t, http.MethodGet, "/api/users/me", nil, map[string]string{api.HeaderAPIKey: "API-NOSUCHKEY000000000000000000000"}); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("unknown key: %d, want 401", res.StatusCode)
	}
	res, body = b.do(t, http.MethodGet, "/api/users/me/permissions", nil, map[string]string{api.HeaderAPIKey: key})
	var set api.UserPermissionSet
	if res.StatusCode != http.StatusOK || json.Unmarshal(body, &set) != nil || len(set.SpacePermissions[api.PermissionBuiltInFeedPush]) != 0 || set.Id != "Users-2" {
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
	if res, body := a.do(t, http.MethodDelete, api.ScopedUserRolesPath+"/"+grant, nil, nil); res.StatusCode != http.StatusOK {
		t.Fatalf("revoke: %d %s", res.StatusCode, body)
	}
	if s, how := pushAs(t, b, key); s != http.StatusForbidden {
		t.Fatalf("node B after a revoke through A, shared cache: %d (%s), want 403 at once", s, how)
	}
	if _, err := New(Config{ID: "x", Name: "x", DB: a.db, Packages: a.pkgs, APIKeys: []string{testKey}, PermissionCache: "sometimes"}); err == nil || !strings.Contains(err.Error(), "permission cache") {
		t.Errorf("New accepted permission cache mode %q: %v", "sometimes", err)
	}
}

// syncBuffer is a bytes.Buffer safe for a logger's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
