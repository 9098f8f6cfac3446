// SPDX-License-Identifier: Apache-2.0

// Package version reports the version of the ov and ov-server binaries: the value stamped at link time
// by the Makefile, or else the module version recorded in the build information.
package version

import "runtime/debug"

// Version is set with -ldflags "-X github.com/opaquevault/opaquevault/internal/version.Version=…".
var Version = ""

// String returns the version, never empty.
func String() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}
