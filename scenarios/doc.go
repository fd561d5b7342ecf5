// Package scenarios is octoha's chaos catalogue: Ginkgo v2 suites, one spec
// per scenario, each bringing up its own cluster through a provider
// (local by default, docker with OCTOHA_PROVIDER=docker), driving traffic,
// injecting faults and asserting through the checkers. It is the only
// place that asserts. Run it with `make chaos` (LABELS='…' filters by
// label); see README.md for the environment variables.
package scenarios
