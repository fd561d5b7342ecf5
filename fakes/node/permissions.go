package node

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/octoha/octoha/fakes/store"
	"github.com/octoha/octoha/octopusapi"
)

// Users, API keys, teams, scoped roles and the per-node permission cache.
// The seed: each node caches user permissions, and after a change "the
// local cache is only invalidated on the node where the change was made";
// other nodes answer from their cache until it expires. PermissionCacheShared
// stands for an Octopus without the issue: every node reads the permission
// epoch (the last change's number) from the database before it answers
// and drops its cache when the epoch moved.
//
// Simplified from Octopus: managing users, teams and roles needs the
// cluster's own API key (the administrator), not UserEdit/TeamEdit
// permissions. Every other endpoint asks for the permission Octopus asks
// for, granted by the built-in roles in roles.go.

// Permission cache modes.
const (
	PermissionCacheLocal  = "local"
	PermissionCacheShared = "shared"
)

// DefaultPermissionCacheTTL is how long a node trusts a cached permission
// set it did not invalidate itself.
const DefaultPermissionCacheTTL = 5 * time.Minute

// principal is who a request's API key belongs to.
type principal struct {
	admin bool
	user  store.User
}

type principalKey struct{}

func principalOf(r *http.Request) principal {
	p, _ := r.Context().Value(principalKey{}).(principal)
	return p
}

// hashKey is how API keys are stored: never the key itself.
func hashKey(key string) string {
	h := sha256.Sum256([]byte(key))
	return hex.EncodeToString(h[:])
}

// userID is a stored user's Octopus ID: Users-1 is the administrator, so
// stored users start at Users-2.
func userID(seq int64) string { return "Users-" + strconv.FormatInt(seq+1, 10) }

func userSeq(id string) (int64, bool) {
	n, ok := octopusapi.IDNumber(id, "Users")
	return n - 1, ok && n > 1
}

// permCache is a node's cache of users' permission sets.
type permCache struct {
	mu      sync.Mutex
	entries map[int64]permEntry
	epoch   int64
}

type permEntry struct {
	perms  permSet
	loaded time.Time
}

// permSet maps each permission a user holds to the spaces it holds in.
type permSet map[string]map[string]bool

// has reports whether the set grants perm in space; a system permission
// holds whatever the space.
func (ps permSet) has(perm, space string) bool {
	if systemPermissions[perm] {
		return len(ps[perm]) > 0
	}
	return ps[perm][space]
}

// invalidate drops every cached set: a change was made through this node.
func (c *permCache) invalidate() {
	c.mu.Lock()
	c.entries = nil
	c.mu.Unlock()
}

// permissions returns u's permissions as this node sees them, and how it
// decided ("miss" or "hit; age=…").
func (n *Node) permissions(ctx context.Context, u store.User) (permSet, string, error) {
	c := &n.perms
	if n.cfg.PermissionCache == PermissionCacheShared {
		epoch, err := n.cfg.DB.PermissionEpoch(ctx)
		if err != nil {
			return nil, "", err
		}
		c.mu.Lock()
		if epoch != c.epoch {
			c.entries, c.epoch = nil, epoch
		}
		c.mu.Unlock()
	}
	now := time.Now()
	c.mu.Lock()
	e, ok := c.entries[u.Seq]
	c.mu.Unlock()
	if ok && now.Sub(e.loaded) < n.cfg.PermissionCacheTTL {
		return e.perms, fmt.Sprintf("hit; age=%.3fs", now.Sub(e.loaded).Seconds()), nil
	}
	roles, err := n.cfg.DB.UserRoles(ctx, u.Seq)
	if err != nil {
		return nil, "", err
	}
	e = permEntry{perms: permSet{}, loaded: now}
	for _, r := range roles {
		for _, p := range rolePermissions[r.RoleID] {
			if e.perms[p] == nil {
				e.perms[p] = map[string]bool{}
			}
			e.perms[p][r.SpaceID] = true
		}
	}
	c.mu.Lock()
	if c.entries == nil {
		c.entries = map[int64]permEntry{}
	}
	c.entries[u.Seq] = e
	c.mu.Unlock()
	return e.perms, "miss", nil
}

// may answers 403 (and false) unless the request's principal holds perm
// in space ("" for the global routes: the default space, the only one).
func (n *Node) may(w http.ResponseWriter, r *http.Request, perm, space string) bool {
	p := principalOf(r)
	if p.admin {
		return true
	}
	if space == "" {
		space = octopusapi.DefaultSpaceID
	}
	perms, how, err := n.permissions(r.Context(), p.user)
	if err != nil {
		n.dbError(w, "reading the user's permissions", err)
		return false
	}
	w.Header().Set(octopusapi.HeaderPermissionCache, how)
	if perms.has(perm, space) {
		return true
	}
	if r.ContentLength != 0 {
		w.Header().Set("Connection", "close") // the body is not read
	}
	writeError(w, http.StatusForbidden, "You do not have permission to perform this action. Please contact your Octopus administrator. Missing permission: "+perm,
		[]string{"Missing permission: " + perm})
	return false
}

