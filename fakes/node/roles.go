package node

import "github.com/octoha/octoha/octopusapi"

// Octopus's built-in user roles, reduced to the permissions this fake
// checks, and the permission each endpoint needs. From Octopus's "Default
// permissions for built-in user roles"
// (octopus.com/docs/security/users-and-teams/default-permissions): e.g.
// Package publisher grants BuiltInFeedPush, BuiltInFeedAdminister,
// BuiltInFeedDownload and FeedView, and nothing about tasks or nodes.
//
// Endpoint → permission (router.go and the handlers ask for them):
//
//	GET packages, package, feeds, versions   FeedView
//	GET package /raw (download)              BuiltInFeedDownload
//	POST upload, delta; GET delta-signature  BuiltInFeedPush
//	DELETE package                           BuiltInFeedAdminister
//	GET tasks, task, details, raw log        TaskView
//	POST tasks; POST octoha/work             TaskCreate
//	POST tasks/{id}/cancel                   TaskCancel
//	PUT, DELETE octopusservernodes/{id}      ConfigureServer (system)
//	GET machines/{id}                        MachineView
//	POST machines                            MachineCreate
//
// Reading the server nodes, the root, spaces and the user's own resource
// needs only a valid key. Users, teams and roles are managed with the
// cluster's own key (the administrator), as before. The cluster's keys
// hold every permission: the harness's own calls (drain, tasks, cleanup)
// use them.
//
// Octopus's documentation lists server nodes and maintenance mode under
// AdministerSystem (System administrator only); the fake asks for
// ConfigureServer (System administrator and System manager), as the issue
// that modelled it chose. Switching is one constant below.

// nodeChangePermission is what PUT and DELETE of a server node need.
const nodeChangePermission = octopusapi.PermissionConfigureServer

// systemPermissions are granted system-wide: a role holding one grants it
// whatever space its team is scoped to.
var systemPermissions = map[string]bool{
	octopusapi.PermissionConfigureServer: true, octopusapi.PermissionAdministerSystem: true,
}

var (
	feedAdmin = []string{octopusapi.PermissionBuiltInFeedPush, octopusapi.PermissionBuiltInFeedAdminister, octopusapi.PermissionBuiltInFeedDownload, octopusapi.PermissionFeedView}
	systemAll = []string{octopusapi.PermissionConfigureServer, octopusapi.PermissionTaskView, octopusapi.PermissionTaskCreate, octopusapi.PermissionTaskCancel}
)

// rolePermissions maps each modelled built-in role to the checked
// permissions it grants.
var rolePermissions = map[string][]string{
	octopusapi.RolePackagePublisher: feedAdmin,
	octopusapi.RoleBuildServer:      append([]string{octopusapi.PermissionTaskView}, feedAdmin...),
	octopusapi.RoleSpaceManager: append([]string{octopusapi.PermissionTaskView, octopusapi.PermissionTaskCreate, octopusapi.PermissionTaskCancel,
		octopusapi.PermissionMachineView, octopusapi.PermissionMachineCreate}, feedAdmin...),
	octopusapi.RoleSystemAdministrator: append([]string{octopusapi.PermissionAdministerSystem}, systemAll...),
	octopusapi.RoleSystemManager:       systemAll,
	octopusapi.RoleProjectContributor:  {octopusapi.PermissionFeedView, octopusapi.PermissionTaskView, octopusapi.PermissionTaskCreate, octopusapi.PermissionMachineView},
	octopusapi.RoleProjectDeployer:     {octopusapi.PermissionFeedView, octopusapi.PermissionTaskView, octopusapi.PermissionTaskCreate, octopusapi.PermissionTaskCancel, octopusapi.PermissionMachineView},
	octopusapi.RoleDeploymentCreator:   {octopusapi.PermissionTaskView},
	octopusapi.RoleEnvironmentViewer:   {octopusapi.PermissionTaskView, octopusapi.PermissionMachineView},
	octopusapi.RoleEnvironmentManager:  {octopusapi.PermissionTaskView, octopusapi.PermissionTaskCreate, octopusapi.PermissionTaskCancel, octopusapi.PermissionMachineView, octopusapi.PermissionMachineCreate},
}
