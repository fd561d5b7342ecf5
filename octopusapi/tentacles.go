package octopusapi

import (
	"crypto/sha1" //nolint:gosec // Octopus identifies certificates by SHA-1 thumbprint.
	"encoding/hex"
	"strings"
)

// Polling Tentacles, simplified from Halibut: a Tentacle registers as a
// machine through the REST API (CommunicationStyle TentacleActive, Uri
// poll://<subscription>/, its certificate's thumbprint), then polls each
// node's polling port over mutual TLS with GET /poll/<subscription>. A
// node answers 200 with the request it holds for that Tentacle, or 204.
// Every node of a cluster presents one server certificate.

// DefaultPollingPort is Octopus's polling port.
const DefaultPollingPort = 10943

// CommunicationStyleTentacleActive is a polling Tentacle.
const CommunicationStyleTentacleActive = "TentacleActive"

// MachinesPath returns a space's machines path.
func MachinesPath(spaceID string) string { return SpacePath(spaceID) + "/machines" }

// PollPath returns the path a Tentacle polls.
func PollPath(subscription string) string { return "/poll/" + subscription }

// MachineEndpoint is a machine's endpoint.
type MachineEndpoint struct {
	CommunicationStyle string `json:"CommunicationStyle"`
	Uri                string `json:"Uri"`        //nolint:revive // Octopus's spelling
	Thumbprint         string `json:"Thumbprint"` // the Tentacle's certificate
}

// Machine is a deployment target resource, reduced to its endpoint.
type Machine struct {
	Id       string          `json:"Id"` //nolint:revive
	Name     string          `json:"Name"`
	SpaceId  string          `json:"SpaceId,omitempty"` //nolint:revive
	Endpoint MachineEndpoint `json:"Endpoint"`
}

// PollRequest is what a poll picks up: a request a task holds for the
// Tentacle, created on the node at Created.
type PollRequest struct {
	RequestId string `json:"RequestId"` //nolint:revive
	TaskId    string `json:"TaskId"`    //nolint:revive
	Node      string `json:"Node"`
	Created   string `json:"Created"` // RFC 3339 with nanoseconds
}

// Thumbprint is a certificate's thumbprint as Octopus shows it: the SHA-1
// of its DER bytes, upper-case hex.
func Thumbprint(der []byte) string {
	s := sha1.Sum(der) //nolint:gosec
	return strings.ToUpper(hex.EncodeToString(s[:]))
}

// SubscriptionOf returns the subscription ID of a poll:// URI.
func SubscriptionOf(uri string) (string, bool) {
	s, ok := strings.CutPrefix(uri, "poll://")
	s = strings.TrimSuffix(s, "/")
	return s, ok && s != "" && !strings.ContainsAny(s, "/?#")
}
