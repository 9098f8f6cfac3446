// SPDX-License-Identifier: Apache-2.0

package cli

import "golang.org/x/sys/unix"

// renameNoReplace renames src to dst, failing with EEXIST rather than replacing dst.
func renameNoReplace(src, dst string) error {
	return unix.RenamexNp(src, dst, unix.RENAME_EXCL)
}
