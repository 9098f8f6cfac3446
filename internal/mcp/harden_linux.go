// SPDX-License-Identifier: Apache-2.0

package mcp

import "golang.org/x/sys/unix"

// harden makes the process non-dumpable: its /proc/PID/fd, mem and environ
// then belong to root, so a command it runs (as the same user) cannot write
// to the protocol stream around the redactor or read values from its memory.
// A program the server starts is dumpable again after execve.
func harden() error {
	// Orphaned descendants of a command are re-parented here, not to init, so that the agent can tell
	// that they descend from an MCP session and refuse them (daemon/agent).
	_ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
	return unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
}
