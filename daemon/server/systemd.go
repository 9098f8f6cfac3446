// SPDX-License-Identifier: Apache-2.0

package server

import (
	"net"
	"time"

	"github.com/opaquevault/opaquevault/internal/sd"
)

// The server's use of systemd goes through internal/sd, the only importer of go-systemd.

// systemdListeners returns the listening sockets systemd passed, if any, whatever their names, and
// unsets the LISTEN_* variables.
func systemdListeners() []net.Listener { return sd.AllListeners() }

// sdNotify sends state to systemd when NOTIFY_SOCKET is set; otherwise it does nothing.
func sdNotify(state string) error {
	_, err := sd.Notify(state)
	return err
}

// sdReloading sends RELOADING=1 with the MONOTONIC_USEC systemd wants alongside it.
func sdReloading() error { return sd.Reloading() }

// sdWatchdog returns the interval at which systemd expects WATCHDOG=1, or 0.
func sdWatchdog() time.Duration { return sd.WatchdogInterval() }
