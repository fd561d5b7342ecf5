// Package traffic owns the load the harness puts on a cluster: the streaming
// package uploader (Upload: multipart bodies of deterministic content,
// chunked with no Content-Length, exactly as the Octopus CLI sends them) and
// rate-based API attacks with vegeta (Attack). Every request becomes one
// history.Op and one vegeta.Result, so checkers read the history and
// `vegeta report`/`vegeta plot` read the results files.
//
// It talks to nodes only over their HTTP API, through a load balancer or
// directly, so the same traffic runs against fake and real clusters.
package traffic
