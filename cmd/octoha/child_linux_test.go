package main

import "syscall"

// childSysProcAttr makes a child the leader of its own process group and
// has the kernel kill it when the test process dies.
func childSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
