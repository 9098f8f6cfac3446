// SPDX-License-Identifier: Apache-2.0

// Package sandbox runs a command where ov's secrets cannot be reached: in a
// new user, mount and PID namespace in which the agent's sockets, the
// rendezvous file, ov's config, state, cache and key files and the user's
// runtime directory (its D-Bus, systemd and other per-user sockets) are
// covered by empty file systems, with a private /proc that shows only the
// command's own processes, and with no capabilities.
//
// A command cannot leave this by forking, re-parenting, daemonizing or
// renaming itself: every descendant stays in the namespaces, and when the
// command (the namespace's PID 1) exits, the kernel kills whatever it left
// behind. The covering mounts are locked against any nested user namespace
// the command creates (the kernel locks mounts copied into a less privileged
// mount namespace), setuid programs (sudo, at, crontab) do not gain
// privileges, and other processes of the user (and their /proc/PID/root)
// are not visible.
//
// What it does not cover: abstract unix sockets and the network are shared
// with the host (commands need the network); a service of the user that
// listens on a path outside the covered ones (a tmux or editor server in a
// shared directory, a TCP port) can run programs outside the sandbox.
//
// The isolation is done by a small helper: the calling binary re-executed
// with [HelperArg] as its first argument, which must call [HelperMain]
// before anything else (cmd/ov does, through internal/cli).
package sandbox
