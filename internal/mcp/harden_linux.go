// SPDX-License-Identifier: Apache-2.0

package mcp

import (
	"sync"

	"golang.org/x/sys/unix"
)

// harden makes the process non-dumpable: its /proc/PID/fd, mem and environ
// then belong to root, so that a command it runs without the sandbox (as
// the same user) cannot write to the protocol stream around the redactor or
// read values from its memory. In the sandbox, the server's process is not
// even visible. A program the server starts is dumpable again after execve.
func harden() error {
	return unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
}

// dumpableMu serializes the moments the process is dumpable (startDumpable).
var dumpableMu sync.Mutex

// startDumpable runs start (which forks a sandboxed command) with the
// process dumpable: the kernel lets a process write the uid_map of a child
// in a new user namespace only if it may open the child's /proc entries,
// which a child forked from a non-dumpable process keeps root's. The
// process is non-dumpable again once the child is running.
func startDumpable(start func() error) error {
	dumpableMu.Lock()
	defer dumpableMu.Unlock()
	was, err := unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0)
	if err != nil || was != 0 {
		return start()
	}
	_ = unix.Prctl(unix.PR_SET_DUMPABLE, 1, 0, 0, 0)
	defer func() { _ = unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0) }()
	return start()
}
