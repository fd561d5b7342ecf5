// Package lb owns the load balancer in front of a cluster's nodes: it
// generates configuration for, starts, inspects and stops a real HAProxy,
// nginx or Caddy (as a child process), or runs an in-process Go reverse proxy when no
// load-balancer binary is installed.
//
// The drivers differ on purpose. HAProxy is the reference: active health
// checks on the node ping, where 418 takes a node DOWN (or, with DrainNOLB,
// into a true drain), and a runtime socket that shows each server's state.
// nginx OSS has passive checks only, so a draining node keeps its traffic;
// the NginxDefaults profile additionally keeps nginx's 1 MB body limit and
// request spooling. Caddy has active checks but no fall/rise; its
// CaddyTimeout profile adds a total request read limit (read_body), which
// cuts a steady slow upload. Scenarios use these differences to show that the harness
// catches a load balancer that does not honour Octopus's health contract.
// See shared/reference/lb.md for the measured behaviour this package encodes.
package lb
