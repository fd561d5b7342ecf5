//go:build !unix

package main

// privateUmask: no umask here.
func privateUmask() {}
