// SPDX-License-Identifier: Apache-2.0

// Package sd is the one place that talks to systemd: listening sockets passed
// by socket activation (by FileDescriptorName=), sd_notify messages
// (READY=1, STATUS=, RELOADING=1, STOPPING=1, WATCHDOG=1), a logrus logger
// that writes native journal entries with OV_* fields when stderr is the
// journal, and calls to the service manager over D-Bus (daemon-reload,
// enable, start, stop) for `ov agent install --enable`, and try-restart or
// reload-or-try-restart for the agent's restarts when a secret changes.
//
// It is the only importer of github.com/coreos/go-systemd. It never shells
// out to systemctl, never logs a message field it was not given, and on
// systems without systemd (other operating systems, or Linux without a
// service manager) its notify functions do nothing and its manager calls fail
// with [ErrNoSystemd].
//
// # Notify
//
// [Ready], [Status], [Reloading], [Stopping] and [Watchdog] send to
// $NOTIFY_SOCKET and do nothing when it is unset. [Reloading] carries
// MONOTONIC_USEC as systemd 253's Type=notify-reload wants it.
//
// # Logging
//
// [NewLogger] returns a *logrus.Logger. When stderr is the journal stream
// ($JOURNAL_STREAM matches stderr), every entry goes to journald with its
// fields as OV_<KEY> (so `journalctl OV_PEER_UID=1000` works); otherwise it
// writes text to stderr, without timestamps when started by systemd
// ($INVOCATION_ID set), since the journal adds its own.
package sd

import "errors"

// ErrNoSystemd means the service manager cannot be reached: not Linux, or no
// systemd running as PID 1 (or as the user's manager).
var ErrNoSystemd = errors.New("systemd is not running")
