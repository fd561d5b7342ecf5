package octopusapi

import (
	"encoding/json"
	"strings"
	"time"
)

// Links is the HAL-style link map every Octopus resource carries.
type Links map[string]string

// Root is the API root document (GET /api and /api/).
type Root struct {
	Application    string
	Version        string
	ApiVersion     string //nolint:revive // Octopus's spelling
	InstallationId string //nolint:revive
	Links          Links
}

// Space is a space resource.
type Space struct {
	Id                       string //nolint:revive // Octopus's spelling
	Name                     string
	Slug                     string
	Description              string
	IsDefault                bool
	TaskQueueStopped         bool
	SpaceManagersTeams       []string
	SpaceManagersTeamMembers []string
	Links                    Links
}

// Node is an OctopusServerNode resource, as listed, read, written and
// returned by the ping endpoint.
type Node struct {
	Id                  string //nolint:revive
	Name                string
	MaxConcurrentTasks  int
	IsInMaintenanceMode bool
	IsOffline           bool
	LastSeen            *time.Time `json:",omitempty"`
	Version             string     `json:",omitempty"`
	// RunningTaskCount is how many tasks the node holds (Executing or
	// Cancelling with it as ServerNode), from the shared queue.
	RunningTaskCount int
	// Rank is RankLeader or RankFollower (see the leader lease); "" when
	// the node's rank is unknown (the database is unreachable).
	Rank  string `json:",omitempty"`
	Links Links
}

// NodeUpdate is the body of PUT /api/octopusservernodes/{id}. Nil fields are
// left unchanged.
type NodeUpdate struct {
	Id                  string //nolint:revive
	Name                string `json:",omitempty"`
	IsInMaintenanceMode *bool  `json:",omitempty"`
	MaxConcurrentTasks  *int   `json:",omitempty"`
}

// NodeSummary is GET /api/octopusservernodes/summary.
type NodeSummary struct {
	Nodes []Node
	Links Links
}

// Package is a PackageFromBuiltInFeedResource.
type Package struct {
	Id               string //nolint:revive
	PackageId        string //nolint:revive
	Version          string
	Hash             string // SHA-1 of the file, lower-case hex
	PackageSizeBytes int64
	FeedId           string //nolint:revive
	NuGetPackageId   string //nolint:revive
	NuGetFeedId      string //nolint:revive
	FileExtension    string
	Title            string
	Summary          string
	Description      string
	Published        time.Time
	// ReleaseNotes is null when empty, as Octopus sends it; the official Go
	// client decodes this field into a time.Time and fails on "".
	ReleaseNotes                   *string
	PackageVersionBuildInformation any
	Links                          Links
}

// Error is Octopus's error body, returned with every 4xx and 5xx the node
// itself produces.
type Error struct {
	ErrorMessage  string
	Errors        []string
	FullException string         `json:",omitempty"`
	HelpText      string         `json:",omitempty"`
	HelpLink      string         `json:",omitempty"`
	Details       map[string]any `json:",omitempty"`
}

// ErrorText is what a client shows of an error answer: Octopus's message
// and its errors when body is an Error, else the start of the body.
func ErrorText(body []byte) string {
	var e Error
	if json.Unmarshal(body, &e) == nil && e.ErrorMessage != "" {
		if len(e.Errors) > 0 {
			return e.ErrorMessage + " [" + strings.Join(e.Errors, "; ") + "]"
		}
		return e.ErrorMessage
	}
	s := strings.TrimSpace(string(body))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// Page is a paged Octopus collection.
type Page[T any] struct {
	ItemType       string
	TotalResults   int
	ItemsPerPage   int
	NumberOfPages  int
	LastPageNumber int
	Items          []T
	Links          Links
}

// NewPage builds a page of items (already cut to [skip, skip+take)) with the
// counts Octopus reports.
func NewPage[T any](itemType string, items []T, total, skip, take int, self string) Page[T] {
	if items == nil {
		items = []T{}
	}
	pages := 1
	if take > 0 && total > 0 {
		// Not (total+take-1)/take: take may be as large as the client
		// asked (int32's max), and the sum would overflow a 32-bit int.
		pages = total / take
		if total%take != 0 {
			pages++
		}
	}
	return Page[T]{
		ItemType:       itemType,
		TotalResults:   total,
		ItemsPerPage:   take,
		NumberOfPages:  pages,
		LastPageNumber: pages - 1,
		Items:          items,
		Links:          Links{"Self": self},
	}
}

// Feed types.
const FeedTypeBuiltIn = "BuiltIn"

// BuiltInFeedName is the built-in feed's name in every space.
const BuiltInFeedName = "Octopus Server (built-in)"

// Feed is a FeedResource, as go-octopusdeploy decodes it (fields of the
// built-in feed only).
type Feed struct {
	Id                                   string //nolint:revive
	Name                                 string
	Slug                                 string
	FeedType                             string
	SpaceId                              string //nolint:revive
	DeletePackagesAssociatedWithReleases bool
	DeleteUnreleasedPackagesAfterDays    int
	DownloadAttempts                     int
	DownloadRetryBackoffSeconds          int
	IsBuiltInRepoSyncEnabled             bool
	PackageAcquisitionLocationOptions    []string
	Links                                Links
}

// PackageVersion is one item of a feed's version search
// (/feeds/{id}/packages/versions).
type PackageVersion struct {
	Id           string //nolint:revive
	PackageId    string //nolint:revive
	FeedId       string //nolint:revive
	Version      string
	Title        string
	SizeBytes    int64
	Published    time.Time
	ReleaseNotes *string
	Links        Links
}

// PackageDescription is one item of a feed's package search
// (/feeds/{id}/packages/search): a package ID and its latest version.
type PackageDescription struct {
	Id            string //nolint:revive
	Name          string
	Description   string
	LatestVersion string
	Links         Links
}

// DeltaSignature is the answer to a delta-signature request: the Octodiff
// signature (base64) of BaseVersion, the version the client's delta must
// be built against.
type DeltaSignature struct {
	Signature   string
	BaseVersion string
}
