//go:build !linux

package main

import "syscall"

// childSysProcAttr: the tests that start octoha children run on Linux only
// (local clusters); elsewhere children get the defaults.
func childSysProcAttr() *syscall.SysProcAttr { return nil }
