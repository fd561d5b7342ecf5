package octopusapi

import (
	"strconv"
	"strings"
	"time"
)

// Users, API keys, teams and scoped user roles, in the shape of Octopus's
// resources (go-octopusdeploy's users, teams and userroles packages) but
// simplified: a team holds users only, a scoped user role is scoped to a
// space only (no environments, projects or tenants), and a user's
// permissions list only the permissions the fake checks.

// Paths.
const (
	UsersPath           = "/api/users"
	TeamsPath           = "/api/teams"
	ScopedUserRolesPath = "/api/scopeduserroles"
)

// AdminUserID is the user behind the cluster's own API keys (the
// administrator); users created through the API start at Users-2.
const AdminUserID = "Users-1"

// Permissions the fake checks, by the names Octopus uses in its 403
// bodies ("Missing permission: BuiltInFeedPush") and its
// UserPermissionSet. Descriptions from Octopus's "Default permissions for
// built-in user roles" (octopus.com/docs/security/users-and-teams/default-permissions).
const (
	// PermissionBuiltInFeedPush: push new packages to the built-in feed.
	PermissionBuiltInFeedPush = "BuiltInFeedPush"
	// PermissionBuiltInFeedAdminister: replace or delete packages in the
	// built-in feed.
	PermissionBuiltInFeedAdminister = "BuiltInFeedAdminister"
	// PermissionBuiltInFeedDownload: retrieve the contents of packages in
	// the built-in feed.
	PermissionBuiltInFeedDownload = "BuiltInFeedDownload"
	// PermissionFeedView: view package feeds and the packages in them.
	PermissionFeedView = "FeedView"
	// PermissionTaskView, TaskCreate, TaskCancel: view summary-level
	// information of tasks, explicitly create (run) them, cancel them.
	PermissionTaskView   = "TaskView"
	PermissionTaskCreate = "TaskCreate"
	PermissionTaskCancel = "TaskCancel"
	// PermissionMachineView, MachineCreate: view and create machines.
	PermissionMachineView   = "MachineView"
	PermissionMachineCreate = "MachineCreate"
	// PermissionConfigureServer: configure server settings, a system
	// permission; the fake asks it for changing or deleting server nodes.
	PermissionConfigureServer = "ConfigureServer"
	// PermissionAdministerSystem: system-level functions, a system
	// permission (System administrator only).
	PermissionAdministerSystem = "AdministerSystem"
)

// Octopus's built-in user role IDs (those the fake models; roles.go in
// fakes/node says what each grants).
const (
	RolePackagePublisher    = "userroles-packagepublisher"
	RoleBuildServer         = "userroles-buildserver"
	RoleSpaceManager        = "userroles-spacemanager"
	RoleSystemAdministrator = "userroles-systemadministrator"
	RoleSystemManager       = "userroles-systemmanager"
	RoleProjectContributor  = "userroles-projectcontributor"
	RoleProjectDeployer     = "userroles-projectdeployer"
	RoleDeploymentCreator   = "userroles-deploymentcreator"
	RoleEnvironmentViewer   = "userroles-environmentviewer"
	RoleEnvironmentManager  = "userroles-environmentmanager"
)

// HeaderPermissionCache says how the answering node decided a permission:
// "hit; age=1.5s" from its cache, or "miss" (read from the database). Real
// Octopus nodes do not send it.
const HeaderPermissionCache = "X-Octoha-Permission-Cache"

// User is a user resource.
type User struct {
	Id          string `json:"Id"`
	Username    string `json:"Username"`
	DisplayName string `json:"DisplayName"`
	IsActive    bool   `json:"IsActive"`
	IsService   bool   `json:"IsService"`
	Links       Links  `json:"Links,omitempty"`
}

// APIKey is an API key resource; ApiKey holds the key only in the answer
// to its creation.
type APIKey struct {
	Id      string    `json:"Id"`
	Purpose string    `json:"Purpose"`
	UserId  string    `json:"UserId"`
	ApiKey  string    `json:"ApiKey,omitempty"`
	Created time.Time `json:"Created"`
}

// Team is a team resource.
type Team struct {
	Id            string   `json:"Id"`
	Name          string   `json:"Name"`
	SpaceId       string   `json:"SpaceId,omitempty"`
	MemberUserIds []string `json:"MemberUserIds"`
}

// ScopedUserRole grants a user role to a team within a space.
type ScopedUserRole struct {
	Id         string `json:"Id"`
	TeamId     string `json:"TeamId"`
	UserRoleId string `json:"UserRoleId"`
	SpaceId    string `json:"SpaceId,omitempty"`
}

// UserPermissionRestriction is one space a permission holds in.
type UserPermissionRestriction struct {
	SpaceId string `json:"SpaceId"`
}

// UserPermissionSet is what GET /api/users/{id}/permissions answers: the
// permissions the answering node holds for the user.
type UserPermissionSet struct {
	Id               string                                 `json:"Id"`
	SpacePermissions map[string][]UserPermissionRestriction `json:"SpacePermissions"`
}

// UserPath returns the path of a user resource.
func UserPath(id string) string { return UsersPath + "/" + id }

// IDNumber returns N of an ID "<prefix>-N" (prefix compared in any case).
func IDNumber(id, prefix string) (int64, bool) {
	if len(id) <= len(prefix)+1 || !strings.EqualFold(id[:len(prefix)+1], prefix+"-") {
		return 0, false
	}
	n, err := strconv.ParseInt(id[len(prefix)+1:], 10, 64)
	return n, err == nil && n > 0
}
