// SPDX-License-Identifier: Apache-2.0

package peercred

import (
	"fmt"
	"net"
	"syscall"
)

// Process is what the kernel says about the process at the other end of a
// unix socket, pinned by a pidfd (SO_PEERPIDFD): for audit lines only,
// never for an allow decision (a process of the same uid can exec the real
// binary, and a process may exec another one after connecting).
type Process struct {
	// PID is the pid the pidfd refers to, in this process's pid namespace.
	PID int32
	// Exe and Comm are /proc/PID/exe and /proc/PID/comm as read after the
	// pidfd was taken; empty when they could not be read (another uid's
	// non-dumpable process, ProtectProc=invisible).
	Exe, Comm string
	// Verified: the process was still alive after Exe and Comm were read,
	// so PID had not been reused by another process in between.
	Verified bool
}

// ProcessOf returns the peer process of c, read through SO_PEERPIDFD.
// Errors wrap [errors.ErrUnsupported] when the kernel (before Linux 6.5)
// or the system has no SO_PEERPIDFD, [ErrNotUnix] when c is not a unix
// socket, or the system error (ESRCH: the peer has exited).
func ProcessOf(c net.Conn) (Process, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return Process{}, fmt.Errorf("read peer pidfd: %T: %w", c, ErrNotUnix)
	}
	if a := c.LocalAddr(); a == nil || (a.Network() != "unix" && a.Network() != "unixpacket") {
		return Process{}, fmt.Errorf("read peer pidfd: %T: %w", c, ErrNotUnix)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return Process{}, fmt.Errorf("read peer pidfd: %w", err)
	}
	var p Process
	var perr error
	if err := rc.Control(func(fd uintptr) { p, perr = processOfFD(int(fd)) }); err != nil {
		return Process{}, fmt.Errorf("read peer pidfd: %w", err)
	}
	if perr != nil {
		return Process{}, fmt.Errorf("read peer pidfd: %w", perr)
	}
	return p, nil
}

// ProbePeerPIDFD asks the kernel for SO_PEERPIDFD on a socket pair: nil
// when it answers, else why not (wrapping [errors.ErrUnsupported] when the
// kernel lacks it).
func ProbePeerPIDFD() error { return probePeerPIDFD() }
