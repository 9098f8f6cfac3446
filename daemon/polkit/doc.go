// SPDX-License-Identifier: Apache-2.0

// Package polkit asks polkitd whether a subject may perform an action:
// org.freedesktop.PolicyKit1.Authority.CheckAuthorization over D-Bus
// (godbus), with a timeout.
//
// It fails closed: [Authority.Allowed] is false on any error (no polkitd,
// action not registered, timeout, a caller polkit does not trust to ask about
// other users, a malformed reply), and [Authority.Check] returns the error
// for the log. It never caches a decision.
//
// Subjects are "unix-process" (pid, the process start time read from
// /proc/PID/stat so that a recycled pid does not match, and uid) or
// "system-bus-name" (a unique bus name; polkitd asks the bus who it is).
//
// The package is Linux-only; elsewhere it is empty.
package polkit
