package octopusapi

import (
	"net/url"
	"strings"
)

// Paths served by an Octopus Server node. Space-scoped paths take the space
// ID as their first format argument.
const (
	RootPath         = "/api"
	SpacesPath       = "/api/spaces"
	SpacesAllPath    = "/api/spaces/all"
	NodesPath        = "/api/octopusservernodes"
	NodesAllPath     = "/api/octopusservernodes/all"
	NodesSummaryPath = "/api/octopusservernodes/summary"
	PingPath         = "/api/octopusservernodes/ping"
	TasksPath        = "/api/tasks"
)

// DefaultSpaceID is the ID of the space every fresh Octopus instance has.
const DefaultSpaceID = "Spaces-1"

// DefaultSpaceName is the name of the default space.
const DefaultSpaceName = "Default"

// BuiltInFeedID is the feed that /packages/raw uploads land in.
const BuiltInFeedID = "feeds-builtin"

// Headers.
const (
	// HeaderAPIKey carries an Octopus API key.
	HeaderAPIKey = "X-Octopus-ApiKey"
	// HeaderNode names the node that served a response, so the harness can
	// see where a load balancer sent each request. Real Octopus nodes do not
	// send it; the harness then falls back to other evidence.
	HeaderNode = "X-Octoha-Node"
	// HeaderOp carries the harness's operation ID on requests, so node logs
	// and load-balancer logs can be joined with the history.
	HeaderOp = "X-Octoha-Op"
)

// Upload overwrite modes, as the query parameter overwriteMode spells them.
const (
	FailIfExists      = "FailIfExists"
	OverwriteExisting = "OverwriteExisting"
	IgnoreIfExists    = "IgnoreIfExists"
)

// NodePath returns the path of one node resource.
func NodePath(id string) string { return NodesPath + "/" + url.PathEscape(id) }

// SpacePath returns the path of a space's root document.
func SpacePath(spaceID string) string { return "/api/" + url.PathEscape(spaceID) }

// PackagesPath returns the path listing a space's built-in feed packages.
func PackagesPath(spaceID string) string { return SpacePath(spaceID) + "/packages" }

// PackagePath returns the path of one package's metadata.
func PackagePath(spaceID, id string) string {
	return PackagesPath(spaceID) + "/" + url.PathEscape(id)
}

// PackageRawPath returns the path of one package's bytes.
func PackageRawPath(spaceID, id string) string { return PackagePath(spaceID, id) + "/raw" }

// UploadPath returns the raw-upload path with the overwrite mode in the query,
// exactly as the official CLI sends it.
func UploadPath(spaceID, overwriteMode string) string {
	p := PackagesPath(spaceID) + "/raw"
	if overwriteMode != "" {
		p += "?overwriteMode=" + url.QueryEscape(overwriteMode)
	}
	return p
}

// WorkPath is the fake node's synthetic task endpoint (an octoha
// extension): POST with ms=<duration> holds one task slot.
func WorkPath(spaceID string) string { return SpacePath(spaceID) + "/octoha/work" }

// NodeDetailsPath is a node's details resource.
func NodeDetailsPath(id string) string { return NodePath(id) + "/details" }

// PackageResourceID is the ID Octopus gives a built-in feed package:
// "packages-<PackageId>.<Version>".
func PackageResourceID(packageID, version string) string {
	return "packages-" + packageID + "." + version
}

// SplitPackageResourceID reverses PackageResourceID. Because package IDs may
// contain dots, the split uses the version grammar.
func SplitPackageResourceID(id string) (packageID, version string, ok bool) {
	rest, found := strings.CutPrefix(id, "packages-")
	if !found {
		return "", "", false
	}
	pid, ver, err := splitIDVersion(rest)
	if err != nil {
		return "", "", false
	}
	return pid, ver, true
}

// FeedsPath returns the path of a space's feed collection.
func FeedsPath(spaceID string) string { return SpacePath(spaceID) + "/feeds" }

// FeedPath returns the path of one feed.
func FeedPath(spaceID, feedID string) string {
	return FeedsPath(spaceID) + "/" + url.PathEscape(feedID)
}

// FeedVersionsPath returns the path listing a feed's versions of one
// package (packageId in the query), as go-octopusdeploy's
// FeedSearchPackageVersions template expands it.
func FeedVersionsPath(spaceID, feedID string) string {
	return FeedPath(spaceID, feedID) + "/packages/versions"
}

// FeedSearchPath returns the path searching a feed's package IDs.
func FeedSearchPath(spaceID, feedID string) string {
	return FeedPath(spaceID, feedID) + "/packages/search"
}

// DeltaSignaturePath returns the path a client asks, before uploading
// version of packageID, for the Octodiff signature of the nearest earlier
// version.
func DeltaSignaturePath(spaceID, packageID, version string) string {
	return PackagesPath(spaceID) + "/" + url.PathEscape(packageID) + "/" + url.PathEscape(version) + "/delta-signature"
}

// DeltaUploadPath returns the path a delta against baseVersion is posted
// to, with the overwrite mode in the query as the official clients send it.
func DeltaUploadPath(spaceID, packageID, baseVersion, overwriteMode string) string {
	p := PackagesPath(spaceID) + "/" + url.PathEscape(packageID) + "/" + url.PathEscape(baseVersion) + "/delta"
	if overwriteMode != "" {
		p += "?overwriteMode=" + url.QueryEscape(overwriteMode)
	}
	return p
}

// SignatureSuffix ends the name of a cached Octodiff signature, which a
// node keeps next to the package it describes (see SignatureCachePath).
const SignatureSuffix = ".octosig"

// SignatureCachePath returns where the signature of the package file at
// pkgPath with SHA-1 hash is cached: the hash in the name means a cache
// never describes a replaced file.
func SignatureCachePath(pkgPath, hash string) string {
	return pkgPath + "." + strings.ToLower(hash) + SignatureSuffix
}
