// SPDX-License-Identifier: Apache-2.0

package cli

import "golang.org/x/sys/unix"

// renameNoReplace renames src to dst, failing with EEXIST rather than replacing dst.
func renameNoReplace(src, dst string) error {
	return unix.Renameat2(unix.AT_FDCWD, src, unix.AT_FDCWD, dst, unix.RENAME_NOREPLACE)
}
