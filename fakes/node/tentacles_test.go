package node

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/octoha/octoha/internal/selfsigned"
	"github.com/octoha/octoha/octopusapi"
)

// pollClient polls one node's polling port with a Tentacle certificate,
// trusting only the cluster's server thumbprint.
func pollClient(t *testing.T, client selfsigned.Cert, serverThumb string) *http.Client {
	t.Helper()
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		Certificates:       []tls.Certificate{client.TLS},
		InsecureSkipVerify: true, //nolint:gosec // verified by thumbprint below, as Tentacles do
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if octopusapi.Thumbprint(raw[0]) != serverThumb {
				t.Errorf("server thumbprint %s, want the cluster's %s", octopusapi.Thumbprint(raw[0]), serverThumb)
			}
			return nil
		},
	}}}
}

func poll(t *testing.T, c *http.Client, addr, sub string) (int, octopusapi.PollRequest) {
	t.Helper()
	resp, err := c.Get("https://" + addr + octopusapi.PollPath(sub))
	if err != nil {
		t.Fatalf("poll %s: %v", addr, err)
	}
	defer resp.Body.Close()
	var pr octopusapi.PollRequest
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, &pr); err != nil {
			t.Fatalf("poll answer %s: %v", b, err)
		}
	}
	return resp.StatusCode, pr
}

// A Tentacle task holds its request on the node that runs it only: a poll
// of the other node finds nothing, a poll of that node picks it up and the
// task succeeds. Both nodes present the one cluster certificate, and a
// Tentacle with another certificate is refused.
func TestTentacleRequestOnlyOnItsNode(t *testing.T) {
	server, err := selfsigned.New("octoha cluster")
	if err != nil {
		t.Fatal(err)
	}
	addrs := make([]string, 2)
	tc := startTaskCluster(t, sqliteDSN(t), 2, func(i int, c *Config) {
		c.PollingCert = &server.TLS
	})
	for i, n := range tc.nodes {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addrs[i] = ln.Addr().String()
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		go n.servePolling(ctx, ln)
	}
	tentacle, _ := selfsigned.New("Tentacle T1")
	other, _ := selfsigned.New("Impostor")
	var m octopusapi.Machine
	if code := tc.nodes[0].do(t, http.MethodPost, octopusapi.MachinesPath("Spaces-1"), octopusapi.Machine{Name: "T1", Endpoint: octopusapi.MachineEndpoint{
		CommunicationStyle: octopusapi.CommunicationStyleTentacleActive, Uri: "poll://SQ-T1/", Thumbprint: octopusapi.Thumbprint(tentacle.TLS.Certificate[0])}}, &m); code != http.StatusCreated {
		t.Fatalf("register: %d", code)
	}
	serverThumb := octopusapi.Thumbprint(server.TLS.Certificate[0])
	c := pollClient(t, tentacle, serverThumb)
	if code, _ := poll(t, c, addrs[1], "SQ-T1"); code != http.StatusNoContent {
		t.Fatalf("idle poll: %d, want 204", code)
	}
	if code, _ := poll(t, pollClient(t, other, serverThumb), addrs[0], "SQ-T1"); code != http.StatusForbidden {
		t.Fatalf("poll with another certificate: %d, want 403", code)
	}
	task := tc.nodes[0].create(t, octopusapi.TaskKindHealth, octopusapi.TaskArguments{TentacleId: m.Id, DurationMs: 10000})
	var holder int
	waitUntil(t, 5*time.Second, "the task to run", func() bool {
		got := tc.nodes[0].task(t, task.Id)
		holder = 0
		if got.ServerNode == "Node2" {
			holder = 1
		}
		return got.State == octopusapi.TaskExecuting
	})
	if code, _ := poll(t, c, addrs[1-holder], "SQ-T1"); code != http.StatusNoContent {
		t.Fatalf("poll of the node not running the task: %d, want 204", code)
	}
	var pr octopusapi.PollRequest
	waitUntil(t, 5*time.Second, "the request on "+tc.nodes[holder].Name(), func() bool {
		var code int
		code, pr = poll(t, c, addrs[holder], "SQ-T1")
		return code == http.StatusOK
	})
	if pr.TaskId != task.Id || pr.Node != tc.nodes[holder].Name() {
		t.Fatalf("picked up %+v, want task %s on %s", pr, task.Id, tc.nodes[holder].Name())
	}
	waitUntil(t, 5*time.Second, "the task to succeed", func() bool { return tc.nodes[0].task(t, task.Id).State == octopusapi.TaskSuccess })

	// Nobody polls: the task times out after its DurationMs.
	task = tc.nodes[0].create(t, octopusapi.TaskKindHealth, octopusapi.TaskArguments{TentacleId: m.Id, DurationMs: 300})
	waitUntil(t, 5*time.Second, "the unpolled task to time out", func() bool { return tc.nodes[0].task(t, task.Id).State == octopusapi.TaskTimedOut })
}
