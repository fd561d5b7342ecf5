package checker

import (
	"fmt"
	"io"
	"strings"
)

// WriteText writes one line per check, then its figures and evidence
// indented, then a verdict line: how octoha check and octoha tasks show a
// report.
func (r *Report) WriteText(w io.Writer) {
	width := 0
	for _, res := range r.Results {
		width = max(width, len(res.Name))
	}
	skipped := 0
	for _, res := range r.Results {
		if res.Status == Skip {
			skipped++
		}
		fmt.Fprintf(w, "%-4s  %-*s  %s\n", strings.ToUpper(string(res.Status)), width, res.Name, res.Summary)
		if len(res.Figures) > 0 {
			var fs []string
			for _, f := range res.Figures {
				fs = append(fs, f.String())
			}
			fmt.Fprintf(w, "      %s\n", strings.Join(fs, "  "))
		}
		for _, e := range res.Evidence {
			fmt.Fprintf(w, "      - %s\n", e)
		}
	}
	failed := len(r.Failed())
	if failed > 0 {
		fmt.Fprintf(w, "FAIL: %d of %d checks failed (%d skipped)\n", failed, len(r.Results), skipped)
		return
	}
	fmt.Fprintf(w, "PASS: %d checks passed (%d skipped)\n", len(r.Results)-skipped, skipped)
}