// mayPush is may for BuiltInFeedPush.
func (n *Node) mayPush(w http.ResponseWriter, r *http.Request, space string) bool {
	return n.may(w, r, octopusapi.PermissionBuiltInFeedPush, space)
}

// authenticate finds the principal of a request's key: the cluster's own
// keys are the administrator, any other must be a stored user's.
func (n *Node) authenticate(w http.ResponseWriter, r *http.Request, key string) (*http.Request, bool) {
	if n.validKey(key) {
		return r.WithContext(context.WithValue(r.Context(), principalKey{}, principal{admin: true})), true
	}
	u, err := n.cfg.DB.UserByAPIKey(r.Context(), hashKey(key))
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusUnauthorized, "The API key you provided was not valid. Please double-check your API key and try again.", nil)
		return r, false
	case err != nil:
		n.dbError(w, "checking the API key", err)
		return r, false
	}
	return r.WithContext(context.WithValue(r.Context(), principalKey{}, principal{user: u})), true
}

func adminOnly(w http.ResponseWriter, r *http.Request) bool {
	if principalOf(r).admin {
		return true
	}
	writeError(w, http.StatusForbidden, "You do not have permission to perform this action. Please contact your Octopus administrator. Missing permission: UserEdit or TeamEdit", nil)
	return false
}

func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "The request body is not valid JSON.", []string{err.Error()})
		return false
	}
	return true
}

func (n *Node) userResource(u store.User) octopusapi.User {
	id := userID(u.Seq)
	return octopusapi.User{Id: id, Username: u.Username, DisplayName: u.DisplayName, IsActive: true, IsService: u.IsService,
		Links: octopusapi.Links{"Self": octopusapi.UserPath(id), "Permissions": octopusapi.UserPath(id) + "/permissions", "ApiKeys": octopusapi.UserPath(id) + "/apikeys"}}
}

func adminResource() octopusapi.User {
	return octopusapi.User{Id: octopusapi.AdminUserID, Username: "octoha", DisplayName: "octoha API key user", IsActive: true, IsService: true,
		Links: octopusapi.Links{"Self": octopusapi.UserPath(octopusapi.AdminUserID), "Spaces": octopusapi.UserPath(octopusapi.AdminUserID) + "/spaces"}}
}

// routeUsers handles /api/users/...
func (n *Node) routeUsers(w http.ResponseWriter, r *http.Request, seg []string) {
	p := principalOf(r)
	if len(seg) == 0 {
		if allow(w, r, http.MethodPost) && adminOnly(w, r) {
			n.createUser(w, r)
		}
		return
	}
	id := seg[0]
	if strings.EqualFold(id, "me") {
		id = octopusapi.AdminUserID
		if !p.admin {
			id = userID(p.user.Seq)
		}
	}
	if len(seg) == 2 && strings.EqualFold(seg[1], "spaces") {
		if allow(w, r, http.MethodGet) {
			writeJSON(w, http.StatusOK, []octopusapi.Space{defaultSpace()})
		}
		return
	}
	if id == octopusapi.AdminUserID {
		if len(seg) == 1 && allow(w, r, http.MethodGet) {
			writeJSON(w, http.StatusOK, adminResource())
		} else if len(seg) != 1 {
			n.notFound(w, r)
		}
		return
	}
	seq, ok := userSeq(id)
	if !ok || (!p.admin && seq != p.user.Seq) {
		writeError(w, http.StatusNotFound, "The user "+id+" does not exist.", nil)
		return
	}
	u, err := n.cfg.DB.User(r.Context(), seq)
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, "The user "+id+" does not exist.", nil)
		return
	case err != nil:
		n.dbError(w, "reading user "+id, err)
		return
	}
	switch {
	case len(seg) == 1:
		if allow(w, r, http.MethodGet) {
			writeJSON(w, http.StatusOK, n.userResource(u))
		}
	case len(seg) == 2 && strings.EqualFold(seg[1], "apikeys"):
		if allow(w, r, http.MethodPost) {
			n.createAPIKey(w, r, u)
		}
	case len(seg) == 2 && strings.EqualFold(seg[1], "permissions"):
		if allow(w, r, http.MethodGet) {
			perms, how, err := n.permissions(r.Context(), u)
			if err != nil {
				n.dbError(w, "reading the user's permissions", err)
				return
			}
			set := octopusapi.UserPermissionSet{Id: id, SpacePermissions: map[string][]octopusapi.UserPermissionRestriction{}}
			for perm, spaces := range perms {
				for space := range spaces {
					set.SpacePermissions[perm] = append(set.SpacePermissions[perm], octopusapi.UserPermissionRestriction{SpaceId: space})
				}
			}
			w.Header().Set(octopusapi.HeaderPermissionCache, how)
			writeJSON(w, http.StatusOK, set)
		}
	default:
		n.notFound(w, r)
	}
}

