// SPDX-License-Identifier: Apache-2.0

// Package polkittest runs a private D-Bus system bus (a real dbus-daemon)
// and, on it, a real polkitd, for tests of code that owns bus names or asks
// polkit. It never touches the host's buses or polkit configuration: the
// bus listens in a fresh directory, and polkitd runs in its own mount
// namespace with the test's policy files bind-mounted over
// /usr/share/polkit-1/actions.
//
// Tests that cannot get what they need (no dbus-daemon, not root for
// polkitd) are skipped with the reason.
package polkittest
