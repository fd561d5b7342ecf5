package checker

import (
	"strings"
	"testing"

	"github.com/octoha/octoha/harness/history"
)

func failedDownload(via, node string) View {
	return View{Via: via, Present: true, BodyNode: node, Error: "download: HTTP 500: The package could not be read: the stored path is in the Windows form"}
}

func TestDownloadsNamesMixedOS(t *testing.T) {
	var b builder
	b.upload("Acme.Web", "1.0.0", contentA, 0, 1, history.OK, 201) // through Node1
	p := everywhere("Acme.Web", "1.0.0", contentA)
	p.Views[2] = failedDownload("Node2", "Node2")
	p.Views[0] = failedDownload(ViaLB, "Node2")
	os := map[string]string{"Node1": "windows", "Node2": "linux"}
	r := Downloads(&b.h, snap(p), os)
	wantStatus(t, r, Fail)
	wantFigure(t, r, FindingMixedOS.Name, 2)
	wantFigure(t, r, "downloads-ok", 1)
	if !HasFinding(r, FindingMixedOS) || !strings.Contains(r.Summary, "mixed operating systems") {
		t.Fatalf("summary %q does not name mixed operating systems", r.Summary)
	}
	wantEvidence(t, r, "Acme.Web@1.0.0 stored through Node1 (windows) does not download through Node2 (linux")

	// The same failures on nodes of one OS are not blamed on it.
	r = Downloads(&b.h, snap(p), map[string]string{"Node1": "linux", "Node2": "linux"})
	wantStatus(t, r, Fail)
	wantFigure(t, r, FindingMixedOS.Name, 0)
	if strings.Contains(r.Summary, "mixed operating systems") {
		t.Fatalf("same-OS failures blamed on mixed OS: %s", r.Summary)
	}
}

func TestDownloadsPassesWhenEveryNodeServes(t *testing.T) {
	var b builder
	b.upload("Acme.Web", "1.0.0", contentA, 0, 1, history.OK, 201)
	r := Downloads(&b.h, snap(everywhere("Acme.Web", "1.0.0", contentA)), map[string]string{"Node1": "windows", "Node2": "windows"})
	wantStatus(t, r, Pass)
	wantFigure(t, r, "windows-nodes", 2)
	r = Downloads(&b.h, snap(), map[string]string{"Node1": "linux"})
	wantStatus(t, r, Skip)
}
