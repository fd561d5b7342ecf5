// Package api holds the wire contract of an Octopus Server node as far as
// octoha emulates and checks it: resource paths, headers, PascalCase JSON
// resources, error bodies and the package file-name grammar.
//
// Both the fake node (fakes/node) and the harness import it, so the two
// cannot drift apart; it depends on the standard library only.
package octopusapi
