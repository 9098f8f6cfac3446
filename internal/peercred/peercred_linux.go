// SPDX-License-Identifier: Apache-2.0

//go:build linux

package peercred

import (
	"fmt"

	"golang.org/x/sys/unix"
)

func ofFD(fd int) (Peer, error) {
	u, err := unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
	if err != nil {
		return Peer{}, fmt.Errorf("SO_PEERCRED: %w", err)
	}
	return Peer{UID: u.Uid, GID: u.Gid, PID: u.Pid}, nil
}
