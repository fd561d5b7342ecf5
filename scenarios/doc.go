// Package scenarios is the Ginkgo v2 suite generated from octoha's chaos
// catalogue (harness/scenario): one Entry per scenario, labelled with the
// scenario's labels, each run by harness/runner — the same runner
// `octoha chaos` and `octoha certify` use — and asserting on the Result it
// returns. It is the only place that asserts. Run it with
// `go test ./scenarios` or the Ginkgo CLI (--label-filter); see docs/chaos.md
// for the environment variables.
package scenarios
