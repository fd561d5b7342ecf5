package node

import (
	"bytes"
	"net/url"
	"testing"

	octoclient "github.com/OctopusDeploy/go-octopusdeploy/v2/pkg/client"
	"github.com/OctopusDeploy/go-octopusdeploy/v2/pkg/newclient"
	"github.com/OctopusDeploy/go-octopusdeploy/v2/pkg/octopusservernodes"
	"github.com/OctopusDeploy/go-octopusdeploy/v2/pkg/packages"
	"github.com/OctopusDeploy/go-octopusdeploy/v2/pkg/resources"
	"github.com/OctopusDeploy/go-octopusdeploy/v2/pkg/services"
)

// The official Go client (what the Octopus CLI is built on) can upload a
// package to a fake node and read it and the node list back.
func TestOfficialGoClient(t *testing.T) {
	a := newTestNode(t, nil)
	u, _ := url.Parse(a.srv.URL)
	c, err := octoclient.NewClient(nil, u, testKey, "Spaces-1")
	if err != nil {
		t.Fatalf("go-octopusdeploy NewClient against the fake node: %v", err)
	}
	content := bytes.Repeat([]byte("official client "), 4096)
	resp, created, err := packages.Upload(c, "Spaces-1", "Official.Client.3.2.1.zip", bytes.NewReader(content), packages.OverwriteModeFailIfExists)
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	if !created || resp.PackageSizeBytes != len(content) || resp.Hash != sha1hex(content) {
		t.Fatalf("upload response: created=%v %+v", created, resp)
	}
	_, _, err = packages.Upload(c, "Spaces-1", "Official.Client.3.2.1.zip", bytes.NewReader(content), packages.OverwriteModeFailIfExists)
	if err == nil {
		t.Fatal("duplicate upload under FailIfExists succeeded")
	}
	_, created, err = packages.Upload(c, "Spaces-1", "Official.Client.3.2.1.zip", bytes.NewReader(content), packages.OverwriteModeIgnoreIfExists)
	if err != nil || created {
		t.Fatalf("ignore upload: created=%v err=%v", created, err)
	}

	pkg, err := packages.GetByID(c, "Spaces-1", "packages-Official.Client.3.2.1")
	if err != nil {
		t.Fatalf("read package back: %v", err)
	}
	if pkg.PackageID != "Official.Client" || pkg.Version != "3.2.1" {
		t.Fatalf("package = %+v", pkg)
	}
	list, err := packages.List(c, "Spaces-1", "Official", 10)
	if err != nil || len(list.Items) != 1 {
		t.Fatalf("list: %v %+v", err, list)
	}

	// The client has no typed node lister; read the collection through its
	// own HTTP session and resource types, at the link the root advertised.
	path, err := services.GetPath(c.OctopusServerNodes)
	if err != nil {
		t.Fatalf("node path from the root document: %v", err)
	}
	nodes, err := newclient.Get[resources.Resources[*octopusservernodes.OctopusServerNodeResource]](c.HttpSession(), path)
	if err != nil {
		t.Fatalf("node list: %v", err)
	}
	if len(nodes.Items) != 1 || nodes.Items[0].Name != "Node1" || nodes.Items[0].MaxConcurrentTasks != 20 || nodes.Items[0].GetID() != "OctopusServerNodes-1" {
		t.Fatalf("nodes = %+v", nodes.Items)
	}
}
