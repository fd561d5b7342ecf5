package certificate

import (
	"fmt"
	"io"
)

// WriteConsole shows the certificate's verdict and rows on the console,
// each failed row with why, and where its files are.
func (c Certificate) WriteConsole(w io.Writer) {
	fmt.Fprintf(w, "\nCertificate for %s: %s\n", c.Cluster, c.Verdict)
	for _, r := range c.Rows {
		line := fmt.Sprintf("  %-8s %s", r.Status, r.Requirement)
		if r.Why != "" {
			line += "\n           why: " + r.Why
		}
		fmt.Fprintln(w, line)
	}
	fmt.Fprintf(w, "  (certificate.md and certificate.json are in the output directory)\n")
}
