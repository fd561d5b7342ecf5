//go:build unix

package main

import "syscall"

// privateUmask makes every file this process creates from now on its
// owner's alone (0600, directories 0700): a node's SQLite database and
// stored packages, Toxiproxy's files. The run directory's 0700
// directories already keep them from other users; this keeps them so if
// one is copied or moved out.
func privateUmask() { syscall.Umask(0o077) }
