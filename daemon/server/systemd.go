// SPDX-License-Identifier: Apache-2.0

package server

import (
	"net"
	"strconv"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
	"github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sys/unix"
)

// This file is the server's only use of go-systemd. Style B.1 wants those calls in daemon/sd;
// when that package exists, these three functions move there unchanged.

// systemdListeners returns the listening sockets systemd passed (LISTEN_PID, LISTEN_FDS), if any,
// and unsets those variables.
func systemdListeners() []net.Listener {
	ls, _ := activation.Listeners() // never fails; non-listener fds come back nil
	out := ls[:0]
	for _, l := range ls {
		if l != nil {
			out = append(out, l)
		}
	}
	return out
}

// sdNotify sends state to systemd when NOTIFY_SOCKET is set; otherwise it does nothing.
func sdNotify(state string) error {
	_, err := daemon.SdNotify(false, state)
	return err
}

// sdReloading is the RELOADING=1 message with the MONOTONIC_USEC systemd wants alongside it.
func sdReloading() string {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return daemon.SdNotifyReloading
	}
	return daemon.SdNotifyReloading + "\nMONOTONIC_USEC=" + strconv.FormatInt(ts.Nano()/1000, 10)
}

// sdWatchdog returns the interval at which systemd expects WATCHDOG=1, or 0.
func sdWatchdog() time.Duration {
	d, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		return 0
	}
	return d
}
