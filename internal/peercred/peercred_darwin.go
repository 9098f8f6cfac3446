// SPDX-License-Identifier: Apache-2.0

//go:build darwin

package peercred

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// xucredVersion is XUCRED_VERSION from <sys/ucred.h>.
const xucredVersion = 0

func ofFD(fd int) (Peer, error) {
	x, err := unix.GetsockoptXucred(fd, unix.SOL_LOCAL, unix.LOCAL_PEERCRED)
	if err != nil {
		return Peer{}, fmt.Errorf("LOCAL_PEERCRED: %w", err)
	}
	if x.Version != xucredVersion {
		return Peer{}, fmt.Errorf("LOCAL_PEERCRED: unknown xucred version %d", x.Version)
	}
	p := Peer{UID: x.Uid}
	if x.Ngroups > 0 {
		p.GID = x.Groups[0]
	}
	if pid, err := unix.GetsockoptInt(fd, unix.SOL_LOCAL, unix.LOCAL_PEERPID); err == nil {
		p.PID = int32(pid)
	}
	return p, nil
}
