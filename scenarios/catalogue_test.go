package scenarios_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"

	"github.com/octoha/octoha/harness/scenario"
)

// One Entry per scenario of the catalogue, with its derived labels: adding
// a scenario is adding a value to scenario.Catalogue, not a test body.
var _ = Describe("Catalogue", func() {
	var entries []TableEntry
	for _, sc := range scenario.Catalogue() {
		// The runner bounds the scenario by its own timeout; Ginkgo's
		// bound leaves room to undo faults and tear the cluster down.
		entries = append(entries, Entry(sc.Title, sc, Label(sc.Labels()...), SpecTimeout(sc.Timeout+3*time.Minute)))
	}
	DescribeTable("scenario", func(ctx SpecContext, sc scenario.Scenario) {
		By(sc.Claim)
		runScenario(ctx, sc)
	}, entries)
})
