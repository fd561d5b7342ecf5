package certificate

import (
	"strings"
	"testing"
)

// The console shows the verdict, a line per row, and why under a row that
// has a reason.
func TestWriteConsole(t *testing.T) {
	c := Certificate{Cluster: "https://octopus.example", Verdict: "FAIL", Rows: []Row{
		{Status: "PASS", Requirement: "a node can die"},
		{Status: "FAIL", Requirement: "uploads survive", Why: "2 lost"},
	}}
	var b strings.Builder
	c.WriteConsole(&b)
	want := "\nCertificate for https://octopus.example: FAIL\n" +
		"  PASS     a node can die\n" +
		"  FAIL     uploads survive\n           why: 2 lost\n" +
		"  (certificate.md and certificate.json are in the output directory)\n"
	if b.String() != want {
		t.Errorf("got %q\nwant %q", b.String(), want)
	}
}