func (n *Node) createUser(w http.ResponseWriter, r *http.Request) {
	var in octopusapi.User
	if !decodeBody(w, r, &in) {
		return
	}
	if in.Username == "" {
		writeError(w, http.StatusBadRequest, "A user needs a Username.", nil)
		return
	}
	u, err := n.cfg.DB.CreateUser(r.Context(), store.User{Username: in.Username, DisplayName: in.DisplayName, IsService: in.IsService})
	switch {
	case errors.Is(err, store.ErrExists):
		writeError(w, http.StatusBadRequest, "A user with the username "+in.Username+" already exists.", nil)
	case err != nil:
		n.dbError(w, "creating a user", err)
	default:
		n.log.Info("user created", "user", userID(u.Seq), "username", u.Username)
		writeJSON(w, http.StatusCreated, n.userResource(u))
	}
}

// createAPIKey makes a key in Octopus's format; only its hash is stored,
// and the key is shown once, in this answer. Never logged.
func (n *Node) createAPIKey(w http.ResponseWriter, r *http.Request, u store.User) {
	var in octopusapi.APIKey
	if !decodeBody(w, r, &in) {
		return
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	key := "API-" + string(b)
	now := time.Now().UTC()
	seq, err := n.cfg.DB.AddAPIKey(r.Context(), u.Seq, hashKey(key), in.Purpose, now)
	if err != nil {
		n.dbError(w, "creating an API key", err)
		return
	}
	n.log.Info("API key created", "user", userID(u.Seq), "purpose", in.Purpose)
	writeJSON(w, http.StatusCreated, octopusapi.APIKey{Id: "APIKeys-" + strconv.FormatInt(seq, 10), Purpose: in.Purpose, UserId: userID(u.Seq), ApiKey: key, Created: now})
}

// routeTeams handles POST /api/teams.
func (n *Node) routeTeams(w http.ResponseWriter, r *http.Request, seg []string) {
	if len(seg) != 0 {
		n.notFound(w, r)
		return
	}
	if !allow(w, r, http.MethodPost) || !adminOnly(w, r) {
		return
	}
	var in octopusapi.Team
	if !decodeBody(w, r, &in) {
		return
	}
	t := store.Team{Name: in.Name, SpaceID: in.SpaceId}
	for _, id := range in.MemberUserIds {
		seq, ok := userSeq(id)
		if !ok {
			writeError(w, http.StatusBadRequest, "MemberUserIds: "+id+" is not a user this server created.", nil)
			return
		}
		t.Members = append(t.Members, seq)
	}
	t, err := n.cfg.DB.CreateTeam(r.Context(), t, n.cfg.ID)
	if err != nil {
		n.dbError(w, "creating a team", err)
		return
	}
	n.perms.invalidate()
	in.Id = "Teams-" + strconv.FormatInt(t.Seq, 10)
	n.log.Info("team created", "team", in.Id, "members", len(t.Members))
	writeJSON(w, http.StatusCreated, in)
}

// routeScopedRoles handles POST /api/scopeduserroles and DELETE
// /api/scopeduserroles/{id}: grants and revokes. Either invalidates this
// node's permission cache, and only this node's.
func (n *Node) routeScopedRoles(w http.ResponseWriter, r *http.Request, seg []string) {
	if !adminOnly(w, r) {
		return
	}
	switch {
	case len(seg) == 0:
		if !allow(w, r, http.MethodPost) {
			return
		}
		var in octopusapi.ScopedUserRole
		if !decodeBody(w, r, &in) {
			return
		}
		team, ok := octopusapi.IDNumber(in.TeamId, "Teams")
		if !ok || in.UserRoleId == "" {
			writeError(w, http.StatusBadRequest, "A scoped user role needs a TeamId (Teams-N) and a UserRoleId.", nil)
			return
		}
		if in.SpaceId == "" {
			in.SpaceId = octopusapi.DefaultSpaceID
		}
		sr, err := n.cfg.DB.AddScopedRole(r.Context(), store.ScopedRole{TeamSeq: team, RoleID: in.UserRoleId, SpaceID: in.SpaceId}, n.cfg.ID)
		switch {
		case errors.Is(err, store.ErrNotFound):
			writeError(w, http.StatusBadRequest, "The team "+in.TeamId+" does not exist.", nil)
			return
		case err != nil:
			n.dbError(w, "granting a role", err)
			return
		}
		n.perms.invalidate()
		in.Id = "ScopedUserRoles-" + strconv.FormatInt(sr.Seq, 10)
		n.log.Info("role granted", "scopedUserRole", in.Id, "team", in.TeamId, "role", in.UserRoleId)
		writeJSON(w, http.StatusCreated, in)
	case len(seg) == 1:
		if !allow(w, r, http.MethodDelete) {
			return
		}
		seq, ok := octopusapi.IDNumber(seg[0], "ScopedUserRoles")
		err := store.ErrNotFound
		if ok {
			err = n.cfg.DB.DeleteScopedRole(r.Context(), seq, n.cfg.ID)
		}
		switch {
		case errors.Is(err, store.ErrNotFound):
			writeError(w, http.StatusNotFound, "The scoped user role "+seg[0]+" does not exist.", nil)
			return
		case err != nil:
			n.dbError(w, "revoking a role", err)
			return
		}
		n.perms.invalidate()
		n.log.Info("role revoked", "scopedUserRole", seg[0])
		writeJSON(w, http.StatusOK, map[string]any{})
	default:
		n.notFound(w, r)
	}
}
